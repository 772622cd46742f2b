"""ONNX Runtime sessions with our threading and provider choices."""

from __future__ import annotations

import logging
from pathlib import Path

import onnxruntime as ort

__all__ = ["create_session", "PROVIDERS"]

log = logging.getLogger(__name__)

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def create_session(model_path: str | Path, *, threads: int = 0, provider: str = "cpu") -> ort.InferenceSession:
    """An inference session on ``provider`` (``"cpu"`` or ``"cuda"``); ``threads`` 0 lets ORT choose.

    Asking for CUDA where the installed onnxruntime has no CUDA provider logs one warning and
    falls back to the CPU.
    """
    if provider not in PROVIDERS:
        raise ValueError(f"unknown execution provider {provider!r}; choose one of {', '.join(PROVIDERS)}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    providers = [PROVIDERS["cpu"]]
    if provider == "cuda":
        if PROVIDERS["cuda"] in ort.get_available_providers():
            providers.insert(0, PROVIDERS["cuda"])
        else:
            log.warning(
                "CUDA requested but this onnxruntime has no CUDA provider; using the CPU "
                "(install onnxruntime-gpu instead of onnxruntime to use the GPU)"
            )
    return ort.InferenceSession(str(model_path), options, providers=providers)
