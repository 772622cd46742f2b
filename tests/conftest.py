"""Fixtures in two tiers: synthetic models everywhere, the real upstream files where present.

A test marked ``real_assets`` checks accuracy: its ``model_store``, ``model_paths``,
``reconstructor`` and ``cli_env`` are the real models from ``face3d_nb.testing.assets.ASSETS``,
and it is skipped, with one line saying how to enable it, when they are not there. Every other
test checks wiring and gets the same fixtures built from the synthetic models
(``face3d_nb.testing.synthetic_models``), which need nothing beside the source tree.
"""

from __future__ import annotations

import os

import pytest

from face3d_nb.testing.assets import ASSETS, missing_assets
from face3d_nb.testing.file_host import UpstreamMirror
from face3d_nb.testing.media import clip_frames, face_picture, write_clip
from face3d_nb.testing.synthetic_models import synthetic_store as _synthetic_store


def pytest_runtest_setup(item):
    if item.get_closest_marker("real_assets") and (reason := missing_assets()):
        pytest.skip(reason)


def _real(request) -> bool:
    return request.node.get_closest_marker("real_assets") is not None


@pytest.fixture(scope="session")
def synthetic_store(tmp_path_factory):
    """A model cache holding the synthetic models, converted by our converter (about a second)."""
    return _synthetic_store(tmp_path_factory.mktemp("synthetic_home"))


@pytest.fixture(scope="session")
def synthetic_paths(synthetic_store):
    return synthetic_store.resolve()


@pytest.fixture(scope="session")
def synthetic_reconstructor(synthetic_paths):
    from face3d_nb.core.pipeline import Reconstructor

    return Reconstructor(synthetic_paths)


@pytest.fixture(scope="session")
def real_store(tmp_path_factory):
    """A model cache holding the shared assets, imported and converted the way users do it."""
    if reason := missing_assets():
        pytest.skip(reason)
    from face3d_nb.models.store import ModelStore

    store = ModelStore(tmp_path_factory.mktemp("face3d_home"))
    store.import_dir(ASSETS, store.keys_for())
    return store


@pytest.fixture(scope="session")
def real_reconstructor(real_store):
    from face3d_nb.core.pipeline import Reconstructor

    return Reconstructor(real_store.resolve())


@pytest.fixture
def model_store(request):
    """The model cache of the test's tier: real when marked ``real_assets``, else synthetic."""
    return request.getfixturevalue("real_store" if _real(request) else "synthetic_store")


@pytest.fixture
def model_paths(model_store):
    return model_store.resolve()


@pytest.fixture
def reconstructor(request):
    """The reconstructor of the test's tier: real when marked ``real_assets``, else synthetic."""
    return request.getfixturevalue("real_reconstructor" if _real(request) else "synthetic_reconstructor")


@pytest.fixture
def upstream(monkeypatch):
    """Upstream's raw-file hosts played on loopback with the real files (:class:`UpstreamMirror`);
    the model store's download URLs point at it."""
    server = UpstreamMirror()
    for name, value in server.environ().items():
        monkeypatch.setenv(name, value)
    yield server
    server.close()


@pytest.fixture
def cli_env(model_store, monkeypatch):
    """Environment for running the CLI against the test's model cache."""
    monkeypatch.setenv("FACE3D_HOME", str(model_store.home))
    return {**os.environ, "FACE3D_HOME": str(model_store.home)}


@pytest.fixture(scope="session")
def face_photo():
    """A generated 480x640 (portrait) BGR picture with one face the synthetic detector finds."""
    return face_picture(480, 640)


@pytest.fixture(scope="session")
def face_clip():
    """The generated 1280x720 clip's 55 BGR frames: one face drifting slowly right."""
    return clip_frames()


@pytest.fixture(scope="session")
def face_clip_path(tmp_path_factory):
    """The generated clip as an MPEG-4 file (25 frames/s)."""
    return write_clip(tmp_path_factory.mktemp("clip") / "face.mp4")
