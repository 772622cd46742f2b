"""Capture times stamped by another clock (a page's), mapped onto this process's clock.

The live app's frames carry the page's wall clock. The engine times smoothing, frame ages and
latency with them, and the plots trim their history by them, so a page must not be able to stop
time: one frame stamped 9e15 would otherwise hold every later frame of its track "in the past"
(smoothing frozen for good, the pose plot never trimmed again). :class:`CaptureClock` maps each
stamp onto ``clock`` so that times it returns are never later than now, never earlier than the
one before (monotonic), and never more than ``max_delay`` seconds before now.

On one machine the page's wall clock is the kernel's, and stamps are taken as they are (offset 0),
so the engine's latency figures keep their meaning. A stamp that lands outside
``[now - max_delay, now + max_delay]`` (a page on a machine whose clock differs, a clock that was
set, a hostile value) re-measures the offset from that frame, which is taken as captured now: one
wild stamp costs one frame's timing, not the session.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

__all__ = ["MAX_DELAY", "CaptureClock"]

#: Oldest a frame is taken to be on arrival, seconds: the page gives up on a frame unacknowledged
#: for 5 s (:mod:`~face3d_nb.widgets.camera`), so no frame it still waits for is older.
MAX_DELAY = 5.0


class CaptureClock:
    """``capture_clock(stamp)``: ``stamp`` (seconds on the other clock) -> seconds on ``clock``;
    see the module docstring. A stamp that is not a finite number is taken as now. Thread-safe.

    ``offset`` is the current estimate of ``clock`` minus the other clock, seconds.
    """

    def __init__(self, clock: Callable[[], float] = time.time, max_delay: float = MAX_DELAY):
        if not (math.isfinite(max_delay) and max_delay > 0):
            raise ValueError(f"max_delay must be positive, got {max_delay}")
        self._clock = clock
        self.max_delay = max_delay
        self.offset = 0.0
        self._last = -math.inf
        self._lock = threading.Lock()

    def __call__(self, stamp: float) -> float:
        with self._lock:
            now = self._clock()
            local = stamp + self.offset if math.isfinite(stamp) else now
            if not abs(local - now) <= self.max_delay:
                self.offset = now - stamp
                local = now
            # Never ahead of now, never behind the last time given (even if ``clock`` steps back).
            self._last = max(min(local, now), self._last)
            return self._last
