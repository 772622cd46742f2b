"""How far the page is: the round-trip time from the kernel to the page and back, and what it means
for the app's defaults (mesh detail and camera input size).

A kernel on Binder or another remote machine reaches the page over the internet: every mesh update
and camera frame pays the distance. :class:`LinkProbe` measures it once the page has loaded, with
a few tiny messages, and :func:`defaults_for` turns it into settings that keep the app responsive.

The protocol (custom messages)
------------------------------
- page -> kernel: ``{"type": "hello"}`` when the page has loaded the probe (again after a reload).
- kernel -> page: ``{"type": "ping", "n": int}``; page -> kernel: ``{"type": "pong", "n": int}``
  at once. The kernel sends ``pings`` of them one after another and takes the shortest time from
  sending a ping to receiving its pong (both on the kernel's clock): waiting behind other work on
  either side (a page still loading) only ever adds to the distance itself.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anywidget
import traitlets

__all__ = ["LinkDefaults", "LinkProbe", "defaults_for"]

log = logging.getLogger(__name__)

_STATIC = Path(__file__).parent / "static"

# Round trips (ms) up to which each setting keeps mesh updates flowing: a local or LAN page, a
# nearby data centre, anything further.
_TIERS = ((30.0, "full", 320, "up to 30 ms"), (120.0, "medium", 320, "of 30 to 120 ms"))
_FAR = ("low", 256, "over 120 ms")


@dataclass(frozen=True)
class LinkDefaults:
    """Settings for a page ``rtt_ms`` milliseconds away: mesh ``detail`` level, camera
    ``input_size`` (long side, pixels) and a ``reason`` to show the user."""

    rtt_ms: float
    detail: str
    input_size: int
    reason: str


def defaults_for(rtt_ms: float) -> LinkDefaults:
    """The mesh detail and input size for a page ``rtt_ms`` away: full detail close by, medium
    within 120 ms, low and smaller frames further (or when the time is unknown, NaN)."""
    detail, size, tier = _FAR
    for limit, tier_detail, tier_size, tier_range in _TIERS:
        if rtt_ms <= limit:
            detail, size, tier = tier_detail, tier_size, tier_range
            break
    measured = f"{rtt_ms:.0f} ms" if math.isfinite(rtt_ms) else "unknown"
    reason = (f"Round trip to the kernel: {measured}, so the app starts with {detail} mesh detail and {size} px "
              f"camera frames (the settings for round trips {tier}). Change them below.")
    return LinkDefaults(rtt_ms, detail, size, reason)


class LinkProbe(anywidget.AnyWidget):
    """Measures the round-trip time to the page once it has loaded (see the module docstring).

    Display it (it shows ``message``). Traits:

    - ``message`` ("", synced): text shown in the page (the app puts its choice of defaults here).
    - ``pings`` (5, kernel only): round trips per measurement.
    - ``rtt_ms`` (NaN, read-only): the shortest round trip of the last complete measurement, ms.
    """

    _esm = _STATIC / "link.js"
    _css = _STATIC / "face3d.css"

    message = traitlets.Unicode("").tag(sync=True)
    pings = traitlets.Int(5)
    rtt_ms = traitlets.Float(math.nan, read_only=True)

    def __init__(self, clock: Callable[[], float] = time.monotonic, **kwargs):
        super().__init__(**kwargs)
        self._clock = clock
        self._sent: dict[int, float] = {}
        self._times: list[float] = []
        self._n = 0
        self.on_msg(self._handle_message)

    @traitlets.validate("pings")
    def _check_pings(self, proposal):
        if proposal["value"] < 1:
            raise traitlets.TraitError(f"pings must be at least 1, got {proposal['value']}")
        return proposal["value"]

    def measure(self) -> None:
        """Start a new measurement (the page starts one itself when it loads)."""
        self._times = []
        self._sent = {}
        self._ping()

    def _ping(self) -> None:
        self._n += 1
        self._sent[self._n] = self._clock()
        self.send({"type": "ping", "n": self._n})

    def _handle_message(self, _widget, content, _buffers) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "hello":
            self.measure()
        elif kind == "pong":
            sent = self._sent.pop(content.get("n"), None)
            if sent is None:
                return
            self._times.append((self._clock() - sent) * 1000)
            if len(self._times) < self.pings:
                self._ping()
            else:
                self.set_trait("rtt_ms", min(self._times))
                log.info("round trip to the page: %.1f ms (shortest of %d)", self.rtt_ms, len(self._times))
        else:
            log.debug("ignored a message from the page: %r", content)
