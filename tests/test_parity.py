"""Parity with upstream 3DDFA_V2 (torch) on the real images and video: see shared/assets/reference."""

import cv2
import numpy as np
import pytest

from face3d_nb.testing.assets import IMAGES, REFERENCE, VIDEO

pytestmark = pytest.mark.real_assets


def _iou(a, b):
    x1, y1 = np.maximum(a[:2], b[:2])
    x2, y2 = np.minimum(a[2:4], b[2:4])
    inter = max(x2 - x1, 0) * max(y2 - y1, 0)
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def _check_faces(faces, ref, rows, std):
    assert len(faces) == len(rows), f"found {len(faces)} faces, upstream found {len(rows)}"
    for face, r in zip(faces, rows):
        assert _iou(face.box, ref["boxes"][r]) >= 0.99
        assert abs(face.box[4] - ref["boxes"][r][4]) < 1e-3
        np.testing.assert_allclose(face.roi_box, ref["roi_boxes"][r], atol=0.01)
        assert np.max(np.abs(face.params - ref["params"][r]) / std) <= 1e-3
        pose = [face.pose.yaw, face.pose.pitch, face.pose.roll]
        assert np.max(np.abs(np.subtract(pose, ref["pose"][r]))) <= 0.1
        assert face.pose.scale == pytest.approx(ref["scale"][r], rel=1e-3)


@pytest.fixture(scope="module")
def param_std(real_store):
    from face3d_nb.models.safe_pickle import load_pkl

    return load_pkl(real_store.raw_path("param_mean_std"))["std"]


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_images_match_upstream(name, reconstructor, param_std):
    ref = np.load(REFERENCE / f"{name}.npz")
    image = cv2.imread(str(IMAGES[name]))
    assert tuple(image.shape) == tuple(ref["image_shape"])
    faces = reconstructor(image)
    _check_faces(faces, ref, range(len(ref["boxes"])), param_std)


def test_video_matches_upstream_frame_by_frame(reconstructor, param_std):
    ref = np.load(REFERENCE / "obama.npz")
    capture = cv2.VideoCapture(str(VIDEO))
    index = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            rows = np.flatnonzero(ref["frame_index"] == index)
            rows = rows[np.argsort(ref["face_index"][rows])]
            _check_faces(reconstructor(frame), ref, rows, param_std)
            index += 1
    finally:
        capture.release()
    assert index == len(ref["faces_per_frame"])
