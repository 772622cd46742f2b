"""The execution provider switch: CLI flag, engine restart with other models, and the CPU fallback.

This machine's onnxruntime has no CUDA provider, so "cuda" exercises the fallback path for real.
"""

import subprocess
import sys
import threading

import cv2
import onnxruntime as ort
import pytest

from face3d_nb.core.pipeline import Reconstructor
from face3d_nb.core.runtime import CUDA_FALLBACK, create_session, cuda_available
from face3d_nb.live.config import EngineConfig
from face3d_nb.live.engine import Engine
from face3d_nb.live.events import FrameResult
from face3d_nb.testing.assets import IMAGES

no_cuda = pytest.mark.skipif(cuda_available(), reason="this onnxruntime has CUDA: there is no fallback to see")


def test_cuda_available_says_what_onnxruntime_has():
    assert cuda_available() == ("CUDAExecutionProvider" in ort.get_available_providers())


def test_sessions_do_not_spin_between_frames(model_paths):
    # Spinning pool threads took a third of a core from the browser in the live app (bench_app).
    options = create_session(model_paths.detector, threads=2).get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.intra_op_num_threads == 2


@pytest.mark.real_assets
@no_cuda
def test_cli_cuda_falls_back_to_the_cpu_with_one_message(cli_env):
    argv = [sys.executable, "-m", "face3d_nb.cli", "image", str(IMAGES["JianzhuGuo"]), "--json"]
    proc = subprocess.run([*argv, "--provider", "cuda"], capture_output=True, text=True, env=cli_env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count(CUDA_FALLBACK) == 1
    cpu = subprocess.run([*argv, "--provider", "cpu"], capture_output=True, text=True, env=cli_env, timeout=120)
    assert cpu.returncode == 0 and CUDA_FALLBACK not in cpu.stderr
    assert proc.stdout == cpu.stdout  # the same results, computed on the CPU
    bad = subprocess.run([*argv, "--provider", "tpu"], capture_output=True, text=True, env=cli_env, timeout=120)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


@pytest.mark.real_assets
def test_engine_restarts_on_models_for_another_provider(model_paths, reconstructor):
    photo = cv2.imread(str(IMAGES["JianzhuGuo"]))
    results, got = [], threading.Event()
    engine = Engine(EngineConfig(), reconstructor)
    engine.subscribe(lambda event: (results.append(event), got.set()))
    engine.start()
    try:
        with pytest.raises(ValueError, match="only change while the engine is stopped"):
            engine.set_reconstructor(None)
        engine.stop()
        engine.set_reconstructor(Reconstructor(model_paths, provider="cuda"))
        engine.update_config(provider="cuda")
        engine.start()
        engine.submit(photo)
        assert got.wait(60)
    finally:
        engine.stop()
    assert isinstance(results[0], FrameResult) and len(results[0].faces) == 1
    assert engine.config.provider == "cuda"
