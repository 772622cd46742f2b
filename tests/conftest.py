"""Shared fixtures: the real upstream files from ../shared/assets, imported once into a temp cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ASSETS = Path(os.environ.get("FACE3D_TEST_ASSETS", ROOT.parent / "shared" / "assets"))
IMAGES = {
    "emma": ASSETS / "3ddfa_v2" / "images" / "emma.jpg",
    "trump_hillary": ASSETS / "3ddfa_v2" / "images" / "trump_hillary.jpg",
    "JianzhuGuo": ASSETS / "3ddfa_v2" / "images" / "JianzhuGuo.jpg",
    "aflw2000_image00427": ASSETS / "aflw2000" / "image00427.jpg",
}
VIDEO = ASSETS / "video" / "obama.mp4"
REFERENCE = ASSETS / "reference"

requires_assets = pytest.mark.skipif(
    not (ASSETS / "MANIFEST.json").is_file(), reason=f"real model files not found in {ASSETS}"
)


@pytest.fixture(scope="session")
def model_store(tmp_path_factory):
    """A model cache holding the shared assets, imported and converted the way users do it."""
    if not (ASSETS / "MANIFEST.json").is_file():
        pytest.skip(f"real model files not found in {ASSETS}")
    from face3d_nb.models.store import ModelStore

    store = ModelStore(tmp_path_factory.mktemp("face3d_home"))
    store.import_dir(ASSETS, store.keys_for())
    return store


@pytest.fixture(scope="session")
def model_paths(model_store):
    return model_store.resolve()


@pytest.fixture(scope="session")
def reconstructor(model_paths):
    from face3d_nb.core.pipeline import Reconstructor

    return Reconstructor(model_paths)


@pytest.fixture
def cli_env(model_store, monkeypatch):
    """Environment for running the CLI against the test model cache."""
    monkeypatch.setenv("FACE3D_HOME", str(model_store.home))
    return {**os.environ, "FACE3D_HOME": str(model_store.home)}


def record_video(reconstructor, path: Path, frames: int) -> Path:
    """A real session recording at ``path``: the first ``frames`` frames of the test video through
    the live engine, at the video's 25 frames/s."""
    import cv2  # noqa: PLC0415

    from face3d_nb.live.config import EngineConfig  # noqa: PLC0415
    from face3d_nb.live.engine import Engine  # noqa: PLC0415
    from face3d_nb.live.recording import Recorder  # noqa: PLC0415

    capture = cv2.VideoCapture(str(VIDEO))
    try:
        with Recorder(path, arch=reconstructor.paths.arch) as recorder, \
                Engine(EngineConfig(), reconstructor) as engine:
            engine.subscribe(recorder)
            for i in range(frames):
                ok, frame = capture.read()
                assert ok, f"the test video has fewer than {frames} frames"
                engine.submit(frame, captured_at=i / 25)
                assert engine.drain(60)
    finally:
        capture.release()
    return path
