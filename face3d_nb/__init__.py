"""face3d_nb: real-time 3D face reconstruction (3DDFA_V2 on ONNX Runtime) for Jupyter.

The numeric core (detect, regress, decode) imports no widget library; the names below load it
lazily so ``import face3d_nb`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "Reconstructor": "pipeline",
    "Face": "pipeline",
    "FaceDetector": "detector",
    "Regressor": "regressor",
    "MorphableModel": "bfm",
    "Pose": "bfm",
    "ModelStore": "assets",
    "Engine": "engine",
    "EngineConfig": "config",
    "FaceApp": "app",
    "FaceViewer": "viewer",
    "ReplayApp": "replay_app",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
