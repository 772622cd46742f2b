"""ONNX Runtime sessions with our threading and provider choices.

onnxruntime is imported by the functions that use it, not with this module: the provider names
are needed by light modules (the engine's settings) that must load without it.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnxruntime as ort

__all__ = ["CUDA_FALLBACK", "PROVIDERS", "create_session", "cuda_available"]

log = logging.getLogger(__name__)

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
CUDA_FALLBACK = ("CUDA requested but this onnxruntime has no CUDA provider; using the CPU "
                 "(install onnxruntime-gpu instead of onnxruntime to use the GPU)")


def cuda_available() -> bool:
    """Whether the installed onnxruntime has the CUDA execution provider."""
    import onnxruntime as ort

    return PROVIDERS["cuda"] in ort.get_available_providers()


@functools.cache
def _warn_fallback() -> None:
    # Once per process: every session of a reconstructor would otherwise say it again.
    log.warning(CUDA_FALLBACK)


def create_session(model_path: str | Path, *, threads: int = 0, provider: str = "cpu") -> ort.InferenceSession:
    """An inference session on ``provider`` (``"cpu"`` or ``"cuda"``); ``threads`` 0 lets ORT choose.

    Asking for CUDA where the installed onnxruntime has no CUDA provider falls back to the CPU and
    logs :data:`CUDA_FALLBACK` (once per process).
    """
    import onnxruntime as ort

    if provider not in PROVIDERS:
        raise ValueError(f"unknown execution provider {provider!r}; choose one of {', '.join(PROVIDERS)}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # Idle pool threads spin-wait for the next run by default, which burns the cores between
    # frames: a live app shares them with the browser and the kernel (measured with bench_app:
    # kernel CPU 54% -> 32%, capture-to-mesh p50 167 -> 102 ms on 2 cores).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = [PROVIDERS["cpu"]]
    if provider == "cuda":
        if cuda_available():
            providers.insert(0, PROVIDERS["cuda"])
        else:
            _warn_fallback()
    return ort.InferenceSession(str(model_path), options, providers=providers)
