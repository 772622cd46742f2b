"""How the package is entered: ``python -m face3d_nb`` is the CLI, and the light modules stay light
(the engine's settings and the event types load neither onnxruntime nor the threaded engine)."""

import subprocess
import sys


def run_module(*args, env=None):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, env=env)


def test_python_dash_m_runs_the_cli():
    help_text = run_module("face3d_nb", "--help")
    assert help_text.returncode == 0, help_text.stderr
    assert help_text.stdout.startswith("usage: face3d-nb") and "models" in help_text.stdout
    # The same command, the same one-line error and exit status, either way it is started.
    ours, theirs = (run_module(m, "video", "no-such-video.mp4") for m in ("face3d_nb", "face3d_nb.cli"))
    assert ours.returncode == theirs.returncode == 2
    assert ours.stderr == theirs.stderr == "face3d-nb: error: no-such-video.mp4: no such file\n"


def loaded_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_engine_settings_load_without_onnxruntime():
    loaded = loaded_after("import face3d_nb.live.config")
    assert "face3d_nb.live.config" in loaded
    assert "onnxruntime" not in loaded


def test_event_types_load_without_the_engine_or_onnxruntime():
    loaded = loaded_after("from face3d_nb.live.events import ErrorEvent, FrameResult, TrackedFace")
    assert "face3d_nb.live.events" in loaded
    assert not {"face3d_nb.live.engine", "onnxruntime"} & loaded
