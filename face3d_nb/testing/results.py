"""Results made from known parameters (upstream's reference ones, or chosen), as the engine would
publish them: for feeding a viewer without running the networks."""

from __future__ import annotations

import time

import numpy as np

from ..core.morphable import MorphableModel, pose_from_params
from ..core.pipeline import Face
from ..live.events import FrameResult, TrackedFace

__all__ = ["posed_face", "result_of"]


def posed_face(model: MorphableModel, params: np.ndarray, roi_box, track_id: int = 1,
               vertices: bool = True) -> TrackedFace:
    """The face of ``params`` (62,) in ``roi_box`` (4,) image pixels, with ``model``'s landmarks and,
    when ``vertices``, its dense mesh."""
    roi = np.asarray(roi_box, np.float64)
    face = Face(box=np.array([*roi, 1.0], np.float32), roi_box=roi, params=params, pose=pose_from_params(params),
                landmarks=model.landmarks_3d(params, roi))
    return TrackedFace(track_id, face, model.vertices(params, roi) if vertices else None)


def result_of(faces, frame_shape=(720, 1280), frame: np.ndarray | None = None, captured_at: float | None = None,
              seq: int = 0, detail: str = "full") -> FrameResult:
    """A :class:`FrameResult` of ``faces`` (:func:`posed_face`) in a frame of ``frame_shape`` (h, w),
    captured now unless ``captured_at`` is given."""
    return FrameResult(seq=seq, captured_at=time.time() if captured_at is None else captured_at,
                       frame_shape=tuple(frame_shape), faces=tuple(faces), timings={}, detected=True, frame=frame,
                       detail=detail)
