"""How fast the page can be reached, and which mesh transport suits that (pure Python, no widgets).

:class:`RoundTrips` keeps timed round trips to the page: each sample is a message of ``nbytes``
(kernel to page) and the seconds until the page's answer came back. Small messages (under 16 KB)
give the round trip (latency plus both ends' handling): the smallest of the recent ones. Large
ones (64 KB and more: timing pings, position updates) give the throughput: their bytes over their
time beyond that round trip, the median of the recent ones.

:func:`choose_transport` turns that into a decision. With one update in flight per mesh, a
transport sustains at most ``1 / (round trip + bytes / throughput)`` updates per second; the
position transport (hundreds of KB per update, one in flight) is kept while that allows :data:`FAST_RATE`, and
given up for coefficients (a few hundred bytes) below :data:`SLOW_RATE`. A remote kernel shows up
as a long round trip and a slow link as a low throughput; both lower that rate.
"""

from __future__ import annotations

import statistics
import threading
from collections import deque

__all__ = ["FAST_RATE", "SLOW_RATE", "TRANSPORTS", "RoundTrips", "choose_transport"]

TRANSPORTS = ("auto", "positions", "coefficients")
#: Updates per second below which "auto" switches to coefficients, and above which back to positions.
SLOW_RATE, FAST_RATE = 10.0, 20.0
_SMALL, _LARGE = 16_384, 65_536


class RoundTrips:
    """Round trip (s) and throughput (bytes/s) from the last ``window`` samples of each kind.
    Samples may come from one thread while another reads."""

    def __init__(self, window: int = 8):
        self._lock = threading.Lock()
        self._small: deque[float] = deque(maxlen=window)
        self._large: deque[tuple[int, float]] = deque(maxlen=window)

    def add(self, nbytes: int, seconds: float) -> None:
        """One round trip of ``seconds`` for a message of ``nbytes``; medium sizes are ignored."""
        if not seconds > 0:
            return
        with self._lock:
            if nbytes < _SMALL:
                self._small.append(seconds)
            elif nbytes >= _LARGE:
                self._large.append((nbytes, seconds))

    @property
    def round_trip(self) -> float | None:
        with self._lock:
            return min(self._small) if self._small else None

    @property
    def throughput(self) -> float | None:
        base = self.round_trip or 0.0
        with self._lock:
            if not self._large:
                return None
            # A sample faster than the round trip (the link got faster) still says "at least this fast".
            return statistics.median(n / max(t - base, 1e-3) for n, t in self._large)

    def update_rate(self, nbytes: int) -> float | None:
        """Updates per second a transport of ``nbytes`` per update can sustain, None until measured."""
        if self.round_trip is None or self.throughput is None:
            return None
        return 1.0 / (self.round_trip + nbytes / self.throughput)

    def summary(self) -> str:
        rtt, rate = self.round_trip, self.throughput
        return (f"round trip {'?' if rtt is None else f'{rtt * 1000:.0f} ms'}, "
                f"throughput {'?' if rate is None else f'{rate / 1e6:.2f} MB/s'}")


def choose_transport(requested: str, gpu_decode: str, round_trips: RoundTrips, position_bytes: int,
                     current: str) -> tuple[str, str]:
    """The transport to use and a one-line reason (empty when there is nothing to say).

    ``requested`` one of :data:`TRANSPORTS`; ``gpu_decode`` the page's answer ("" not known yet,
    "ok", else why the page cannot decode on its GPU); ``position_bytes`` one position update;
    ``current`` the transport in use. "auto" starts with positions, which every page can draw.
    """
    if requested not in TRANSPORTS:
        raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, got {requested!r}")
    if requested == "positions":
        return "positions", ""
    if gpu_decode not in ("", "ok"):
        return "positions", f"This browser cannot decode meshes on its GPU ({gpu_decode}): sending positions."
    if requested == "coefficients":
        # Before the page has answered too: a page that cannot will say so within a second.
        return "coefficients", ""
    if gpu_decode == "":
        return "positions", ""
    rate = round_trips.update_rate(position_bytes)
    if rate is None:
        return current, ""
    if rate < SLOW_RATE:
        return "coefficients", (f"Mesh updates reach this page slowly ({round_trips.summary()}; a distant kernel, "
                                f"a slow link or a busy browser): sending coefficients, which the page decodes.")
    if rate > FAST_RATE:
        return "positions", ""
    return current, ""
