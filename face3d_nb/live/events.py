"""What a live source publishes: one event per frame, a result or an error.

The live :class:`~face3d_nb.live.engine.Engine` and the :class:`~face3d_nb.live.replayer.Replayer`
publish these to their subscribers; the viewer, the plots, the recorder and the save panel consume
them. Plain frozen dataclasses, so a consumer needs neither the engine nor its thread to use them.

Units and clocks: coordinates are pixels of the frame as processed (after the engine's
``max_input_size`` cap; divide by :attr:`FrameResult.scale` for the submitted frame's pixels),
``captured_at`` is seconds on the publisher's clock (the engine's ``clock``, ``time.monotonic`` by
default; ``time.time`` in the app, whose frames carry the page's wall clock mapped onto the
kernel's by :class:`~face3d_nb.live.capture_clock.CaptureClock`), and ``timings`` are
milliseconds of ``time.perf_counter``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.pipeline import Face

__all__ = ["ErrorEvent", "Event", "FrameResult", "TrackedFace"]


@dataclass(frozen=True)
class TrackedFace:
    """One face in one frame: ``track_id`` stable across frames (never reused by an engine);
    ``face`` smoothed params, pose and landmarks in the processed frame's pixels; ``vertices``
    (K, 3) float32 mesh in the same pixels at the frame's detail level (K = 38365 at ``"full"``),
    or None when the engine's ``config.dense`` is off."""

    track_id: int
    face: Face
    vertices: np.ndarray | None


@dataclass(frozen=True)
class FrameResult:
    """The outcome of one processed frame.

    ``seq`` the submit sequence number (the caller's, or the engine's count of submitted frames
    from 0); ``captured_at`` seconds on the publisher's clock; ``frame_shape`` (h, w) of the frame as
    processed (after the ``max_input_size`` cap); ``faces`` by track id; ``timings`` milliseconds
    per stage (see :data:`~face3d_nb.live.stats.STAGES`; empty for a replayed frame); ``detected``
    whether the detector ran; ``frame`` the processed (h, w, 3) BGR uint8 frame, which is the
    submitted array itself when that needed no conversion or shrinking (None when the engine's
    ``config.keep_frame`` is off, and for a replayed frame); ``scale`` processed pixels per input
    pixel (<= 1): divide coordinates by it for the input's pixels; ``detail`` the mesh detail level
    of the faces' vertices (its triangles: ``reconstructor.levels.detail(detail).triangles``).
    """

    seq: int
    captured_at: float
    frame_shape: tuple[int, int]
    faces: tuple[TrackedFace, ...]
    timings: dict[str, float]
    detected: bool
    frame: np.ndarray | None
    scale: float = 1.0
    detail: str = "full"


@dataclass(frozen=True)
class ErrorEvent:
    """A frame that could not be processed: ``seq`` and ``captured_at`` as in :class:`FrameResult`;
    ``error`` a one-line message."""

    seq: int
    captured_at: float
    error: str


#: Every event a live source publishes.
Event = FrameResult | ErrorEvent
