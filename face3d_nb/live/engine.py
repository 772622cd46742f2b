"""The live engine: frames in on any thread, tracked and smoothed faces out on a worker thread.

Flow control: ``submit`` never blocks. It puts the frame in a one-frame slot, replacing (and
counting as dropped) any frame the worker has not taken yet, so the worker always takes the newest
frame and a slow worker drops frames instead of falling behind. With ``frame_skip`` k only every
k-th submitted frame reaches the slot; with ``max_fps`` the worker leaves the slot alone until
``1 / max_fps`` seconds after it last started a frame (newer frames keep replacing the one there);
with ``max_age`` it drops, rather than processes, a frame that has become older than that (the
source delivered its next frame late).

The worker runs, per frame: decode (encoded bytes to BGR, shrink to ``max_input_size``) ->
detect/track (:mod:`~face3d_nb.core.tracking`) -> regress -> reconstruct (smoothing per track,
:mod:`~face3d_nb.core.smoothing`, and the dense mesh), then calls every subscriber with a
:class:`~face3d_nb.live.events.FrameResult`, or an :class:`~face3d_nb.live.events.ErrorEvent` when
the frame failed; one that raises is logged and counted, and the others still get the event.

The subscriber contract: subscribers run on the worker, one after another, and the next frame
waits for them. There a subscriber may keep or count the event, append a line to an open file, and
set widget traits or send widget messages (ipywidgets sends from any thread without waiting for the
page, so mesh updates leave at once). It must not encode or draw pictures, write whole files, or
wait for another thread, the page or the network: such work goes to a thread of its own, handed the
newest event (:class:`~face3d_nb.live.handoff.Handoff`).

Times: ``captured_at`` and the engine's ``clock`` (default ``time.monotonic``) share one time base;
they drive smoothing, ``max_fps``, frame rates and the ``wait`` and ``end_to_end`` latencies. Stage
durations are measured with ``time.perf_counter``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..core.frames import ImageError, frame_to_bgr, shrink_to
from ..core.pipeline import Reconstructor
from ..core.smoothing import TrackSmoothers
from ..core.timing import elapsed_ms
from ..core.tracking import Tracker, TrackerStep
from .config import RESTART_KEYS, EngineConfig
from .events import ErrorEvent, Event, FrameResult, TrackedFace
from .stats import EngineStats, StatsRecorder
from .subscribers import Subscribers

__all__ = ["Engine"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Job:
    frame: np.ndarray | bytes
    captured_at: float
    seq: int


class Engine:
    """Background face reconstruction for a live stream of frames.

    ``config`` an :class:`~face3d_nb.live.config.EngineConfig` (see it for every setting);
    ``reconstructor`` a loaded :class:`~face3d_nb.core.pipeline.Reconstructor` to use (and leave open)
    instead of building one from ``config.arch``, ``threads``, ``provider`` and ``detect_size`` at
    :meth:`start` (and releasing it at :meth:`stop`); ``clock`` the time source, seconds.

    Frames submitted before :meth:`start`, while paused or after :meth:`stop` are dropped.
    The frame arrays passed to :meth:`submit` must not be modified afterwards (they are not copied).
    """

    def __init__(self, config: EngineConfig | None = None, reconstructor: Reconstructor | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self._config = config or EngineConfig()
        self._given = reconstructor
        self._clock = clock
        self._cond = threading.Condition()
        self._pending: _Job | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._paused = False
        self._reset_requested = False
        self._busy = False
        self._submitted = 0
        self._last_start = float("-inf")
        self._subscribers: Subscribers[Event] = Subscribers("engine")
        self._stats = StatsRecorder(self._config.stats_window, self._config.rate_window)
        # Owned by the worker thread while it runs.
        self._reconstructor: Reconstructor | None = None
        self._tracker: Tracker | None = None
        self._smoothers: TrackSmoothers | None = None

    # -- control ---------------------------------------------------------------------------
    @property
    def config(self) -> EngineConfig:
        return self._config

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive() and not self._stopping

    @property
    def paused(self) -> bool:
        return self._paused

    def start(self) -> None:
        """Load the models (unless given) and start the worker; a no-op when already running.

        Raises what loading raises (e.g. :class:`~face3d_nb.models.store.ModelsMissingError`), and
        ``RuntimeError`` when the previous worker is still busy with a frame (:meth:`stop` failed).
        """
        if self.running:
            return
        if self._thread is not None and not self.stop():
            raise RuntimeError("the engine cannot start: its previous worker is still busy with a frame")
        config = self._config
        reconstructor = self._given
        if reconstructor is None:
            reconstructor = Reconstructor.installed(config.arch, threads=config.threads, provider=config.provider,
                                                    detect_size=config.detect_size)
        reconstructor.warm_up(config.max_input_size)
        # Build the detail level now rather than on the first camera frame.
        reconstructor.levels.model(config.detail)
        with self._cond:
            self._reconstructor = reconstructor
            self._tracker = Tracker(reconstructor)
            self._smoothers = TrackSmoothers(reconstructor.model)
            self._stopping = self._paused = self._reset_requested = False
            self._last_start = float("-inf")
            self._thread = threading.Thread(target=self._run, name="face3d-engine", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop the worker after its current frame, join it and release the models it loaded.

        False (and a warning in the log) when the worker is still busy after ``timeout`` seconds: it
        takes no other frame, and stops and releases the models as soon as that one is done.
        """
        with self._cond:
            thread = self._thread
            self._stopping = True
            self._drop_pending()
            self._cond.notify_all()
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        if thread.is_alive():
            log.warning("the engine worker is still busy after %s s: it stops once its frame is done", timeout)
            return False
        self._thread = None
        return True

    def set_reconstructor(self, reconstructor: Reconstructor | None) -> None:
        """Use ``reconstructor`` from the next :meth:`start` (None: build one from the config then),
        e.g. models loaded for another execution provider; ``ValueError`` while running."""
        if self.running:
            raise ValueError("the reconstructor can only change while the engine is stopped")
        self._given = reconstructor

    def pause(self) -> None:
        """Stop processing (the pending frame and frames submitted meanwhile are dropped)."""
        with self._cond:
            self._paused = True
            self._drop_pending()

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    def reset_tracking(self) -> None:
        """Forget all tracks and smoothing state before the next frame (which runs the detector)."""
        with self._cond:
            self._reset_requested = True

    def update_config(self, **overrides) -> EngineConfig:
        """Change settings from any thread; they apply from the next frame the worker takes.

        The :data:`~face3d_nb.live.config.RESTART_KEYS` (``arch``, ``threads``, ``provider``,
        ``detect_size``) build the models, so they can only change while the engine is stopped
        (``ValueError`` otherwise). Returns the new config.
        """
        with self._cond:
            new = self._config.replace(**overrides)
            changed = [k for k in sorted(RESTART_KEYS) if getattr(new, k) != getattr(self._config, k)]
            if changed and self.running:
                raise ValueError(f"{changed[0]}: can only change while the engine is stopped")
            self._config = new
            self._cond.notify_all()
        self._stats.configure(new.stats_window, new.rate_window)
        return new

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every frame submitted so far has been processed or dropped and the worker is
        idle; False if that did not happen within ``timeout`` seconds (None: no limit)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while (self._pending is not None or self._busy) and self.running:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return self._pending is None and not self._busy

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` on the worker for every result or error (see the subscriber contract
        above); returns a function that ends this subscription (calling it again does nothing)."""
        return self._subscribers.subscribe(callback)

    def stats(self) -> EngineStats:
        return self._stats.snapshot(self._clock())

    def __enter__(self) -> Engine:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- input -----------------------------------------------------------------------------
    def submit(self, frame: np.ndarray | bytes, captured_at: float | None = None, seq: int | None = None) -> None:
        """Offer a frame: a BGR (or gray/BGRA) uint8 array, or encoded JPEG/PNG bytes.

        Never blocks: the frame replaces any frame still waiting. ``captured_at`` defaults to now
        on the engine's clock; ``seq`` to the number of frames submitted before this one.
        Content is checked on the worker (bad frames come back as :class:`ErrorEvent`).
        """
        if not isinstance(frame, (np.ndarray, bytes, bytearray, memoryview)):
            raise TypeError(f"expected a numpy array or encoded image bytes, got {type(frame).__name__}")
        now = self._clock()
        with self._cond:
            index = self._submitted
            self._submitted += 1
            self._stats.submitted(now)
            if index % self._config.frame_skip:
                self._stats.count("skipped")
                return
            if not self.running or self._paused:
                self._stats.count("dropped")
                return
            self._drop_pending()
            captured_at = now if captured_at is None else float(captured_at)
            self._pending = _Job(frame, captured_at, index if seq is None else seq)
            self._cond.notify_all()

    def _drop_pending(self) -> None:
        if self._pending is not None:
            self._pending = None
            self._stats.count("dropped")

    # -- worker ----------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while (taken := self._take()) is not None:
                try:
                    self._process(*taken)
                finally:
                    with self._cond:
                        self._busy = False
                        self._cond.notify_all()
        finally:
            self._tracker = None
            self._smoothers = None
            self._reconstructor = None

    def _take(self) -> tuple[_Job, EngineConfig, bool] | None:
        with self._cond:
            while not self._stopping:
                if self._paused or self._pending is None:
                    self._cond.wait()
                    continue
                config = self._config
                if config.max_fps > 0:
                    # Polled, not one long wait: the clock may not be wall time, and max_fps may change.
                    delay = self._last_start + 1.0 / config.max_fps - self._clock()
                    if delay > 0:
                        self._cond.wait(min(delay, 0.05))
                        continue
                job, self._pending = self._pending, None
                if config.max_age > 0 and self._clock() - job.captured_at > config.max_age:
                    self._stats.count("dropped")
                    self._cond.notify_all()
                    continue
                self._busy = True
                self._last_start = self._clock()
                reset, self._reset_requested = self._reset_requested, False
                return job, config, reset
            return None

    def _process(self, job: _Job, config: EngineConfig, reset: bool) -> None:
        timings = {"wait": (self._clock() - job.captured_at) * 1000}
        start = time.perf_counter()
        try:
            if reset:
                self._reset()
            image, scale = shrink_to(frame_to_bgr(job.frame, config.max_encoded_bytes, config.max_pixels),
                                     config.max_input_size)
            timings["decode"] = elapsed_ms(start)
            step = self._track(image, config)
            timings["detect"], timings["regress"] = step.detect_ms, step.regress_ms
            begin = time.perf_counter()
            faces = self._reconstruct(step, job.captured_at, config)
            timings["reconstruct"] = elapsed_ms(begin)
        except Exception as exc:  # noqa: BLE001 - one bad frame must not end the stream
            self._fail(job, exc)
            return
        timings["total"] = elapsed_ms(start)
        timings["end_to_end"] = (self._clock() - job.captured_at) * 1000
        result = FrameResult(seq=job.seq, captured_at=job.captured_at, frame_shape=image.shape[:2], faces=faces,
                             timings=timings, detected=step.detected, frame=image if config.keep_frame else None,
                             scale=scale, detail=config.detail)
        self._stats.processed(self._clock(), timings)
        self._publish(result)

    def _fail(self, job: _Job, exc: Exception) -> None:
        message = " ".join(f"{type(exc).__name__}: {exc}".split())
        self._stats.count("errors")
        if isinstance(exc, ImageError):
            log.warning("frame %s: %s", job.seq, message)
        else:
            log.error("frame %s failed", job.seq, exc_info=exc)
            # The tracker may have stopped half way; start again from a detection.
            self._reset()
        self._publish(ErrorEvent(job.seq, job.captured_at, message))

    def _reset(self) -> None:
        self._tracker.reset()
        self._smoothers.reset()

    def _track(self, image: np.ndarray, config: EngineConfig) -> TrackerStep:
        self._tracker.configure(config)
        return self._tracker.step(image)

    def _reconstruct(self, step: TrackerStep, t: float, config: EngineConfig) -> tuple[TrackedFace, ...]:
        rec = self._reconstructor
        return tuple(TrackedFace(track_id, face, rec.vertices(face, config.detail) if config.dense else None)
                     for track_id, face in self._smoothers(step.faces, t, config.smoothing))

    def _publish(self, event: Event) -> None:
        for _ in range(self._subscribers.publish(event)):
            self._stats.count("callback_errors")

