"""What the page's distance and drawing power mean for the app's starting settings (mesh detail
and camera input size). Pure Python: the measurements come from the viewer's
:class:`~face3d_nb.widgets.page_link.PageLink`.

A kernel on Binder or another remote machine reaches the page over the internet: every mesh update
and camera frame pays the distance. A page that draws 3D on the CPU (no usable GPU) pays for every
vertex of every frame drawn. :func:`defaults_for` turns both into settings that keep the app
responsive; the user can change them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["PageDefaults", "defaults_for"]

# Round trips (ms) up to which each setting keeps mesh updates flowing: a local or LAN page, a
# nearby data centre, anything further.
_TIERS = ((30.0, "full", 320, "up to 30 ms"), (120.0, "medium", 320, "of 30 to 120 ms"))
_FAR = ("low", 256, "over 120 ms")


@dataclass(frozen=True)
class PageDefaults:
    """Settings for a page ``rtt_ms`` milliseconds away: mesh ``detail`` level, camera
    ``input_size`` (long side, pixels) and a ``reason`` to show the user."""

    rtt_ms: float
    detail: str
    input_size: int
    reason: str


def defaults_for(rtt_ms: float, software: bool = False) -> PageDefaults:
    """The mesh detail and input size for a page ``rtt_ms`` away: full detail close by, medium
    within 120 ms, low and smaller frames further (or when the time is unknown, NaN). A page that
    draws in ``software`` gets at most medium detail (a quarter of the vertices to draw)."""
    detail, size, tier = _FAR
    for limit, tier_detail, tier_size, tier_range in _TIERS:
        if rtt_ms <= limit:
            detail, size, tier = tier_detail, tier_size, tier_range
            break
    why = f"the settings for round trips {tier}"
    if software and detail == "full":
        detail, why = "medium", f"{why}, with less detail as this browser draws 3D without a GPU"
    measured = f"{rtt_ms:.0f} ms" if math.isfinite(rtt_ms) else "unknown"
    reason = (f"Round trip to the kernel: {measured}, so the app starts with {detail} mesh detail and {size} px "
              f"camera frames ({why}). Change them below.")
    return PageDefaults(rtt_ms, detail, size, reason)
