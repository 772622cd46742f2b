"""Playing a recording back as engine events, at the recorded pace, frame-exact.

A :class:`Replayer` turns each :class:`~face3d_nb.live.recording.RecordedFrame` into the
:class:`~face3d_nb.live.events.FrameResult` the live engine would have published: the recorded
parameters (bit for bit), boxes and track ids, the pose and landmarks computed from those
parameters, and the mesh decoded at the chosen detail level. Anything that subscribes to an engine
(the 3D viewer, the plots, a :class:`~face3d_nb.live.recording.Recorder`) can subscribe to a replayer.

Every recorded frame is published once, in order, never before its time: frame i is due
``(t_i - t_0) / speed`` seconds after playing started (``t`` from the recording; after a pause or a
speed change, ``(t_i - t_(i-1)) / speed`` after it). A subscriber slower than the recording delays
the frames after it (nothing is skipped). Events carry ``captured_at`` = the
clock at publication and no camera frame. A worker thread does the waiting and publishing.

A frame that cannot be played (its event cannot be built) is published as an
:class:`~face3d_nb.live.events.ErrorEvent` in its place (``seq`` its index in the recording), saying
which frame and why, and playing goes on: one bad frame neither ends the replay nor ends it unseen.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from ..core.detail import DetailLevels
from ..core.morphable import pose_from_params
from ..core.pipeline import Face
from .events import ErrorEvent, Event, FrameResult, TrackedFace
from .recording import RecordedFrame
from .subscribers import Subscribers

__all__ = ["Replayer"]

log = logging.getLogger(__name__)

# Longest single wait, so pause, stop and speed changes take effect promptly.
_POLL = 0.05


class Replayer:
    """Publishes recorded ``frames`` as engine events (see the module docstring).

    ``levels``: detail levels of the morphable model to decode with; ``detail``: level name;
    ``speed`` (> 0): playback rate, 1 = as recorded; ``loop``: start again after the last frame;
    ``clock``: seconds (``time.time``, the app's capture clock, by default).

    ``position`` is the index of the next frame to publish; ``played`` counts frames published;
    ``finished`` is set when the last frame has been published (and ``loop`` is off).
    """

    def __init__(self, frames: Sequence[RecordedFrame], levels: DetailLevels, detail: str = "full",
                 speed: float = 1.0, loop: bool = False, clock: Callable[[], float] = time.time):
        self.frames = list(frames)
        self.levels = levels
        self.detail = detail
        levels.model(detail)
        self.loop = loop
        self._clock = clock
        self._cond = threading.Condition()
        self._anchor: tuple[float, float] | None = None
        self.speed = speed
        self._subscribers: Subscribers[Event] = Subscribers("replay")
        self._thread: threading.Thread | None = None
        self._playing = False
        self._stopping = False
        self.position = 0
        self.played = 0
        self.finished = threading.Event()

    @property
    def speed(self) -> float:
        return self._speed

    @speed.setter
    def speed(self, value: float) -> None:
        if not value > 0:
            raise ValueError(f"speed must be positive, got {value}")
        with self._cond:
            self._speed = float(value)
            # Keep the frames already due where they are; the new rate applies from now on.
            self._anchor = None

    @property
    def playing(self) -> bool:
        return self._playing

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` on the replay thread for every frame (a ``FrameResult``, or an
        ``ErrorEvent`` for a frame that cannot be played); returns the unsubscriber."""
        return self._subscribers.subscribe(callback)

    def play(self) -> None:
        """Play from ``position`` (from the start once finished)."""
        with self._cond:
            if self._playing:
                return
            if self.position >= len(self.frames):
                self.position = 0
            self.finished.clear()
            self._playing, self._stopping, self._anchor = True, False, None
            self._thread = threading.Thread(target=self._run, name="face3d-replay", daemon=True)
            self._thread.start()

    def pause(self) -> None:
        """Stop after the frame being published (if any); ``play`` continues from there."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def restart(self) -> None:
        """Play from the first frame."""
        self.pause()
        self.position = 0
        self.play()

    def event(self, index: int) -> FrameResult:
        """The event for recorded frame ``index``."""
        frame = self.frames[index]
        full, model = self.levels.model("full"), self.levels.model(self.detail)
        faces = tuple(
            TrackedFace(f.track_id,
                        Face(box=f.box, roi_box=f.roi_box, params=f.params, pose=pose_from_params(f.params),
                             landmarks=full.landmarks_3d(f.params, f.roi_box)),
                        model.vertices(f.params, f.roi_box))
            for f in frame.faces
        )
        return FrameResult(seq=frame.seq, captured_at=self._clock(), frame_shape=frame.frame_shape, faces=faces,
                           timings={}, detected=False, frame=None, detail=self.detail)

    def _event_or_error(self, index: int) -> Event:
        try:
            return self.event(index)
        except Exception as exc:
            message = f"frame {index + 1} of {len(self.frames)} cannot be played ({exc}); skipped"
            log.warning("replay: %s", message)
            return ErrorEvent(seq=index, captured_at=self._clock(), error=message)

    def _run(self) -> None:
        try:
            while self._next():
                pass
        finally:
            with self._cond:
                self._playing = False

    def _due(self, index: int) -> float:
        if self._anchor is None:
            # Anchored on the frame before (or the first one): playing resumes without a burst.
            self._anchor = (self._clock(), self.frames[max(index - 1, 0)].t)
        clock, t = self._anchor
        return clock + (self.frames[index].t - t) / self._speed

    def _next(self) -> bool:
        """Wait for the next frame's time and publish it; False when playing should end."""
        with self._cond:
            if self.position >= len(self.frames):
                if not (self.loop and self.frames):
                    self.finished.set()
                    return False
                self.position, self._anchor = 0, None
            index = self.position
            while not self._stopping and (delay := self._due(index) - self._clock()) > 0:
                self._cond.wait(min(delay, _POLL))
            if self._stopping:
                return False
        self._subscribers.publish(self._event_or_error(index))
        with self._cond:
            self.position = index + 1
            self.played += 1
        return True
