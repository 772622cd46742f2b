"""The live apps open in this kernel: one at a time, and none left open at interpreter exit.

The camera is one device, and re-running ``app = FaceApp()`` must not leave the previous app's
worker, threads, ONNX sessions and comms behind: :func:`take_over` closes the apps opened before.
Apps still open when the kernel shuts down (a shutdown request ends the interpreter normally) are
closed at exit, which also keeps a recording in progress (see the save panel).
"""

from __future__ import annotations

import atexit
import logging
import weakref
from typing import Protocol

import ipywidgets as widgets

__all__ = ["release", "take_over", "widget_tree"]

log = logging.getLogger(__name__)


class _Closable(Protocol):
    def close(self) -> None: ...


_open: weakref.WeakSet = weakref.WeakSet()


def take_over(app: _Closable) -> None:
    """Close every app opened before ``app`` and count ``app`` as open."""
    for previous in list(_open):
        log.info("closing the previous %s of this kernel", type(previous).__name__)
        previous.close()
    _open.add(app)


def release(app: _Closable) -> None:
    """``app`` is closed (or closing): nothing to do for it at exit."""
    _open.discard(app)


def widget_tree(root: widgets.Widget) -> list[widgets.Widget]:
    """``root`` and every widget its traits reach, depth first: children, and also the ``Layout``
    and ``Style`` widgets and pythreejs objects (cameras, shadows), each a comm of its own that
    ``Widget.close`` leaves open."""
    found: dict[int, widgets.Widget] = {}
    pending = [root]
    while pending:
        value = pending.pop()
        if isinstance(value, widgets.Widget):
            if id(value) in found:
                continue
            found[id(value)] = value
            pending.extend(value.trait_values().values())
        elif isinstance(value, (list, tuple)):
            pending.extend(value)
        elif isinstance(value, dict):
            pending.extend(value.values())
    return list(found.values())


@atexit.register
def _close_open_apps() -> None:
    for app in list(_open):
        app.close()
