"""A per-frame performance log: one CSV line per processed frame, readable while the engine runs.

Columns: ``time`` (local wall time the result was published, ISO 8601 with milliseconds), ``seq``,
``faces``, ``detected`` (1 when the detector ran), the latency of each stage in milliseconds
(:data:`~face3d_nb.live.stats.STAGES`, empty when the stage did not run), ``processed_fps`` (over
the engine's ``rate_window``), and ``dropped`` and ``skipped`` frames so far. A frame that failed
is a line with its ``error`` and no latencies.
"""

from __future__ import annotations

import csv
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from .events import ErrorEvent, Event
from .stats import STAGES, EngineStats

__all__ = ["COLUMNS", "PerformanceLog"]

log = logging.getLogger(__name__)

COLUMNS = ("time", "seq", "faces", "detected", *(f"{stage}_ms" for stage in STAGES), "processed_fps",
           "dropped", "skipped", "error")


class PerformanceLog:
    """Writes the log at ``path`` (its folder is made; an existing file is replaced) from the events
    it is called with; ``stats`` gives the engine's counters now (``engine.stats``).

    It is an engine subscriber: each call appends and flushes one line on the worker, which the
    subscriber contract allows. :meth:`close` (from any thread, more than once) closes the file;
    events after it are ignored. ``lines``: lines written so far.
    """

    def __init__(self, path: str | Path, stats: Callable[[], EngineStats]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._stats = stats
        self._unsubscribe: Callable[[], None] | None = None
        self._lock = threading.Lock()
        self._file = self.path.open("w", encoding="utf-8", newline="")
        self._writer = csv.writer(self._file)
        self._writer.writerow(COLUMNS)
        self._file.flush()
        self.lines = 0
        log.info("writing the performance log to %s", self.path)

    @classmethod
    def attach(cls, engine, path: str | Path) -> PerformanceLog:
        """A log of ``engine``'s frames at ``path``, subscribed to it until :meth:`close`."""
        perf = cls(path, engine.stats)
        perf._unsubscribe = engine.subscribe(perf)
        return perf

    @property
    def closed(self) -> bool:
        return self._file.closed

    def __call__(self, event: Event) -> None:
        stats = self._stats()
        now = datetime.now().isoformat(sep=" ", timespec="milliseconds")
        if isinstance(event, ErrorEvent):
            row = [now, event.seq, "", "", *([""] * len(STAGES)), f"{stats.processed_fps:.2f}", stats.dropped,
                   stats.skipped, event.error]
        else:
            timings = event.timings
            row = [now, event.seq, len(event.faces), int(event.detected),
                   *(f"{timings[s]:.3f}" if s in timings else "" for s in STAGES),
                   f"{stats.processed_fps:.2f}", stats.dropped, stats.skipped, ""]
        with self._lock:
            if self._file.closed:
                return
            self._writer.writerow(row)
            self._file.flush()
            self.lines += 1

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        with self._lock:
            if not self._file.closed:
                self._file.close()
                log.info("performance log closed: %s (%d frames)", self.path, self.lines)
