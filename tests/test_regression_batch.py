"""Regression of all of a frame's faces at once: the batched crops, pose and landmarks give what the
per-face reference path gives (upstream's crop and resize per face, the Euler decomposition one face
at a time, the dense decoder's landmark vertices), and each session runs on the threads the
regressor's docstring says."""

from __future__ import annotations

from math import asin, atan2, cos, degrees, pi

import cv2
import numpy as np
import pytest

from face3d_nb.core.morphable import N_EXPR, N_SHAPE, MorphableModel, pose_from_params, poses_from_params
from face3d_nb.core.pipeline import Reconstructor
from face3d_nb.core.regressor import (
    REGRESSOR_THREADS,
    crop,
    crops,
    roi_box_from_bbox,
    roi_box_from_landmarks,
    roi_boxes_from_bboxes,
    roi_boxes_from_landmarks,
)
from face3d_nb.core.shot_cut import colour_histogram
from face3d_nb.testing.media import face_picture

SPIN = "session.intra_op.allow_spinning"
# Inside the frame, over its left edge, over its bottom-right corner, wholly outside, and empty.
ROIS = np.array([[180.2, 60.5, 330.7, 211.0], [-40.0, 100.0, 110.0, 250.0], [560.0, 280.5, 700.0, 420.5],
                 [700.0, 400.0, 800.0, 500.0], [50.0, 50.0, 50.2, 50.2]])


def _reference_crop(image: np.ndarray, roi) -> np.ndarray:
    patch = crop(image, roi)
    if patch.size == 0:
        return np.zeros((120, 120, 3), np.uint8)
    return cv2.resize(patch, (120, 120), interpolation=cv2.INTER_LINEAR)


def _reference_angles(params: np.ndarray) -> tuple[float, float, float, float]:
    """Yaw, pitch, roll (degrees) and scale, one face at a time as upstream's matrix2angle does."""
    camera = np.asarray(params, np.float64)[:12].reshape(3, 4)
    n1, n2 = np.linalg.norm(camera[0, :3]), np.linalg.norm(camera[1, :3])
    r1, r2 = camera[0, :3] / n1, camera[1, :3] / n2
    r = np.stack([r1, r2, np.cross(r1, r2)])
    if r[2, 0] > 0.998:
        angles = (pi / 2, atan2(-r[0, 1], -r[0, 2]), 0.0)
    elif r[2, 0] < -0.998:
        angles = (-pi / 2, atan2(r[0, 1], r[0, 2]), 0.0)
    else:
        yaw = asin(r[2, 0])
        c = cos(yaw)
        angles = (yaw, atan2(r[2, 1] / c, r[2, 2] / c), atan2(r[1, 0] / c, r[0, 0] / c))
    return (*(degrees(a) for a in angles), (n1 + n2) / 2)


def test_crops_are_upstreams_crop_and_resize_for_every_kind_of_roi():
    image = face_picture(640, 360)
    batch = crops(image, ROIS)
    assert batch.shape == (len(ROIS), 120, 120, 3) and batch.dtype == np.uint8
    for got, roi in zip(batch, ROIS):
        np.testing.assert_array_equal(got, _reference_crop(image, roi))
    assert batch[0].any() and not batch[3].any() and not batch[4].any()


def test_roi_boxes_for_many_faces_are_those_of_each_face():
    rng = np.random.default_rng(3)
    boxes = np.sort(rng.uniform(0, 600, (6, 2, 2)), axis=1).transpose(0, 2, 1).reshape(6, 4)
    points = rng.uniform(-50, 700, (6, 68, 3))
    np.testing.assert_array_equal(roi_boxes_from_bboxes(boxes), [roi_box_from_bbox(b) for b in boxes])
    np.testing.assert_array_equal(roi_boxes_from_landmarks(points), [roi_box_from_landmarks(p) for p in points])
    assert roi_boxes_from_bboxes(np.zeros((0, 5))).shape == (0, 4)
    assert roi_boxes_from_landmarks(np.zeros((0, 68, 3))).shape == (0, 4)
    # Upstream's geometry: 1.58x the mean side, truncated to whole pixels, 0.14 of it down.
    np.testing.assert_allclose(roi_box_from_bbox([100, 100, 200, 220, 0.9]), [63.5, 88.9, 236.5, 261.9])


def test_poses_of_many_faces_are_upstreams_decomposition_of_each():
    rng = np.random.default_rng(4)
    params = rng.standard_normal((8, 62)).astype(np.float32)
    # Two faces turned past the degenerate limit, one each way (roll is fixed at 0 there).
    for k, sign in ((6, 1.0), (7, -1.0)):
        camera = np.array([[0, 0, -sign, 1], [0, 1, 0, 2], [sign, 0, 0, 3]], np.float32)
        params[k, :12] = camera.reshape(-1) * np.float32(2e-3)
    poses = poses_from_params(params)
    assert [p.yaw for p in poses[6:]] == pytest.approx([90.0, -90.0]) and [p.roll for p in poses[6:]] == [0.0, 0.0]
    for p, pose in zip(params, poses):
        assert (pose.yaw, pose.pitch, pose.roll, pose.scale) == pytest.approx(_reference_angles(p), abs=1e-9)
        rows = p[:12].astype(np.float64).reshape(3, 4)[:2, :3]
        np.testing.assert_allclose(pose.rotation[:2], rows / np.linalg.norm(rows, axis=1, keepdims=True), rtol=1e-12)
        np.testing.assert_allclose(pose.rotation[2], np.cross(pose.rotation[0], pose.rotation[1]), atol=1e-12)
        np.testing.assert_array_equal(pose.t3d, p[:12].reshape(3, 4)[:, 3])
        single = pose_from_params(p)
        assert (single.yaw, single.pitch, single.roll) == (pose.yaw, pose.pitch, pose.roll)
    assert poses_from_params(np.zeros((0, 62), np.float32)) == []


def test_a_non_finite_face_leaves_the_others_poses_alone():
    camera = np.array([[0, 0, -1, 1], [0, 1, 0, 2], [1, 0, 0, 3]], np.float32) * np.float32(2e-3)
    turned = np.zeros(62, np.float32)
    turned[:12] = camera.reshape(-1)
    broken = np.full(62, np.nan, np.float32)
    alone, with_nan = poses_from_params(turned[None])[0], poses_from_params(np.stack([broken, turned]))[1]
    assert (with_nan.yaw, with_nan.pitch, with_nan.roll) == (alone.yaw, alone.pitch, alone.roll) == (90.0, 0.0, 0.0)


@pytest.mark.parametrize("with_basis", [False, True])
def test_landmarks_of_many_faces_are_the_dense_decoders_landmark_vertices(reconstructor, with_basis):
    model = reconstructor.model
    if with_basis:
        basis = np.random.default_rng(5).standard_normal((N_SHAPE + N_EXPR, 3 * model.n_vertices), np.float32)
        model = MorphableModel(model.mean, basis, model.triangles, model.landmarks)
    params = reconstructor.regressor(face_picture(640, 360), ROIS)
    batch = model.landmarks_batch(params, ROIS)
    assert batch.shape == (5, 68, 3) and batch.dtype == np.float32
    for marks, p, roi in zip(batch, params, ROIS):
        dense = model.vertices(p, roi)[model.landmarks]
        np.testing.assert_allclose(marks[:, :2], dense[:, :2], atol=1e-3)
        # Each decoder puts its own minimum z at 0: the landmarks' z differ from the mesh's by a constant.
        np.testing.assert_allclose(marks[:, 2] - dense[:, 2], marks[0, 2] - dense[0, 2], atol=1e-3)
        assert marks[:, 2].min() == 0.0
        np.testing.assert_array_equal(model.landmarks_3d(p, roi), marks)


def test_a_frames_faces_regressed_at_once_are_those_regressed_one_by_one(reconstructor):
    image = face_picture(640, 360, centres=((0.3, 0.5), (0.7, 0.45)), size=0.4)
    boxes = np.array([[150, 110, 260, 250, 0.9], [400, 90, 500, 220, 0.8], [560, 280, 700, 420, 0.7]], np.float32)
    rois = roi_boxes_from_bboxes(boxes)
    together = reconstructor.faces(image, boxes, rois)
    session = reconstructor.regressor.session
    for k, face in enumerate(together):
        (alone,) = reconstructor.faces(image, boxes[k : k + 1], rois[k : k + 1])
        reference = session.run(None, {"input": _reference_crop(image, rois[k])[None]})[0][0]
        np.testing.assert_allclose(face.params, reference, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(face.params, alone.params, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(face.landmarks, alone.landmarks, atol=1e-3)
        pose = face.pose
        assert (pose.yaw, pose.pitch, pose.roll, pose.scale) == pytest.approx(_reference_angles(face.params), abs=1e-9)
        np.testing.assert_array_equal(face.box, boxes[k])
        np.testing.assert_array_equal(face.roi_box, rois[k])
    # Without detector boxes each face carries its landmark box and no score.
    tracked = reconstructor.faces(image, None, rois)
    for face in tracked:
        xy = face.landmarks[:, :2]
        np.testing.assert_array_equal(face.box[:4], [*xy.min(axis=0), *xy.max(axis=0)])
        assert np.isnan(face.box[4])
    assert reconstructor.faces(image, np.zeros((0, 5), np.float32), np.zeros((0, 4))) == []


def test_each_session_runs_on_the_threads_the_regressor_docstring_says(synthetic_paths):
    rec = Reconstructor(synthetic_paths, threads=2)
    detector = rec.detector.session.get_session_options()
    regressor = rec.regressor.session.get_session_options()
    assert detector.intra_op_num_threads == 2 and REGRESSOR_THREADS == 1
    assert regressor.intra_op_num_threads == REGRESSOR_THREADS
    # Neither spins between runs: the live app's browser needs the cores.
    assert detector.get_session_config_entry(SPIN) == regressor.get_session_config_entry(SPIN) == "0"


def test_the_shot_cut_sample_is_every_eighth_pixel_of_every_eighth_row_at_640x360():
    frame = face_picture(640, 360, seed=2)
    sample = np.ascontiguousarray(frame[4::8, 4::8])
    expected = cv2.calcHist([sample], [0, 1, 2], None, [4, 4, 4], [0, 256] * 3).ravel()
    np.testing.assert_array_equal(colour_histogram(frame), expected / expected.sum())
