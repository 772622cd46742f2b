"""Subscribers: the callbacks a producer thread (the live engine, a replayer) calls with each event."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Subscribers"]

log = logging.getLogger(__name__)

E = TypeVar("E")


class Subscribers(Generic[E]):
    """Callbacks subscribed from any thread and called by :meth:`publish` on the producer's thread.
    ``name`` says whose subscribers they are in the log."""

    def __init__(self, name: str):
        self.name = name
        self._lock = threading.Lock()
        self._callbacks: dict[object, Callable[[E], None]] = {}

    def subscribe(self, callback: Callable[[E], None]) -> Callable[[], None]:
        """Add ``callback``; returns a function that removes it (calling it again does nothing)."""
        token = object()
        with self._lock:
            self._callbacks[token] = callback

        def unsubscribe() -> None:
            with self._lock:
                self._callbacks.pop(token, None)

        return unsubscribe

    def publish(self, event: E) -> int:
        """Call every callback with ``event``; returns how many raised (each is logged), as a broken
        subscriber must not stop the others or the producer."""
        with self._lock:
            callbacks = list(self._callbacks.values())
        failed = 0
        for callback in callbacks:
            try:
                callback(event)
            except Exception:
                failed += 1
                log.exception("%s subscriber %r raised", self.name, callback)
        return failed
