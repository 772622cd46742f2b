"""Smoothing: the One Euro filter, the crop-independent parameter space and the per-track smoother."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from face3d_nb.core.morphable import pose_from_params
from face3d_nb.core.pipeline import Face
from face3d_nb.core.smoothing import FaceSmoother, OneEuroFilter, OneEuroParams, crop_params, image_params
from face3d_nb.testing.assets import REFERENCE
from face3d_nb.testing.media import face_picture

FPS = 30.0


def _jitter(track: np.ndarray) -> float:
    """Mean frame-to-frame distance of a (T, ...) trajectory, over all but the time axis."""
    steps = np.diff(np.asarray(track, dtype=np.float64).reshape(len(track), -1, 2), axis=0)
    return float(np.linalg.norm(steps, axis=2).mean())


def test_strength_maps_to_filters():
    assert OneEuroParams.from_strength(0.0) is None
    cutoffs = [OneEuroParams.from_strength(s).min_cutoff for s in (0.1, 0.5, 1.0)]
    assert cutoffs == sorted(cutoffs, reverse=True), "stronger smoothing must lower the resting cutoff"
    for bad in (-0.1, 1.1):
        with pytest.raises(ValueError, match="between 0 and 1"):
            OneEuroParams.from_strength(bad)


def test_first_sample_passes_and_constant_stays_constant():
    f = OneEuroFilter(OneEuroParams(min_cutoff=1.0, beta=0.0))
    x = np.array([3.0, -2.0])
    for i in range(20):
        np.testing.assert_allclose(f.filter(x, i / FPS, speed=0.0), x)
    f.reset()
    assert f.value is None and f.time is None
    np.testing.assert_allclose(f.filter(x + 5, 1.0, speed=0.0), x + 5)


def test_noise_is_reduced_and_speed_cuts_the_lag():
    rng = np.random.default_rng(0)
    t = np.arange(200) / FPS
    noisy = rng.normal(0, 1.0, (200, 1, 2))
    still = OneEuroFilter(OneEuroParams(min_cutoff=1.0, beta=0.0))
    out = np.array([still.filter(x, ti, speed=0.0) for x, ti in zip(noisy, t)])
    assert _jitter(out) < 0.25 * _jitter(noisy)

    ramp = np.stack([100 * t, 0 * t], axis=1)[:, None, :]  # 100 units/s
    lags = []
    for beta in (0.0, 1.0):
        f = OneEuroFilter(OneEuroParams(min_cutoff=1.0, beta=beta))
        out = np.array([f.filter(x, ti, speed=100.0) for x, ti in zip(ramp, t)])
        lags.append(float((ramp[-1] - out[-1])[0, 0]) / (100 / FPS))  # in frames
    assert lags[1] < 0.25 * lags[0], f"lag without/with speed adaptation: {lags} frames"
    assert lags[1] < 1.0


def test_filter_is_causal_and_ignores_stale_samples():
    rng = np.random.default_rng(1)
    xs = rng.normal(0, 1, (50, 3))
    speeds = rng.uniform(0, 5, 50)
    full = OneEuroFilter(OneEuroParams(1.0, 0.5))
    full_out = [full.filter(x, i / FPS, s).copy() for i, (x, s) in enumerate(zip(xs, speeds))]
    prefix = OneEuroFilter(OneEuroParams(1.0, 0.5))
    for i, (x, s) in enumerate(zip(xs[:20], speeds[:20])):
        np.testing.assert_array_equal(prefix.filter(x, i / FPS, s), full_out[i])
    before = prefix.value.copy()
    np.testing.assert_array_equal(prefix.filter(xs[20] + 100, 19 / FPS, 0.0), before)


@pytest.fixture
def emma(request, reconstructor):
    """(N, 62) params and (N, 4) roi boxes of a face: emma.jpg's reference for tests marked
    real_assets, else the synthetic models' face in a generated picture."""
    if request.node.get_closest_marker("real_assets"):
        ref = np.load(REFERENCE / "emma.npz")
        return ref["params"], ref["roi_boxes"]
    faces = reconstructor(face_picture())
    return np.stack([f.params for f in faces]), np.stack([f.roi_box for f in faces])


def test_image_params_are_crop_independent(reconstructor, emma):
    model = reconstructor.model
    params, rois = emma
    for p, roi in zip(params, rois):
        expected = model.landmarks_3d(p, roi)
        image = image_params(p, roi)
        np.testing.assert_allclose(crop_params(image, roi), p, rtol=1e-5, atol=1e-6 * np.abs(p).max())
        other = roi + np.array([-37.0, 12.5, 80.0, 105.0])
        moved = crop_params(image, other)
        np.testing.assert_allclose(model.landmarks_3d(moved, other), expected, atol=0.05)
    with pytest.raises(ValueError, match="no area"):
        image_params(params[0], [10, 10, 10, 50])


def _face(model, params, roi) -> Face:
    params = np.asarray(params, np.float32)
    return Face(box=np.array([*roi, np.nan], np.float32), roi_box=np.asarray(roi, np.float64), params=params,
                pose=pose_from_params(params), landmarks=model.landmarks_3d(params, roi))


def test_still_face_in_moving_crops_stays_still(reconstructor, emma):
    """Tracking moves the crop every frame: that must not show up as motion of the face."""
    model = reconstructor.model
    params, rois = emma
    image = image_params(params[0], rois[0])
    rng = np.random.default_rng(2)
    smoother = FaceSmoother(model, strength=1.0)
    for i in range(30):
        roi = rois[0] + rng.normal(0, 15, 4)
        out = smoother(_face(model, crop_params(image, roi), roi), i / FPS)
        np.testing.assert_allclose(out.landmarks, model.landmarks_3d(params[0], rois[0]), atol=0.05)
        np.testing.assert_array_equal(out.roi_box, roi)


def test_smoother_reduces_parameter_noise(reconstructor, emma):
    model = reconstructor.model
    params, rois = emma
    rng = np.random.default_rng(3)
    image = image_params(params[0], rois[0])
    # About 1% noise on the rotation and scale, 1 px on the translation.
    sigma = np.concatenate([np.full(3, 0.01 * np.linalg.norm(image[:3])), [1.0]] * 3)
    raw, smooth = [], []
    smoother = FaceSmoother(model, strength=0.5)
    for i in range(60):
        noisy = image.copy()
        noisy[:12] += rng.normal(0, 1, 12) * sigma
        face = _face(model, crop_params(noisy, rois[0]), rois[0])
        raw.append(face.landmarks[:, :2])
        out = smoother(face, i / FPS)
        smooth.append(out.landmarks[:, :2])
        assert out.params.dtype == np.float32 and out.params.shape == (62,)
        assert out.landmarks.shape == (68, 3)
        expected = pose_from_params(out.params)
        assert (out.pose.yaw, out.pose.pitch, out.pose.roll) == (expected.yaw, expected.pitch, expected.roll)
    assert _jitter(smooth) < 0.5 * _jitter(raw)


def test_strength_zero_passes_faces_through_and_resets(reconstructor, emma):
    model = reconstructor.model
    params, rois = emma
    face = _face(model, params[0], rois[0])
    moved = replace(face, roi_box=face.roi_box + 40)
    moved = replace(moved, landmarks=model.landmarks_3d(moved.params, moved.roi_box))
    smoother = FaceSmoother(model, strength=0.0)
    assert smoother(face, 0.0) is face
    smoother.strength = 1.0
    smoother(face, 0.0)
    lagging = smoother(moved, 1 / FPS)
    assert np.abs(lagging.landmarks - moved.landmarks).max() > 1.0
    smoother.strength = 0.0
    smoother.strength = 1.0
    np.testing.assert_allclose(smoother(moved, 2 / FPS).landmarks, moved.landmarks, atol=1e-3)
