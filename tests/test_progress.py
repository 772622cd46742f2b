"""The command line's progress bars: drawn on a terminal, absent from pipes and logs."""

import subprocess
import sys

import pytest

from face3d_nb.testing.recordings import record_video
from face3d_nb.testing.terminal import run_on_terminal


@pytest.fixture(scope="module")
def recording(synthetic_reconstructor, tmp_path_factory):
    """A session of 8 frames of the generated clip, as the app records it."""
    return record_video(synthetic_reconstructor, tmp_path_factory.mktemp("progress") / "session.jsonl", 8)


def commands(clip, recording, out) -> dict[str, list[str]]:
    cli = [sys.executable, "-m", "face3d_nb"]
    return {"video": [*cli, "video", str(clip), "--every", "5"],
            "export": [*cli, "export", str(recording), "--out", str(out), "--level", "low"]}


def test_no_bar_when_stderr_is_not_a_terminal(cli_env, face_clip_path, recording, tmp_path):
    for name, command in commands(face_clip_path, recording, tmp_path / "meshes").items():
        proc = subprocess.run(command, capture_output=True, text=True, env=cli_env, check=False)
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == "", f"{name} wrote to a non-terminal stderr: {proc.stderr!r}"
        assert proc.stdout.strip(), name
    assert len(list((tmp_path / "meshes").glob("*.obj"))) == 8


def test_bars_on_a_terminal(cli_env, face_clip_path, recording, tmp_path):
    shown = {}
    for name, command in commands(face_clip_path, recording, tmp_path / "meshes").items():
        status, stdout, shown[name] = run_on_terminal(command, env=cli_env)
        assert status == 0, shown[name]
        # The result lines still go to stdout, whole, whatever the bar does.
        assert "\r" not in stdout and stdout.strip()
    assert "\r" in shown["video"] and "frames: " in shown["video"] and "frame/s" in shown["video"]
    assert "meshes: 100%" in shown["export"] and "8/8" in shown["export"]
