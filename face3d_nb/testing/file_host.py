"""A file host on loopback whose every reply a test writes, to make downloads fail in real ways.

``FileHost(reply)`` serves on ``127.0.0.1`` (a free port) from threads of the test process;
``reply(handler, host)`` answers each GET (a :class:`~http.server.BaseHTTPRequestHandler`), each
request's (path, Range header) is kept in ``requests``, and ``release`` is an event a reply may
wait on to stall mid-transfer until the test says so.

:class:`UpstreamMirror` is one such host playing upstream's raw-file hosts with the real files from
:data:`~face3d_nb.testing.assets.ASSETS`, and misbehaving on request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from face3d_nb.models.store import load_manifest

from .assets import ASSETS

__all__ = ["FileHost", "UpstreamMirror", "send"]


class FileHost:
    """A loopback HTTP server answering GETs with ``reply``; :meth:`close` ends it (and any stall)."""

    def __init__(self, reply: Callable[[BaseHTTPRequestHandler, FileHost], None]):
        self.requests: list[tuple[str, str | None]] = []
        self.release = threading.Event()
        host = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                host.requests.append((self.path, self.headers.get("Range")))
                try:
                    reply(self, host)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client hung up, which is what some tests expect of it

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, name="file-host", daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


def send(handler: BaseHTTPRequestHandler, body: bytes, status: int = 200, **headers: str) -> None:
    """Reply ``status`` with ``body`` and its Content-Length; ``Content_Range="..."`` sends Content-Range."""
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class UpstreamMirror(FileHost):
    """Upstream's raw-file hosts: ``/<source>/<commit>/<path>`` of every manifest file found in
    ``ASSETS`` (404 for the others), :meth:`environ` pointing the model store here. Misbehaviour,
    switched by the test: ``cut_after`` bytes sent and the connection dropped (once),
    ``ignore_range`` (the whole file again), ``corrupt`` (the last byte flipped)."""

    def __init__(self):
        manifest = load_manifest()
        self.sources = list(manifest["sources"])
        self.files = {}
        for entry in manifest["files"].values():
            local = next((ASSETS / p for p in entry["also"] if (ASSETS / p).is_file()), None)
            if local is not None:
                commit = manifest["sources"][entry["source"]]["commit"]
                self.files[f"/{entry['source']}/{commit}/{entry['path']}"] = local
        self.cut_after: int | None = None
        self.ignore_range = False
        self.corrupt = False
        super().__init__(self._reply)

    def environ(self) -> dict[str, str]:
        """``FACE3D_URL_<SOURCE>`` of every source, pointing here."""
        return {f"FACE3D_URL_{source.upper()}": f"{self.url}/{source}/{{commit}}/{{path}}" for source in self.sources}

    def _reply(self, handler: BaseHTTPRequestHandler, _host: FileHost) -> None:
        local = self.files.get(handler.path)
        if local is None:
            handler.send_error(404)
            return
        data = local.read_bytes()
        if self.corrupt:
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        start = 0
        rng = handler.headers.get("Range")
        if rng and not self.ignore_range:
            start = int(rng.removeprefix("bytes=").rstrip("-"))
            if start >= len(data):
                handler.send_error(416)
                return
            handler.send_response(206)
            handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            handler.send_response(200)
        body = data[start:]
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if self.cut_after is not None:
            handler.wfile.write(body[: self.cut_after])
            handler.wfile.flush()
            self.cut_after = None
            handler.close_connection = True
            return
        handler.wfile.write(body)
