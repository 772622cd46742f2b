"""Model files: where they live, how they are fetched, verified, imported and converted.

Every upstream file is pinned in ``models/manifest.json`` by source commit, path, size and git blob
SHA-1. Downloads go to ``<home>/upstream/<path>`` (``home`` is ``$FACE3D_HOME`` or the per-user
cache dir) through a ``.part`` file that is resumed when possible, verified, then renamed into
place, so a file that exists under its final name was a verified one; how downloads are made safe
(https only, size-bounded, one writer per file across processes) is in :mod:`.download`. The ONNX
graphs we build from them go to ``<home>/onnx/``. Nothing here is ever written inside the source
tree. When the cache is not private to its user, every file is verified again each time it is
loaded (:mod:`.integrity`).

The manifest also pins upstream's sample inputs (entries marked ``"example": true``: the photos of
3DDFA_V2's ``examples/inputs`` and 3DDFA's Obama clip), fetched and verified like the models, so the
tutorial finds its photo and clip in the cache on any machine (:meth:`ModelStore.example`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .download import AssetError, install_lock, open_part
from .download import download as download_to
from .integrity import exposure, git_blob_sha1

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

Progress = Callable[[str, int, "int | None"], None]


class ModelsMissingError(AssetError):
    """The models needed to run are not installed (or an installed one fails its check when loaded)."""


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
    def fetch(self, keys: Iterable[str], progress: Progress | None = None,
              cancel: threading.Event | None = None) -> list[str]:
        """Download, verify and install ``keys`` that are not installed yet (or, in a cache others can
        write, no longer match their pin); returns what was new.

        A file another process is fetching is waited for, then not fetched again. ``cancel`` stops
        the download at its next chunk (:class:`~.download.DownloadCancelled`; the ``.part`` is kept
        to resume).
        """
        new = []
        for key in keys:
            if self._usable(key):
                continue
            url, part, size = self.url(key), self._part_path(key), self._size(key)
            with install_lock(self.raw_path(key), cancel):
                if self._usable(key):
                    continue
                download_to(url, part, size, _per_file(progress, key, size), cancel)
                self._verify_and_install(key, part, origin=url)
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
            if not (self.installed(key) and self._matches(key, self.raw_path(key))):
                if source.stat().st_size != self._size(key):
                    raise self._mismatch(key, str(source))
                part = self._part_path(key)
                with install_lock(self.raw_path(key)), open(source, "rb") as src:
                    with open_part(part, append=False) as out:
                        shutil.copyfileobj(src, out)
                    self._verify_and_install(key, part, origin=str(source))
            imported.append(key)
        self.convert()
        return imported, missing

    def _part_path(self, key: str) -> Path:
        final = self.raw_path(key)
        return final.with_name(final.name + ".part")

    def _size(self, key: str) -> int:
        size = self.files[key].get("size")
        if not isinstance(size, int):
            raise AssetError(f"the manifest pins no size for {key}; every file needs one (models/manifest.json)")
        return size

    def _matches(self, key: str, path: Path) -> bool:
        entry = self.files[key]
        return path.stat().st_size == self._size(key) and git_blob_sha1(path) == entry["sha1"]

    def _usable(self, key: str) -> bool:
        """Installed, and either in a place only this user can write or still matching its pin."""
        path = self.raw_path(key)
        return path.is_file() and (exposure(path) is None or self._matches(key, path))

    def _mismatch(self, key: str, origin: str) -> AssetError:
        return AssetError(
            f"{origin} does not match the pinned {self.files[key]['path']} ({self._size(key)} bytes, git blob "
            f"{self.files[key]['sha1']}); the file is corrupt or a different version and was discarded"
        )

    def _verify_and_install(self, key: str, part: Path, origin: str) -> None:
        if not self._matches(key, part):
            part.unlink(missing_ok=True)
            raise self._mismatch(key, origin)
        part.replace(self.raw_path(key))
        log.info("installed %s", self.raw_path(key))

    # -- conversion -----------------------------------------------------------------------
    def convert(self) -> list[str]:
        """Build the ONNX graphs whose sources are installed and which are not built yet (or, in a
        cache others can write, no longer what their sources build)."""
        from .convert import save_model  # noqa: PLC0415 - onnx is only needed when converting
        from .graphs import build_graph  # noqa: PLC0415

        built = []
        for key in ("faceboxes", *ARCHS):
            target = self.onnx_path(key)
            sources_ok = self._usable(key) and (key == "faceboxes" or self._usable("param_mean_std"))
            if not sources_ok or self._graph_ok(key):
                continue
            with install_lock(target):  # another kernel may be converting it: one writer, the other waits
                if self._graph_ok(key):
                    continue
                save_model(build_graph(*self._sources(key)), target)
            built.append(key)
            log.info("converted %s -> %s", key, target)
        return built

    def _sources(self, key: str) -> tuple[Path, Path | None]:
        """The checkpoint of graph ``key`` and, for a regressor, its parameter statistics."""
        return self.raw_path(key), None if key == "faceboxes" else self.raw_path("param_mean_std")

    def _graph_matches(self, key: str) -> bool:
        from .graphs import graph_matches  # noqa: PLC0415 - onnx is only needed when checking graphs

        return graph_matches(self.onnx_path(key), *self._sources(key))

    def _graph_ok(self, key: str) -> bool:
        """Built, and either in a place only this user can write or still what its sources build."""
        target = self.onnx_path(key)
        return target.is_file() and (exposure(target) is None or self._graph_matches(key))

    def _refuse_replaced(self, keys: Iterable[str], graphs: Iterable[str] = ()) -> None:
        """Raise :class:`ModelsMissingError` for the first of these files that others could have
        replaced and that no longer matches its pin (upstream files) or its source (graphs)."""
        fix = ("Run `face3d-nb models fetch` to replace it with the verified file, or use a FACE3D_HOME "
               "that only you can write.")
        for key in keys:
            path = self.raw_path(key)
            if (why := exposure(path)) and not self._matches(key, path):
                raise ModelsMissingError(f"{path} is not the pinned {self.files[key]['path']} (git blob "
                                         f"{self.files[key]['sha1']}) and {why}: refusing to load it. {fix}")
        for key in graphs:
            path = self.onnx_path(key)
            if (why := exposure(path)) and not self._graph_matches(key):
                raise ModelsMissingError(f"{path} is not the graph face3d_nb builds from {self.raw_path(key)} "
                                         f"and {why}: refusing to load it. {fix}")

    # -- using them -----------------------------------------------------------------------
    def default_arch(self) -> str | None:
        return next((a for a in ARCHS if self.onnx_path(a).is_file()), None)

    def resolve(self, arch: str | None = None) -> ModelPaths:
        """The installed files for ``arch`` (default: mb1 when installed, else mb05).

        In a cache others can write, each file is verified first (:mod:`.integrity`); one that fails
        raises :class:`ModelsMissingError` naming it and the command that replaces it."""
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
        self._refuse_replaced([*needed, *(["bfm"] if use_bfm else [])], graphs=("faceboxes", arch))
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
        self._refuse_replaced([name])
        return self.raw_path(name)

    def info(self) -> list[tuple[str, str, Path]]:
        """(key, status, path) for every manifest file and converted graph."""
        rows = [(k, "installed" if self.installed(k) else "missing", self.raw_path(k)) for k in self.files]
        for key in ("faceboxes", *ARCHS):
            path = self.onnx_path(key)
            rows.append((f"{key}.onnx", "converted" if path.is_file() else "missing", path))
        return rows


def _per_file(progress: Progress | None, key: str, size: int) -> Callable[[int], None] | None:
    return None if progress is None else lambda done: progress(key, done, size)


def _check_arch(arch: str) -> str:
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHS)}")
    return arch
