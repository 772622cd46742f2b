"""Recordings round-trip exactly and fail clearly when damaged."""

import json

import cv2
import numpy as np
import pytest

from face3d_nb.live.events import ErrorEvent, FrameResult, TrackedFace
from face3d_nb.live.recording import Recorder, RecordingError, read_recording
from face3d_nb.testing.assets import IMAGES


def _results(reconstructor, n=5):
    image = cv2.imread(str(IMAGES["trump_hillary"]))
    faces = reconstructor(image)
    return [
        FrameResult(seq=10 + k, captured_at=100.0 + k / 30, frame_shape=image.shape[:2],
                    faces=tuple(TrackedFace(i + 1, f, None) for i, f in enumerate(faces)),
                    timings={}, detected=k == 0, frame=None)
        for k in range(n)
    ]


@pytest.mark.real_assets
def test_round_trip_is_exact(tmp_path, reconstructor):
    results = _results(reconstructor)
    path = tmp_path / "session.jsonl"
    with Recorder(path, arch="mb05", model="mean") as recorder:
        for event in results:
            recorder(event)
        recorder(ErrorEvent(99, 101.0, "ignored"))
    header, frames = read_recording(path)
    assert header["arch"] == "mb05" and header["model"] == "mean"
    assert [f.seq for f in frames] == [10, 11, 12, 13, 14]
    assert frames[3].t == pytest.approx(3 / 30)
    for frame, event in zip(frames, results):
        assert frame.frame_shape == event.frame_shape
        for got, want in zip(frame.faces, event.faces):
            assert got.track_id == want.track_id
            assert np.array_equal(got.params, want.face.params)  # bit-exact
            assert np.array_equal(got.roi_box, want.face.roi_box)
            assert got.pose == (want.face.pose.yaw, want.face.pose.pitch, want.face.pose.roll)


@pytest.mark.real_assets
def test_torn_last_line_is_skipped_but_damage_elsewhere_is_an_error(tmp_path, reconstructor):
    path = tmp_path / "s.jsonl"
    with Recorder(path) as recorder:
        for event in _results(reconstructor, 3):
            recorder(event)
    text = path.read_text()
    path.write_text(text[:-40])
    assert len(read_recording(path)[1]) == 2
    lines = text.splitlines()
    lines[1] = lines[1][:50]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RecordingError, match=":2: malformed"):
        read_recording(path)


@pytest.mark.parametrize("content", ["", "hello\n", json.dumps({"format": "face3d_nb-recording", "version": 9}) + "\n"])
def test_not_a_recording(tmp_path, content):
    path = tmp_path / "x.jsonl"
    path.write_text(content)
    with pytest.raises(RecordingError):
        read_recording(path)


@pytest.mark.real_assets
def test_cli_exports_one_mesh_per_recorded_frame(tmp_path, reconstructor, cli_env):
    import subprocess
    import sys

    trimesh = pytest.importorskip("trimesh")
    path = tmp_path / "s.jsonl"
    with Recorder(path) as recorder:
        for event in _results(reconstructor, 3):
            recorder(event)
    out = tmp_path / "meshes"
    proc = subprocess.run([sys.executable, "-m", "face3d_nb.cli", "export", str(path), "--out", str(out),
                           "--format", "ply", "--level", "medium"], capture_output=True, text=True, env=cli_env)
    assert proc.returncode == 0, proc.stderr
    files = sorted(out.glob("*.ply"))
    assert [f.name for f in files] == ["frame_000010.ply", "frame_000011.ply", "frame_000012.ply"]
    mesh = trimesh.load(files[0], process=False)
    assert 2 * 8000 < len(mesh.vertices) < 2 * 11000 and len(mesh.faces) > 2 * 15000
    proc = subprocess.run([sys.executable, "-m", "face3d_nb.cli", "export", str(tmp_path / "nope.jsonl")],
                          capture_output=True, text=True, env=cli_env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
