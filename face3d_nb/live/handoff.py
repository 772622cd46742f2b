"""Handing work from a producer thread to a thread of its own, newest wins.

An engine subscriber must return quickly (the engine's subscriber contract), so slow work on its
events (encoding a picture, say) is offered to a :class:`Handoff` instead: the offer never waits,
and when the work cannot keep up, the events it had no time for are skipped, never queued.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Handoff"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_EMPTY = object()


class Handoff(Generic[T]):
    """Calls ``work(item)`` on a thread named ``name`` with the newest item offered.

    :meth:`offer` (any thread, never blocks) puts an item in a one-item slot, replacing the one
    still waiting there; the thread takes it from the slot and calls ``work`` with it, at most once
    every ``interval`` seconds (measured between the starts of two calls; 0: as soon as the last
    call has returned). A ``work`` that raises is logged and the thread goes on. ``handled`` counts
    the calls made, ``replaced`` the items dropped for a newer one. :meth:`close` ends the thread.
    """

    def __init__(self, work: Callable[[T], None], *, interval: float = 0.0, name: str = "face3d-handoff"):
        if not interval >= 0:
            raise ValueError(f"interval must be >= 0 seconds, got {interval}")
        self._work = work
        self._interval = interval
        self._cond = threading.Condition()
        self._item: object = _EMPTY
        self._closed = False
        self.handled = 0
        self.replaced = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def offer(self, item: T) -> None:
        """Hand ``item`` over, replacing the item still waiting; ignored once closed."""
        with self._cond:
            if self._closed:
                return
            if self._item is not _EMPTY:
                self.replaced += 1
            self._item = item
            self._cond.notify_all()

    def close(self, timeout: float = 5.0) -> None:
        """Drop the item waiting and end the thread after the call in progress (waiting up to
        ``timeout`` seconds for it, unless called from ``work`` itself)."""
        with self._cond:
            self._closed = True
            self._item = _EMPTY
            self._cond.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("%s is still working; it will exit on its own", self._thread.name)

    def _take(self, due: float) -> object:
        with self._cond:
            while not self._closed:
                delay = due - time.monotonic()
                if self._item is _EMPTY or delay > 0:
                    self._cond.wait(delay if self._item is not _EMPTY else None)
                    continue
                item, self._item = self._item, _EMPTY
                return item
            return _EMPTY

    def _run(self) -> None:
        due = float("-inf")
        while (item := self._take(due)) is not _EMPTY:
            due = time.monotonic() + self._interval
            try:
                self._work(item)
            except Exception:
                log.exception("%s: work on an item failed", self._thread.name)
            self.handled += 1
