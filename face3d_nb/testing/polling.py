"""Waiting in tests for what another thread or process does: poll a condition, never sleep a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["wait_for", "wait_until"]

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float, interval: float = 0.25, message: str = "condition") -> T:
    """Poll ``condition()`` every ``interval`` seconds until it returns a truthy value (returned);
    TimeoutError naming ``message`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {message}")
        time.sleep(interval)
    return value


def wait_for(condition: Callable[[], T], timeout: float = 60.0, message: str = "condition") -> T:
    """:func:`wait_until` polling every 20 ms (for threads of this process)."""
    return wait_until(condition, timeout, 0.02, message)
