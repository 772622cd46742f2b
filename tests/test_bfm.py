"""The morphable-model decoder: mean shape, full-basis decoding, pose and the crop->image transform."""

import pickle

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from face3d_nb.core.morphable import MorphableModel, pose_from_params, similar_transform, split_params
from face3d_nb.testing.assets import ASSETS, REFERENCE

pytestmark = pytest.mark.real_assets


@pytest.fixture(scope="module")
def mean_model(real_store):
    from face3d_nb.core.pipeline import load_morphable_model

    return load_morphable_model(real_store.resolve())


def test_mean_model_is_the_no_neck_mesh(mean_model):
    assert not mean_model.full
    assert mean_model.mean.shape == (38365, 3)
    assert mean_model.triangles.shape == (76073, 3)
    ncc = np.load(ASSETS / "3ddfa_v2/configs/ncc_code.npy")
    u = mean_model.mean.T.astype(np.float64)
    normalised = (u - u.min(axis=1, keepdims=True)) / np.ptp(u, axis=1, keepdims=True)
    assert np.max(np.abs(normalised - ncc)) < 1e-6


def test_sparse_landmarks_are_the_dense_landmark_vertices(mean_model):
    ref = np.load(REFERENCE / "emma.npz")
    params, roi = ref["params"][0], ref["roi_boxes"][0]
    dense = mean_model.vertices(params, roi)
    sparse = mean_model.landmarks_3d(params, roi)
    np.testing.assert_allclose(sparse[:, :2], dense[mean_model.landmarks, :2], atol=1e-3)
    # Both z ranges start at 0 (upstream shifts each by its own minimum).
    assert sparse[:, 2].min() == 0 and dense[:, 2].min() == 0
    x1, y1, x2, y2, _ = ref["boxes"][0]
    inside = (sparse[:, 0] > x1 - 20) & (sparse[:, 0] < x2 + 20) & (sparse[:, 1] > y1 - 20) & (sparse[:, 1] < y2 + 20)
    assert inside.all()


def _synthetic_bfm(tmp_path, mean_model, rng, columns=(199, 29)):
    n = mean_model.n_vertices
    u = mean_model.mean.reshape(-1, 1).astype(np.float32)
    w_shp = rng.standard_normal((3 * n, columns[0])).astype(np.float32)
    w_exp = rng.standard_normal((3 * n, columns[1])).astype(np.float32)
    keypoints = (3 * mean_model.landmarks[:, None] + np.arange(3)).reshape(-1)
    path = tmp_path / "bfm_noneck_v3.pkl"
    path.write_bytes(pickle.dumps({"u": u, "w_shp": w_shp, "w_exp": w_exp, "keypoints": keypoints}, protocol=2))
    return path, w_shp, w_exp


def test_full_model_adds_identity_and_expression(tmp_path, mean_model):
    rng = np.random.default_rng(0)
    path, w_shp, w_exp = _synthetic_bfm(tmp_path, mean_model, rng)
    full = MorphableModel.from_bfm(path, ASSETS / "3ddfa_v2/configs/tri.pkl")
    assert full.full and full.basis.shape == (50, 3 * 38365)
    params = np.load(REFERENCE / "emma.npz")["params"][0].copy()
    roi = [0, 0, 120, 120]
    rot, offset, shp, exp = split_params(params)
    want = (full.mean.reshape(-1) + w_shp[:, :40] @ shp + w_exp[:, :10] @ exp).reshape(-1, 3) @ rot.T + offset
    got = full.vertices(params, roi)
    want_img = similar_transform(want, roi)
    np.testing.assert_allclose(got, want_img, rtol=1e-4, atol=1e-2)
    np.testing.assert_allclose(full.landmarks_3d(params, roi)[:, :2], got[full.landmarks, :2], atol=1e-2)
    params[12:] = 0
    np.testing.assert_allclose(full.vertices(params, roi), mean_model.vertices(params, roi), atol=1e-3)


def test_bfm_file_without_basis_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps({"u": np.zeros(3)}))
    with pytest.raises(ValueError, match="not a BFM file"):
        MorphableModel.from_bfm(path, ASSETS / "3ddfa_v2/configs/tri.pkl")


@pytest.mark.parametrize("angles", [(20, -10, 5), (-45, 15, -30), (0, 0, 0)])
def test_pose_recovers_rotation_and_scale(angles):
    yaw, pitch, roll = np.radians(angles)
    # upstream's convention: R = Rz(roll) Ry(-yaw) Rx(pitch), so R[2, 0] = sin(yaw)
    rot = Rotation.from_euler("ZYX", [roll, -yaw, pitch]).as_matrix()
    camera = np.hstack([2e-3 * rot, [[1.0], [2.0], [3.0]]])
    params = np.concatenate([camera.reshape(-1), np.zeros(50)])
    pose = pose_from_params(params)
    np.testing.assert_allclose([pose.yaw, pose.pitch, pose.roll], angles, atol=1e-6)
    assert pose.scale == pytest.approx(2e-3)
    np.testing.assert_allclose(pose.rotation, rot, atol=1e-9)
    np.testing.assert_allclose(pose.t3d, [1, 2, 3])


def test_similar_transform_maps_crop_corners_to_roi():
    roi = [100.0, 50.0, 340.0, 290.0]  # 2x the 120-pixel crop
    pts = np.array([[1, 120, 5], [121, 0, 9]], np.float32)
    out = similar_transform(pts, roi)
    np.testing.assert_allclose(out[:, :2], [[100, 50], [340, 290]])
    np.testing.assert_allclose(out[:, 2], [0, 8])


def test_wrong_param_count_is_rejected():
    with pytest.raises(ValueError, match="62 parameters"):
        split_params(np.zeros(61))
