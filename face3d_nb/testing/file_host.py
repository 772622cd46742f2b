"""A file host on loopback whose every reply a test writes, to make downloads fail in real ways.

``FileHost(reply)`` serves on ``127.0.0.1`` (a free port) from threads of the test process;
``reply(handler, host)`` answers each GET (a :class:`~http.server.BaseHTTPRequestHandler`), each
request's (path, Range header) is kept in ``requests``, and ``release`` is an event a reply may
wait on to stall mid-transfer until the test says so.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["FileHost", "send"]


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
