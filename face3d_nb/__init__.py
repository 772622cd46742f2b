"""face3d_nb: real-time 3D face reconstruction (3DDFA_V2 on ONNX Runtime) for Jupyter.

The numeric core (detect, regress, decode) imports no widget library; the names below load it
lazily so ``import face3d_nb`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "Reconstructor": "core.pipeline",
    "Face": "core.pipeline",
    "FaceDetector": "core.detector",
    "Regressor": "core.regressor",
    "MorphableModel": "core.morphable",
    "Pose": "core.morphable",
    "ModelStore": "models.store",
    "Engine": "live.engine",
    "EngineConfig": "live.config",
    "FaceApp": "apps.live_app",
    "FaceViewer": "widgets.viewer",
    "ReplayApp": "apps.replay_app",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
