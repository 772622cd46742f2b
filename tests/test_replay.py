"""Replaying a recording: every frame once, in order, bit-exact parameters, never early; the replay app."""

import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from face3d_nb.live.events import FrameResult
from face3d_nb.live.recording import Recorder, read_recording
from face3d_nb.live.replayer import Replayer
from face3d_nb.testing.recordings import record_video


@pytest.fixture(scope="module")
def recording(synthetic_reconstructor, tmp_path_factory):
    """A session: the first 20 frames of the generated clip through the live engine, recorded."""
    return record_video(synthetic_reconstructor, tmp_path_factory.mktemp("replay") / "session.jsonl", 20)


def test_replay_is_frame_exact_and_never_early(reconstructor, recording, tmp_path):
    _, frames = read_recording(recording)
    assert len(frames) == 20
    speed = 20.0
    replayer = Replayer(frames, reconstructor.levels, "medium", speed=speed)
    published = []
    replayer.subscribe(lambda event: published.append((time.time(), event)))
    again = tmp_path / "again.jsonl"
    with Recorder(again) as recorder:
        replayer.subscribe(recorder)
        start = time.time()
        replayer.play()
        assert replayer.finished.wait(30)
    assert replayer.played == 20 and not replayer.playing
    _, replayed = read_recording(again)
    assert [f.seq for f in replayed] == [f.seq for f in frames]
    medium = reconstructor.levels.model("medium")
    for (when, event), want, got in zip(published, frames, replayed):
        assert when >= start + want.t / speed - 1e-3  # never before its time
        assert isinstance(event, FrameResult) and event.detail == "medium" and event.frame_shape == want.frame_shape
        for face, tracked, again_face in zip(want.faces, event.faces, got.faces):
            assert tracked.track_id == face.track_id == again_face.track_id
            assert np.array_equal(tracked.face.params, face.params)  # bit-exact, through the replay...
            assert np.array_equal(again_face.params, face.params)  # ...and recorded again
            assert np.array_equal(again_face.roi_box, face.roi_box) and again_face.pose == face.pose
            np.testing.assert_array_equal(tracked.vertices, medium.vertices(face.params, face.roi_box))


def test_pause_resume_and_loop(reconstructor, recording):
    _, frames = read_recording(recording)
    replayer = Replayer(frames, reconstructor.levels, speed=2.0)
    seqs, third = [], threading.Event()

    def keep(event):
        seqs.append(event.seq)
        if len(seqs) == 3:
            third.set()

    replayer.subscribe(keep)
    replayer.play()
    assert third.wait(30)
    replayer.pause()
    paused_at = len(seqs)
    time.sleep(0.3)
    assert len(seqs) == paused_at and replayer.position == paused_at
    replayer.speed = 1000.0
    replayer.loop = True
    replayer.play()
    deadline = time.monotonic() + 30
    while len(seqs) < 45 and time.monotonic() < deadline:
        time.sleep(0.01)
    replayer.pause()
    expected = [f.seq for f in frames]
    assert seqs[:40] == expected + expected  # nothing skipped or repeated, across the pause and the loop
    with pytest.raises(ValueError, match="speed must be positive"):
        replayer.speed = 0


def test_replay_app_plays_into_the_viewer(model_store, recording, monkeypatch):
    from face3d_nb.apps.replay_app import ENV_DETAIL, ENV_FILE, ReplayApp

    monkeypatch.setenv(ENV_FILE, str(recording))
    monkeypatch.setenv(ENV_DETAIL, "low")
    app = ReplayApp.from_env(store=model_store)
    app.viewer.link.send = lambda content, buffers=None: None  # no page here: it says hello by hand
    try:
        time.sleep(0.2)
        assert app.replayer.played == 0  # autoplay waits for a page
        app.viewer.link._handle_message(app.viewer.link, {"type": "hello", "renderer": ""}, [])
        assert app.replayer.finished.wait(30)
        assert app.replayer.played == 20
        face_mesh = app.viewer.scene.children[-1]  # the face's mesh, added after the lights and camera
        assert face_mesh.geometry.attributes["position"].array.shape == (len(app.replayer.levels.detail("low").vertices), 3)
        assert "20</span> / 20 frames" in app.status.value
        assert app.play_button.value is False
    finally:
        app.close()
    assert not app.replayer.playing


def test_cli_replay_rejects_what_is_not_a_recording(tmp_path, cli_env):
    bad = tmp_path / "notes.jsonl"
    bad.write_text("hello\n")
    for path in (bad, tmp_path / "missing.jsonl"):
        proc = subprocess.run([sys.executable, "-m", "face3d_nb.cli", "replay", str(path)], capture_output=True,
                              text=True, env=cli_env, timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert "not a face3d_nb recording" in proc.stderr or "cannot read" in proc.stderr
        assert "Traceback" not in proc.stderr
