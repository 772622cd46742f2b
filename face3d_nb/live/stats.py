"""Live engine statistics: frame counts, rolling frame rates and latency percentiles.

:class:`StatsRecorder` is fed by the engine (``submit`` on the caller's thread, results on the
worker) and guarded by its own lock; :meth:`StatsRecorder.snapshot` returns an immutable
:class:`EngineStats`.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["STAGES", "EngineStats", "RateMeter", "StatsRecorder"]

# ``wait``: capture to the start of processing; ``total``: start of processing to result;
# ``end_to_end``: capture to result, as handed to subscribers.
STAGES = ("wait", "decode", "detect", "regress", "reconstruct", "total", "end_to_end")


@dataclass(frozen=True)
class EngineStats:
    """A snapshot of the engine's counters and rolling figures.

    Counts since start: ``submitted`` frames given to ``submit``; ``processed`` frames that gave a
    result; ``dropped`` frames replaced by a newer one before the worker took them, or discarded
    while paused or stopped; ``skipped`` frames passed over by ``frame_skip``; ``errors`` frames that
    failed (an :class:`~face3d_nb.live.events.ErrorEvent` each); ``callback_errors`` subscriber calls
    that raised. Once the engine is idle, ``submitted == processed + errors + dropped + skipped``.

    ``input_fps`` and ``processed_fps``: frames per second over the last ``rate_window`` seconds.
    ``latency_p50`` and ``latency_p95``: milliseconds per stage of :data:`STAGES` over the last
    ``stats_window`` processed frames (empty before the first).
    """

    submitted: int
    processed: int
    dropped: int
    skipped: int
    errors: int
    callback_errors: int
    input_fps: float
    processed_fps: float
    latency_p50: dict[str, float]
    latency_p95: dict[str, float]

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        """A few human-readable lines."""
        lines = [
            f"frames: {self.submitted} submitted, {self.processed} processed, {self.dropped} dropped, "
            f"{self.skipped} skipped, {self.errors} errors",
            f"rate: {self.input_fps:.1f} fps in, {self.processed_fps:.1f} fps processed",
        ]
        if self.latency_p50:
            lines.append("latency ms (p50 / p95):")
            lines += [f"  {k:<12} {self.latency_p50[k]:8.1f} / {self.latency_p95[k]:8.1f}" for k in self.latency_p50]
        return "\n".join(lines)


class RateMeter:
    """Events per second over a sliding window of ``window`` seconds.

    ``rate(now)`` is (n - 1) / (last - first) over the n events within the window, 0 with fewer
    than two, so it does not ramp up from zero and drops to 0 ``window`` seconds after events stop.
    """

    def __init__(self, window: float):
        self.window = window
        self._times: deque[float] = deque()

    def tick(self, t: float) -> None:
        self._times.append(t)
        self._trim(t)

    def rate(self, now: float) -> float:
        self._trim(now)
        if len(self._times) < 2:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0

    def _trim(self, now: float) -> None:
        while self._times and self._times[0] <= now - self.window:
            self._times.popleft()


class StatsRecorder:
    """Thread-safe counters, rate meters and per-stage latency windows."""

    def __init__(self, stats_window: int = 300, rate_window: float = 2.0):
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(("submitted", "processed", "dropped", "skipped", "errors", "callback_errors"), 0)
        self._input = RateMeter(rate_window)
        self._output = RateMeter(rate_window)
        self._latency = {stage: deque(maxlen=stats_window) for stage in STAGES}

    def configure(self, stats_window: int, rate_window: float) -> None:
        """Resize the windows, keeping the most recent samples."""
        with self._lock:
            self._input.window = self._output.window = rate_window
            self._latency = {k: deque(v, maxlen=stats_window) for k, v in self._latency.items()}

    def count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] += n

    def submitted(self, t: float) -> None:
        with self._lock:
            self._counts["submitted"] += 1
            self._input.tick(t)

    def processed(self, t: float, timings: dict[str, float]) -> None:
        with self._lock:
            self._counts["processed"] += 1
            self._output.tick(t)
            for stage in STAGES:
                if stage in timings:
                    self._latency[stage].append(timings[stage])

    def snapshot(self, now: float) -> EngineStats:
        with self._lock:
            p50, p95 = {}, {}
            for stage, values in self._latency.items():
                if values:
                    p50[stage], p95[stage] = (float(v) for v in np.percentile(np.fromiter(values, float), [50, 95]))
            return EngineStats(
                **self._counts,
                input_fps=self._input.rate(now),
                processed_fps=self._output.rate(now),
                latency_p50=p50,
                latency_p95=p95,
            )
