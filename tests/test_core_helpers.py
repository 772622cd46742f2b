"""The per-image helpers the engine and the CLI share: loading the installed models
(``Reconstructor.installed``), one smoother per track, and fitting a frame to the input size."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from face3d_nb.core.frames import ImageError, frame_to_bgr, shrink_to
from face3d_nb.core.pipeline import Reconstructor
from face3d_nb.core.smoothing import TrackSmoothers
from face3d_nb.models.store import ModelsMissingError, ModelStore


def test_installed_loads_the_given_store_and_no_arguments_the_default_one(model_store, monkeypatch):
    rec = Reconstructor.installed(store=model_store)
    assert rec.paths == model_store.resolve()
    assert rec.levels.detail("full").triangles.shape == rec.triangles.shape
    monkeypatch.setenv("FACE3D_HOME", str(model_store.home))
    assert Reconstructor().paths == rec.paths


def test_installed_says_what_is_missing(tmp_path):
    with pytest.raises(ModelsMissingError):
        Reconstructor.installed(store=ModelStore(tmp_path))


def test_each_track_has_its_own_smoother_and_ended_tracks_are_forgotten(reconstructor, face_photo):
    [face] = reconstructor(face_photo)
    moved = replace(face, params=face.params + np.float32(0.5))
    smoothers = TrackSmoothers(reconstructor.model)
    [(_, first)] = smoothers([(1, face)], 0.0, 0.9)
    np.testing.assert_array_equal(first.params, face.params)  # a track's first frame passes through
    [(_, held), (_, fresh)] = smoothers([(1, moved), (2, moved)], 0.04, 0.9)
    assert not np.allclose(held.params, moved.params)  # track 1 remembers its past
    np.testing.assert_array_equal(fresh.params, moved.params)  # track 2 starts afresh
    smoothers([(2, moved)], 0.08, 0.9)  # track 1 ends here...
    [(_, again)] = smoothers([(1, moved)], 0.12, 0.9)
    np.testing.assert_array_equal(again.params, moved.params)  # ...so it comes back as a new track
    smoothers.reset()
    [(_, reset)] = smoothers([(2, face)], 0.16, 0.9)
    np.testing.assert_array_equal(reset.params, face.params)


def test_frames_are_shrunk_to_the_long_side_and_say_by_how_much():
    image = np.zeros((480, 1280, 3), np.uint8)
    small, scale = shrink_to(image, 640)
    assert small.shape == (240, 640, 3) and scale == 0.5
    same, scale = shrink_to(image, 1280)
    assert same is image and scale == 1.0


def test_frames_arrive_as_arrays_or_encoded_bytes_within_limits():
    image = np.full((48, 64, 3), 200, np.uint8)
    jpeg = cv2.imencode(".jpg", image)[1].tobytes()
    assert frame_to_bgr(image, max_bytes=10).shape == (48, 64, 3)  # arrays have no byte limit
    assert frame_to_bgr(jpeg, max_bytes=len(jpeg)).shape == (48, 64, 3)
    with pytest.raises(ImageError, match="over max_encoded_bytes"):
        frame_to_bgr(jpeg, max_bytes=len(jpeg) - 1)
    with pytest.raises(ImageError, match="larger than"):
        frame_to_bgr(jpeg, max_bytes=len(jpeg), max_pixels=100)
