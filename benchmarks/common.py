"""Helpers shared by the benchmark scripts: models, frames, percentile tables and the kernels a server runs."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import cv2
import numpy as np

from face3d_nb.models.store import ModelPaths, ModelsMissingError, ModelStore
from face3d_nb.testing.assets import ASSETS, ROOT, VIDEO

__all__ = ["ASSETS", "ROOT", "VIDEO", "kernel_processes", "model_home", "model_paths", "percentiles", "video_frames"]

log = logging.getLogger("benchmarks")


def model_home(arch: str | None = None) -> Path:
    """The installed model cache, or the shared assets imported into a temporary one."""
    store = ModelStore()
    try:
        store.resolve(arch)
        return store.home
    except ModelsMissingError:
        if not ASSETS.is_dir():
            raise
    store = ModelStore(tempfile.mkdtemp(prefix="face3d_bench_"))
    store.import_dir(ASSETS, store.keys_for(arch))
    return store.home


def model_paths(arch: str | None = None) -> ModelPaths:
    """The installed models, or the shared assets imported into a temporary cache."""
    home = model_home(arch)
    if home != ModelStore().home:
        log.info("using the shared assets from %s", ASSETS)
    return ModelStore(home).resolve(arch)


def kernel_processes(server) -> list:
    """The kernels a :class:`face3d_nb.testing.browser.Server` runs (its ipykernel descendants)."""
    import psutil  # noqa: PLC0415  (a test extra: only the server benchmarks need it)

    found = []
    for process in psutil.Process(server.process.pid).children(recursive=True):
        try:
            if "ipykernel" in " ".join(process.cmdline()):
                found.append(process)
        except psutil.NoSuchProcess:  # a kernel that has just exited (zombies included) is not running
            pass
    return found


def video_frames(path: Path = VIDEO) -> list[np.ndarray]:
    """Every decodable frame of a video, BGR."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    if not frames:
        raise SystemExit(f"no frames decoded from {path}")
    return frames


def percentiles(samples_ms) -> tuple[float, float]:
    """(median, p95) of a list of milliseconds."""
    return float(np.median(samples_ms)), float(np.percentile(samples_ms, 95))
