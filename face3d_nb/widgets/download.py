"""Browser downloads from the kernel: files made in Python, and pictures of a 3D view taken in the page.

A file the kernel makes (a mesh, a recording) lives in the kernel's process, possibly on a machine
far away; :class:`Downloader` hands it to the page, which saves it as a browser download. The front
end (``static/download.js``) ships with the package.

The protocol (custom messages; nothing is synced as a trait except ``target`` and ``message``)
-------------------------------------------------------------------------------------------------
- kernel -> page: ``{"type": "file", "id": int, "name": str, "mime": str, "part": int,
  "parts": int, "size": int}`` with exactly one buffer, ``part`` of ``parts`` consecutive pieces
  of at most ``chunk_size`` bytes (a long recording need not be one huge message). On the last
  part the page joins them into a ``Blob`` and clicks a download link for it.
- kernel -> page: ``{"type": "screenshot", "id": int, "name": str}``: the page takes a PNG of the
  canvas in the view of ``target`` (a pythreejs ``Renderer``; its WebGL canvas keeps its drawing
  buffer) and downloads it. Nothing crosses the network but this request.
- page -> kernel: ``{"type": "delivered", "id": int, "name": str, "size": int}`` once the
  download was handed to the browser, or ``{"type": "failed", "id": int, "reason": str}``.
- Browsers let a page start downloads without asking while the user has just clicked (a few
  seconds), so deliver in answer to a button press.

Messages reach the page only while it is connected; a delivery to no page is never acknowledged.
"""

from __future__ import annotations

import logging
import math
import re
import threading

import anywidget
import traitlets
from ipywidgets import Widget, widget_serialization

from . import STATIC

__all__ = ["Downloader", "safe_filename"]

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def safe_filename(name: str) -> str:
    """``name`` if it is a plain file name (letters, digits, ``._-``, at most 128 characters, not
    starting with a dot or dash); ``ValueError`` otherwise."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"not a plain file name: {name!r} (use letters, digits, '.', '_' and '-')")
    return name


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


class Downloader(anywidget.AnyWidget):
    """Saves files from the kernel, and screenshots of a 3D view, as browser downloads.

    See the module docstring for the protocol. Display it (it shows a one-line status) and call
    :meth:`deliver` or :meth:`screenshot` in answer to a button press.

    Traits:

    - ``target`` (None, synced): the pythreejs ``Renderer`` whose view :meth:`screenshot` takes.
    - ``message`` ("", synced): the status line the page shows (last file saved, or what failed).
    - ``chunk_size`` (4 MiB, kernel only): largest piece of a file per message.
    - ``delivered`` (0, read-only): downloads the page reported as handed to the browser.
    - ``failed`` (0, read-only): downloads the page reported as failed.
    """

    _esm = STATIC / "download.js"

    target = traitlets.Instance(Widget, allow_none=True).tag(sync=True, **widget_serialization)
    message = traitlets.Unicode("").tag(sync=True)
    chunk_size = traitlets.Int(4 * 1024 * 1024)
    delivered = traitlets.Int(0, read_only=True)
    failed = traitlets.Int(0, read_only=True)

    def __init__(self, target: Widget | None = None, **kwargs):
        super().__init__(target=target, **kwargs)
        self._lock = threading.Lock()
        self._next_id = 0
        self.on_msg(self._handle_message)

    @traitlets.validate("chunk_size")
    def _check_chunk(self, proposal):
        if proposal["value"] < 1024:
            raise traitlets.TraitError(f"chunk_size must be at least 1024 bytes, got {proposal['value']}")
        return proposal["value"]

    def deliver(self, name: str, data: bytes, mime: str = "application/octet-stream") -> int:
        """Send ``data`` to the page to be saved as ``name``; returns the delivery's id (any thread)."""
        safe_filename(name)
        view = memoryview(data).cast("B")
        parts = max(1, math.ceil(view.nbytes / self.chunk_size))
        with self._lock:
            ident = self._take_id()
            for part in range(parts):
                piece = view[part * self.chunk_size:(part + 1) * self.chunk_size]
                self.send({"type": "file", "id": ident, "name": name, "mime": mime, "part": part, "parts": parts,
                           "size": view.nbytes}, [piece])
        self.message = f"saving {name} ({_size(view.nbytes)})…"
        return ident

    def screenshot(self, name: str = "face3d.png") -> int:
        """Ask the page for a PNG of ``target``'s view, saved as ``name``; returns the request's id."""
        safe_filename(name)
        if self.target is None:
            raise ValueError("no target: set Downloader.target to the Renderer to take pictures of")
        with self._lock:
            ident = self._take_id()
            self.send({"type": "screenshot", "id": ident, "name": name})
        return ident

    def _take_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _handle_message(self, _widget, content, _buffers) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "delivered":
            name, size = str(content.get("name", "")), content.get("size")
            size = size if isinstance(size, int) and not isinstance(size, bool) else 0
            self.set_trait("delivered", self.delivered + 1)
            self.message = f"saved {name} ({_size(size)})"
        elif kind == "failed":
            self.set_trait("failed", self.failed + 1)
            reason = str(content.get("reason", "unknown reason"))[:300]
            self.message = f"could not save: {reason}"
            log.warning("a download failed in the page: %s", reason)
        else:
            log.debug("ignored a message from the page: %r", content)
