"""ONNX Runtime sessions with our threading and provider choices.

onnxruntime is imported by the functions that use it, not with this module: the provider names
are needed by light modules (the engine's settings) that must load without it.

Threads per session, chosen by measurement (``benchmarks/bench_threads.py`` prints the figures;
this machine: 2 virtual cores under KVM, medians, 10 ms asleep between runs as between frames):

- No session spins: an idle pool thread that spins keeps a core busy between frames, the core the
  browser needs in the live app (all sessions spinning: kernel CPU 54% against 32%, capture-to-mesh
  p50 167 against 102 ms in ``bench_app``). The detector at 640x360 ran 3.5 ms on two spinning
  threads but took 17.4 ms of CPU per run; bounded spins (``spin_duration_us``) bought nothing.
- The detector runs on ``threads`` (0: one per core). Here its second thread neither paid nor cost
  much (640x360: one thread 5.9 ms for 5.9 ms of CPU, two 6.1 ms for 6.4 ms), because a parked thread
  is slow to wake on this virtual machine; a run of 5 to 10 ms is long enough to share on machines
  whose threads wake quickly.
- The regressor runs on one thread (:data:`~.regressor.REGRESSOR_THREADS`): its run is short (0.9 ms),
  and two threads lost in every measurement but unbounded spinning; its module docstring has the
  figures.
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
    """An inference session on ``provider`` (``"cpu"`` or ``"cuda"``); ``threads`` 0 lets ORT choose
    (one per core). Its pool threads never spin (see the module docstring).

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
    # Idle pool threads spin-wait for the next run by default, which burns the cores between frames.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = [PROVIDERS["cpu"]]
    if provider == "cuda":
        if cuda_available():
            providers.insert(0, PROVIDERS["cuda"])
        else:
            _warn_fallback()
    return ort.InferenceSession(str(model_path), options, providers=providers)
