"""Stage durations, as the engine and the tracker report them."""

from __future__ import annotations

import time

__all__ = ["elapsed_ms"]


def elapsed_ms(start: float) -> float:
    """Milliseconds since ``start``, a ``time.perf_counter()`` reading."""
    return (time.perf_counter() - start) * 1000
