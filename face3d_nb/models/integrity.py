"""Whether an installed model file can be trusted when it is loaded.

A file is installed only after its hash matched the manifest, but a cache can be shared
(``FACE3D_HOME`` on a team volume, a group-writable cache dir), and then anyone who can write
there can replace a file after it was verified. So a file is loaded as is only when its location
protects it: the file and every directory above it are owned by the current user (or root) and
writable by no one else, except sticky directories such as ``/tmp``, where others cannot rename
what is ours. Anywhere else it is verified again when loaded (:meth:`ModelStore.resolve`): against
its pinned git blob SHA-1 for an upstream file, against a rebuild from the verified upstream file
for a converted ONNX graph. That costs ~0.1 s a load (hashing: mb1 ~25 ms, the BFM ~55 ms; each
graph rebuilt ~15 ms); a private cache skips it (~1 ms of ``stat`` calls), so a file of one's own,
such as the tests' synthetic models, loads there as it is.

On Windows, which has no POSIX modes, the per-user cache is protected by its ACLs and every
location is taken as protected.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

__all__ = ["exposure", "git_blob_sha1"]


def git_blob_sha1(path: Path) -> str:
    """Git's object id of a file's content: sha1 of ``b"blob <size>\\0" + content``."""
    with open(path, "rb") as f:
        h = hashlib.sha1(b"blob %d\0" % os.fstat(f.fileno()).st_size)
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def exposure(path: Path) -> str | None:
    """Why someone else could replace ``path`` (e.g. ``"/srv/models is writable by its group"``),
    or None when only the current user (or root) can."""
    if not hasattr(os, "getuid"):
        return None
    trusted = {os.getuid(), 0}
    absolute = Path(os.path.abspath(path))
    # The path as written (a symlink in it is replaceable by whoever can write its directory) and
    # the file it resolves to.
    for place in dict.fromkeys([absolute, *absolute.parents, path.resolve(), *path.resolve().parents]):
        try:
            info = os.lstat(place)
        except FileNotFoundError:
            continue
        if info.st_uid not in trusted:
            return f"{place} is owned by another user (uid {info.st_uid})"
        if stat.S_ISLNK(info.st_mode) or (stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_ISVTX):
            continue
        if info.st_mode & stat.S_IWOTH:
            return f"{place} is writable by everyone"
        if info.st_mode & stat.S_IWGRP:
            return f"{place} is writable by its group"
    return None
