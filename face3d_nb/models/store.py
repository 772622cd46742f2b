"""Model files: where they live, how they are fetched, verified, imported and converted.

Every upstream file is pinned in ``models/manifest.json`` by source commit, path and git blob
SHA-1. Downloads go to ``<home>/upstream/<path>`` (``home`` is ``$FACE3D_HOME`` or the per-user
cache dir) through a ``.part`` file that is resumed when possible, verified, then renamed into
place, so a file that exists under its final name is always a verified one. The ONNX graphs we
build from them go to ``<home>/onnx/``. Nothing here is ever written inside the source tree.

The manifest also pins upstream's sample inputs (entries marked ``"example": true``: the photos of
3DDFA_V2's ``examples/inputs`` and 3DDFA's Obama clip), fetched and verified like the models, so the
tutorial finds its photo and clip in the cache on any machine (:meth:`ModelStore.example`).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ARCHS",
    "AssetError",
    "ModelPaths",
    "ModelStore",
    "ModelsMissingError",
    "default_home",
    "git_blob_sha1",
    "load_manifest",
]

log = logging.getLogger(__name__)

ARCHS = ("mb1", "mb05")
# Bump when the converter's output changes, so stale converted graphs are rebuilt.
CONVERTER_VERSION = 2
REQUIRED = ("faceboxes", "param_mean_std", "tri", "indices")
MEAN_SHAPE = ("u_shp", "u_exp", "keypoints_sim")
_CHUNK = 1 << 16

Progress = Callable[[str, int, "int | None"], None]


class AssetError(RuntimeError):
    """A model file could not be obtained, verified or converted; the message says what to do."""


class ModelsMissingError(AssetError):
    """The models needed to run are not installed."""


def default_home() -> Path:
    """``$FACE3D_HOME`` if set, else the platform's per-user cache directory + ``face3d_nb``."""
    if os.environ.get("FACE3D_HOME"):
        return Path(os.environ["FACE3D_HOME"]).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "face3d_nb"


def load_manifest() -> dict:
    """The pinned list of upstream files (``models/manifest.json``, shipped inside the wheel too)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "manifest.json", here.parents[1] / "models" / "manifest.json"):
        if candidate.is_file():
            return json.loads(candidate.read_text())
    raise AssetError("models/manifest.json is missing from the installation")


def git_blob_sha1(path: Path) -> str:
    """Git's object id of a file's content: sha1 of ``b"blob <size>\\0" + content``."""
    h = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class ModelPaths:
    """Everything the engine loads, resolved to files on disk.

    ``bfm`` is None in mean-shape mode, where ``mean_shape`` holds the (u_shp, u_exp,
    keypoints_sim) files instead.
    """

    arch: str
    detector: Path
    regressor: Path
    tri: Path
    indices: Path
    bfm: Path | None
    mean_shape: tuple[Path, Path, Path] | None


class ModelStore:
    """The model cache under ``home`` (default :func:`default_home`)."""

    def __init__(self, home: str | Path | None = None):
        self.home = Path(home) if home is not None else default_home()
        self.manifest = load_manifest()
        self.files: dict[str, dict] = self.manifest["files"]

    # -- layout ---------------------------------------------------------------------------
    def raw_path(self, key: str) -> Path:
        return self.home / "upstream" / self.files[key]["path"]

    def onnx_path(self, key: str) -> Path:
        return self.home / "onnx" / f"{key}-c{CONVERTER_VERSION}.onnx"

    def installed(self, key: str) -> bool:
        return self.raw_path(key).is_file()

    def url(self, key: str) -> str:
        entry = self.files[key]
        source = self.manifest["sources"][entry["source"]]
        template = os.environ.get(f"FACE3D_URL_{entry['source'].upper()}", source["url"])
        return template.format(commit=source["commit"], path=entry["path"])

    def keys_for(self, arch: str | None = None, bfm: bool = True, examples: bool = False) -> list[str]:
        """The files ``models fetch`` installs for ``arch`` (default: both regressors).

        ``examples`` adds upstream's sample photos and clip (:meth:`example_names`).
        """
        archs = ARCHS if arch is None else (_check_arch(arch),)
        return [*REQUIRED, *archs, *MEAN_SHAPE, *(["bfm"] if bfm else []), *(self.example_names() if examples else [])]

    def example_names(self) -> list[str]:
        """The pinned sample inputs, by file name: ``JianzhuGuo.jpg``, ``emma.jpg``, ..., ``obama.mp4``."""
        return [key for key, entry in self.files.items() if entry.get("example")]

    # -- getting files --------------------------------------------------------------------
    def fetch(self, keys: Iterable[str], progress: Progress | None = None) -> list[str]:
        """Download, verify and install ``keys`` that are not installed yet; returns what was new."""
        new = []
        for key in keys:
            if self.installed(key):
                continue
            self._download(key, progress)
            new.append(key)
        self.convert()
        return new

    def import_dir(self, folder: str | Path, keys: Iterable[str]) -> tuple[list[str], list[str]]:
        """Install ``keys`` from a local folder laid out like upstream, like shared/assets or flat.

        Returns (imported, not found). A file found but failing verification is an error.
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise AssetError(f"{folder} is not a directory")
        imported, missing = [], []
        for key in keys:
            entry = self.files[key]
            candidates = [entry["path"], *entry.get("also", []), Path(entry["path"]).name]
            source = next((folder / c for c in candidates if (folder / c).is_file()), None)
            if source is None:
                missing.append(key)
                continue
            if self.installed(key) and self._matches(key, self.raw_path(key)):
                imported.append(key)
                continue
            part = self._part_path(key)
            part.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, part)
            self._verify_and_install(key, part, origin=str(source))
            imported.append(key)
        self.convert()
        return imported, missing

    def _part_path(self, key: str) -> Path:
        final = self.raw_path(key)
        return final.with_name(final.name + ".part")

    def _matches(self, key: str, path: Path) -> bool:
        entry = self.files[key]
        if entry.get("size") is not None and path.stat().st_size != entry["size"]:
            return False
        return entry.get("sha1") is None or git_blob_sha1(path) == entry["sha1"]

    def _verify_and_install(self, key: str, part: Path, origin: str) -> None:
        if not self._matches(key, part):
            part.unlink(missing_ok=True)
            raise AssetError(
                f"{origin} does not match the pinned {self.files[key]['path']} (git blob "
                f"{self.files[key]['sha1']}); the file is corrupt or a different version and was discarded"
            )
        part.replace(self.raw_path(key))
        log.info("installed %s", self.raw_path(key))

    def _download(self, key: str, progress: Progress | None) -> None:
        url, part = self.url(key), self._part_path(key)
        part.parent.mkdir(parents=True, exist_ok=True)
        have = part.stat().st_size if part.exists() else 0
        request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
        try:
            response = urllib.request.urlopen(request, timeout=30)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have:
                # Nothing left to send: the partial file is already complete (or junk, which the
                # hash check below discards).
                return self._verify_and_install(key, part, origin=url)
            raise AssetError(f"downloading {url} failed: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AssetError(
                f"cannot download {url} ({reason}). Connect to the internet and run "
                "`face3d-nb models fetch` again, or install from a local copy with "
                "`face3d-nb models import DIR`."
            ) from None
        with response:
            resumed = response.status == 206
            mode = "ab" if resumed else "wb"
            done = have if resumed else 0
            length = response.headers.get("Content-Length")
            total = done + int(length) if length is not None else self.files[key].get("size")
            try:
                with open(part, mode) as out:
                    while chunk := response.read(_CHUNK):
                        out.write(chunk)
                        done += len(chunk)
                        if progress:
                            progress(key, done, total)
            except (OSError, http.client.HTTPException) as exc:
                raise AssetError(
                    f"download of {url} was interrupted after {done} bytes ({exc}); "
                    "run `face3d-nb models fetch` again to resume"
                ) from None
        if total is not None and done < total:
            raise AssetError(
                f"download of {url} stopped at {done} of {total} bytes; run `face3d-nb models fetch` again to resume"
            )
        self._verify_and_install(key, part, origin=url)

    # -- conversion -----------------------------------------------------------------------
    def convert(self) -> list[str]:
        """Build the ONNX graphs whose sources are installed and which are not built yet."""
        from . import convert  # noqa: PLC0415 - onnx is only needed when converting
        from .safe_pickle import load_legacy_pth, load_pkl  # noqa: PLC0415

        built = []
        for key in ("faceboxes", *ARCHS):
            target = self.onnx_path(key)
            if target.is_file() or not self.installed(key):
                continue
            if key != "faceboxes" and not self.installed("param_mean_std"):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                state = load_legacy_pth(self.raw_path(key))
                if key == "faceboxes":
                    model = convert.build_detector(state)
                else:
                    stats = load_pkl(self.raw_path("param_mean_std"))
                    model = convert.build_regressor(state, stats["mean"], stats["std"])
            except Exception as exc:  # a verified file that still fails to convert is a bug to report
                raise AssetError(f"converting {self.raw_path(key)} failed: {exc}") from exc
            convert.save_model(model, target)
            built.append(key)
            log.info("converted %s -> %s", key, target)
        return built

    # -- using them -----------------------------------------------------------------------
    def default_arch(self) -> str | None:
        return next((a for a in ARCHS if self.onnx_path(a).is_file()), None)

    def resolve(self, arch: str | None = None) -> ModelPaths:
        """The installed files for ``arch`` (default: mb1 when installed, else mb05)."""
        arch = _check_arch(arch) if arch else self.default_arch() or "mb1"
        needed = [*REQUIRED, arch]
        use_bfm = self.installed("bfm")
        if not use_bfm:
            needed += MEAN_SHAPE
        missing = [k for k in needed if not self.installed(k)]
        missing += [k for k in ("faceboxes", arch) if k not in missing and not self.onnx_path(k).is_file()]
        if missing:
            raise ModelsMissingError(
                f"models not installed in {self.home} (missing: {', '.join(missing)}). "
                f"Run `face3d-nb models fetch --arch {arch}` (online) or `face3d-nb models import DIR`."
            )
        return ModelPaths(
            arch=arch,
            detector=self.onnx_path("faceboxes"),
            regressor=self.onnx_path(arch),
            tri=self.raw_path("tri"),
            indices=self.raw_path("indices"),
            bfm=self.raw_path("bfm") if use_bfm else None,
            mean_shape=None if use_bfm else tuple(self.raw_path(k) for k in MEAN_SHAPE),
        )

    def example(self, name: str) -> Path:
        """The installed, verified sample input ``name`` (one of :meth:`example_names`)."""
        if name not in self.example_names():
            raise ValueError(f"unknown example {name!r}; choose one of {', '.join(self.example_names())}")
        if not self.installed(name):
            raise ModelsMissingError(
                f"sample file {name} not installed in {self.home}. "
                "Run `face3d-nb models fetch` (online) or `face3d-nb models import DIR`."
            )
        return self.raw_path(name)

    def info(self) -> list[tuple[str, str, Path]]:
        """(key, status, path) for every manifest file and converted graph."""
        rows = [(k, "installed" if self.installed(k) else "missing", self.raw_path(k)) for k in self.files]
        for key in ("faceboxes", *ARCHS):
            path = self.onnx_path(key)
            rows.append((f"{key}.onnx", "converted" if path.is_file() else "missing", path))
        return rows


def _check_arch(arch: str) -> str:
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHS)}")
    return arch
