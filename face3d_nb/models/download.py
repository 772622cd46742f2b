"""Downloading one pinned file into its ``.part``: https only, never past its pinned size, one writer.

The rules:

* **https only.** A URL or a redirect to anything but https is refused before connecting; an https
  URL that redirects to http is refused too (a downgrade). The one exception is plain http to a
  loopback address (127.0.0.0/8, ::1, ``localhost``), which is what the tests' local servers and a
  local mirror set with ``FACE3D_URL_<SOURCE>`` use: nothing leaves the machine.
* **Bounded.** Every manifest entry pins its size; a reply that announces more, or a body that runs
  past it (an endless stream), stops there with :class:`AssetError` and the ``.part`` is removed.
* **Strict resume.** A ``206`` is appended to the ``.part`` only when its ``Content-Range`` starts at
  the bytes we have and ends at the pinned size; any other range (or a 416) restarts from zero.
* **One writer.** :func:`install_lock` is an inter-process lock (``filelock``) on the final path,
  held from the first byte until the verified file is renamed into place, so two kernels fetching
  the same file never share a ``.part`` and a verified file is never written again. The ``.part``
  is opened without following a symlink and must be a plain file with one link, so a ``.part``
  planted in a shared cache cannot point our writes at another file.
* **Cancellable.** ``cancel`` (a :class:`threading.Event`) is checked while waiting for the lock and
  between chunks; a cancelled download raises :class:`DownloadCancelled` and leaves its ``.part``
  to resume. A stalled connection ends at the read timeout (:data:`TIMEOUT`).
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import logging
import os
import re
import stat
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from filelock import FileLock, Timeout

__all__ = [
    "TIMEOUT", "AssetError", "DownloadCancelled", "HttpsOnlyRedirects", "check_url", "download", "install_lock",
    "is_loopback", "open_part",
]

log = logging.getLogger(__name__)

TIMEOUT = 30.0  # seconds a connection may stay silent
_CHUNK = 1 << 16
_LOCK_POLL = 0.25  # seconds between looks at ``cancel`` while another process holds the lock
_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


class AssetError(RuntimeError):
    """A model file could not be obtained, verified or converted; the message says what to do."""


class DownloadCancelled(AssetError):
    """The download was stopped by its ``cancel`` event; its ``.part`` is left to resume."""


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` (a name or an address, IPv6 in brackets or not) is this machine:
    ``localhost`` or a loopback address (names that resolve elsewhere and wildcards are not)."""
    if (host or "").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address((host or "").strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str, came_from: str | None = None) -> None:
    """Refuse (:class:`AssetError`) ``url`` unless it is https, or http to a loopback address.

    ``came_from``: the URL that redirected here; from https, only https is accepted.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    downgrade = came_from is not None and urllib.parse.urlsplit(came_from).scheme == "https"
    if parts.scheme == "http" and is_loopback(parts.hostname) and not downgrade:
        return
    what = f"a redirect from {came_from} to {url}" if came_from else url
    raise AssetError(f"refusing {what}: model files are downloaded over https only "
                     "(plain http only from a loopback address)")


class HttpsOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """urllib's redirect handling, each new URL first passed through :func:`check_url`."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        check_url(newurl, came_from=req.full_url)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(HttpsOnlyRedirects)


@contextlib.contextmanager
def install_lock(final: Path, cancel: threading.Event | None = None) -> Iterator[None]:
    """Hold the inter-process lock of ``final`` (the file ``<final>.lock`` beside it).

    Waits while another process or thread holds it, looking at ``cancel`` between tries.
    """
    lock = FileLock(final.with_name(final.name + ".lock"))
    waiting = False
    while True:
        if cancel is not None and cancel.is_set():
            raise DownloadCancelled(f"download of {final.name} cancelled")
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            lock.acquire(timeout=_LOCK_POLL)
            break
        except Timeout:
            if not waiting:
                log.info("waiting for another download of %s to finish", final.name)
                waiting = True
        except OSError as exc:
            raise AssetError(f"cannot write in {final.parent} ({exc.strerror or exc}); set FACE3D_HOME to a "
                             "folder you can write") from None
    try:
        yield
    finally:
        lock.release()


def open_part(part: Path, append: bool) -> BinaryIO:
    """``part`` opened for writing (appending or truncated), refusing a symlink or a hard link."""
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    flags |= os.O_APPEND if append else os.O_TRUNC
    try:
        fd = os.open(part, flags, 0o644)
    except OSError as exc:
        raise AssetError(f"cannot write {part} ({exc.strerror}); remove it if it is a link, "
                         "then run `face3d-nb models fetch` again") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        raise AssetError(f"{part} is not a plain file of its own (a link?); remove it and run "
                         "`face3d-nb models fetch` again")
    return os.fdopen(fd, "ab" if append else "wb")


def _length(response) -> int | None:
    """The reply's Content-Length, None when absent; -1 when it is not a number (never a match)."""
    value = response.headers.get("Content-Length")
    if value is None:
        return None
    return int(value) if value.strip().isdigit() else -1


def _range_ok(response, have: int, size: int) -> bool:
    """Whether a 206 ``response`` continues exactly where ``have`` bytes of a ``size``-byte file end."""
    match = _RANGE.fullmatch((response.headers.get("Content-Range") or "").strip())
    if match is None:
        return False
    start, end, total = map(int, match.groups())
    length = _length(response)
    return start == have and end == size - 1 and total == size and length in (None, size - have)


def _open(url: str, have: int):
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        return _OPENER.open(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            return None  # the server will not continue from ``have``: start again
        raise AssetError(f"downloading {url} failed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise AssetError(
            f"cannot download {url} ({reason}). Connect to the internet and run "
            "`face3d-nb models fetch` again, or install from a local copy with "
            "`face3d-nb models import DIR`."
        ) from None


def _resumed_response(url: str, part: Path, size: int):
    """(response, bytes of ``part`` it continues from), or (None, size) when ``part`` is complete.

    A resume is tried first; a server that answers it with any other range, or with 416, is asked
    for the whole file. A full (200) reply is always taken, from byte 0.
    """
    have = part.stat().st_size if part.exists() else 0
    if have == size:
        return None, have  # the caller's hash check decides whether it is the file
    seen = None
    for start in dict.fromkeys((have if have < size else 0, 0)):
        response = _open(url, start)
        if response is None:
            continue
        if response.status != 206:
            return response, 0
        if _range_ok(response, start, size):
            return response, start
        seen = response.headers.get("Content-Range")
        log.warning("%s answered bytes=%d- with Content-Range %r; asking for the whole file", url, start, seen)
        response.close()
    raise AssetError(f"{url} answered with a partial reply (Content-Range {seen!r}) that does not fit the "
                     f"pinned {size}-byte file; check FACE3D_URL_* or try again later")


def download(url: str, part: Path, size: int, progress: Callable[[int], None] | None = None,
             cancel: threading.Event | None = None) -> None:
    """Bring ``part`` to the ``size`` bytes served at ``url``, resuming what it holds.

    Call it holding :func:`install_lock`; the caller verifies and installs the result. ``progress``
    is called with the bytes in ``part`` after each chunk. Raises :class:`AssetError` (the
    ``.part`` kept when resuming can help, removed when it cannot) or :class:`DownloadCancelled`.
    """
    check_url(url)
    part.parent.mkdir(parents=True, exist_ok=True)
    response, done = _resumed_response(url, part, size)
    if response is None:
        return
    with response:
        length = _length(response)
        if length is not None and done + length != size:
            part.unlink(missing_ok=True)
            raise AssetError(f"{url} offers {done + length} bytes but the pinned file has {size}; "
                             "it is not the file face3d_nb expects (check FACE3D_URL_* or the network)")
        try:
            with open_part(part, append=done > 0) as out:
                while chunk := response.read(_CHUNK):
                    if done + len(chunk) > size:
                        break
                    out.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done)
                    if cancel is not None and cancel.is_set():
                        raise DownloadCancelled(f"download of {url} cancelled after {done} bytes")
        except (OSError, http.client.HTTPException) as exc:
            raise AssetError(
                f"download of {url} was interrupted after {done} bytes ({exc}); "
                "run `face3d-nb models fetch` again to resume"
            ) from None
    if chunk:
        part.unlink(missing_ok=True)
        raise AssetError(f"{url} sent more than the {size} bytes of the pinned file; the download was "
                         "discarded (check FACE3D_URL_* or the network)")
    if done < size:
        raise AssetError(
            f"download of {url} stopped at {done} of {size} bytes; run `face3d-nb models fetch` again to resume"
        )
