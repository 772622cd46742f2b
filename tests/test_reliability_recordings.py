"""Reliability: hostile recordings. Recordings are files people pass around, so every field of every
line is checked when read; a bad file is a RecordingError naming the line and the field (exit 2 and
one line from the CLI), and a frame that cannot be played mid-replay is skipped with a visible error.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from face3d_nb.live.config import EngineConfig
from face3d_nb.live.events import ErrorEvent, FrameResult
from face3d_nb.live.recording import RecordedFace, RecordedFrame, RecordingError, read_recording
from face3d_nb.testing.polling import wait_for

HEADER = json.dumps({"format": "face3d_nb-recording", "version": 1})


def _face(**fields) -> dict:
    params = np.random.default_rng(fields.pop("seed", 0)).normal(0, 1e-4, 62)
    params[:12] = [1e-3, 0, 0, 60, 0, 1e-3, 0, 60, 0, 0, 1e-3, 0]
    return {"track_id": 1, "box": [10.0, 10.0, 90.0, 90.0, 0.99], "roi_box": [0.0, 0.0, 100.0, 100.0],
            "params": params.tolist(), "pose": [1.0, 2.0, 3.0], **fields}


def _frame(seq: int = 1, **fields) -> dict:
    return {"seq": seq, "t": seq / 25, "frame_shape": [480, 640], "faces": [_face(seed=seq)], **fields}


def _write(path, *lines: str):
    # The hostile line second, a good frame after it: a torn last line is forgiven, nothing else is.
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return path


def _hostile(name: str) -> str:
    if name == "seq 1e999":
        return json.dumps(_frame()).replace('"seq": 1,', '"seq": 1e999,')
    if name == "deep nesting":
        return '{"seq": 1, "t": 0, "frame_shape": [480, 640], "faces": ' + "[" * 50_000 + "]" * 50_000 + "}"
    if name == "nan params":
        return json.dumps(_frame(faces=[_face(params=[float("nan")] * 62)]))
    if name == "infinite pose":
        return json.dumps(_frame(faces=[_face(pose=[0.0, float("inf"), 0.0])]))
    if name == "params beyond float32":
        return json.dumps(_frame(faces=[_face(params=[1e39] * 62)]))
    if name == "line too long":
        return json.dumps(_frame(note="x" * 1_000_000))
    updates = {
        "2-element roi_box": {"faces": [_face(roi_box=[1.0, 2.0])]},
        "nan box corner": {"faces": [_face(box=[10.0, float("nan"), 90.0, 90.0, 0.9])]},
        "61 params": {"faces": [_face(params=[0.0] * 61)]},
        "params as strings": {"faces": [_face(params=["0.5"] * 62)]},
        "ragged pose": {"faces": [_face(pose=[[1.0], [2.0, 3.0], 4.0])]},
        "float track_id": {"faces": [_face(track_id=1.5)]},
        "roi_box without area": {"faces": [_face(roi_box=[50.0, 50.0, 50.0, 80.0])]},
        "t a string": {"t": "soon"},
        "frame_shape of 3": {"frame_shape": [480, 640, 3]},
        "faces a dict": {"faces": {"0": _face()}},
    }
    return json.dumps(_frame(**updates[name]))


CASES = {  # the hostile value -> the field the error must name
    "seq 1e999": "seq", "deep nesting": "nested too deeply", "nan params": "faces[0].params",
    "infinite pose": "faces[0].pose", "params beyond float32": "faces[0].params", "line too long": "longer than",
    "2-element roi_box": "faces[0].roi_box", "nan box corner": "faces[0].box", "61 params": "faces[0].params", "params as strings": "faces[0].params", "ragged pose": "faces[0].pose",
    "float track_id": "faces[0].track_id", "roi_box without area": "faces[0].roi_box", "t a string": ": t:",
    "frame_shape of 3": "frame_shape", "faces a dict": "faces",
}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_values_are_recording_errors_naming_the_line_and_field(tmp_path, name):
    path = _write(tmp_path / "hostile.jsonl", _hostile(name), json.dumps(_frame(2)))
    with pytest.raises(RecordingError) as caught:
        read_recording(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:2: ") and CASES[name] in message
    assert "\n" not in message and len(message) < 400


def test_a_good_file_of_the_same_shape_still_reads(tmp_path):
    # A tracked (not detected) face has no detector score: NaN there is what the recorder writes.
    tracked = _frame(2, faces=[_face(box=[10.0, 10.0, 90.0, 90.0, float("nan")])])
    path = _write(tmp_path / "good.jsonl", json.dumps(_frame(1)), json.dumps(tracked))
    _, frames = read_recording(path)
    assert [f.seq for f in frames] == [1, 2] and frames[0].faces[0].params.dtype == np.float32
    assert np.isnan(frames[1].faces[0].box[4])


@pytest.mark.parametrize("name", ["seq 1e999", "deep nesting", "2-element roi_box", "nan params"])
def test_cli_export_of_a_hostile_recording_exits_2_with_one_line(tmp_path, cli_env, name):
    path = _write(tmp_path / "hostile.jsonl", _hostile(name), json.dumps(_frame(2)))
    out = tmp_path / "meshes"
    proc = subprocess.run([sys.executable, "-m", "face3d_nb.cli", "export", str(path), "--out", str(out)],
                          capture_output=True, text=True, env=cli_env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "hostile.jsonl:2: " in proc.stderr and CASES[name] in proc.stderr
    assert not out.exists() or not any(out.iterdir())


def test_max_faces_is_not_taken_from_the_file_unbounded(tmp_path):
    # The replay app makes a mesh widget per face of the most crowded frame: a file cannot ask for 100.
    crowd = json.dumps(_frame(faces=[_face(track_id=i, seed=i) for i in range(100)]))
    with pytest.raises(RecordingError, match=r":2: faces: expected a list of at most \d+ faces, got 100 faces"):
        read_recording(_write(tmp_path / "crowd.jsonl", crowd))
    from face3d_nb.live.config import MAX_FACES

    # As many faces as the engine tracks at most read; one more does not, and the engine's range has that top.
    most = json.dumps(_frame(faces=[_face(track_id=i, seed=i) for i in range(MAX_FACES)]))
    assert len(read_recording(_write(tmp_path / "full.jsonl", most))[1][0].faces) == MAX_FACES
    more = json.dumps(_frame(faces=[_face(track_id=i, seed=i) for i in range(MAX_FACES + 1)]))
    with pytest.raises(RecordingError, match=":2: faces"):
        read_recording(_write(tmp_path / "more.jsonl", more))
    with pytest.raises(ValueError, match="max_faces"):
        EngineConfig(max_faces=MAX_FACES + 1)


def test_a_bad_frame_mid_replay_is_skipped_with_an_error_and_play_resets(tmp_path, model_store):
    from face3d_nb.apps.replay_app import ReplayApp

    path = _write(tmp_path / "s.jsonl", *(json.dumps(_frame(seq)) for seq in range(1, 6)))
    app = ReplayApp(path, "low", store=model_store, autoplay=False)
    app.viewer.link.send = lambda content, buffers=None: None
    events = []
    app.replayer.subscribe(events.append)
    # Fault injection: a frame no reader would build (2-element roi box) handed to the replayer.
    good = app.replayer.frames[2]
    bad_face = RecordedFace(1, good.faces[0].box, np.array([1.0, 2.0]), good.faces[0].params, good.faces[0].pose)
    app.replayer.frames[2] = RecordedFrame(good.seq, good.t, good.frame_shape, (bad_face,))
    try:
        app.replayer.speed = 4.0
        app.play_button.value = True
        wait_for(lambda: app.play_button.description == "Play", timeout=30, message="the Play button to reset")
        assert app.play_button.value is False and app.replayer.finished.is_set() and not app.replayer.playing
        assert [type(e) for e in events] == [FrameResult, FrameResult, ErrorEvent, FrameResult, FrameResult]
        assert [e.seq for e in events if isinstance(e, FrameResult)] == [1, 2, 4, 5]
        assert "frame 3 of 5 cannot be played" in events[2].error
        assert "frame 3 of 5 cannot be played" in app.status.value and "5</span> / 5 frames" in app.status.value
        # The next play goes through every good frame again.
        events.clear()
        app.play_button.value = True
        wait_for(lambda: app.play_button.description == "Play", timeout=30, message="the second play to end")
        assert sum(isinstance(e, FrameResult) for e in events) == 4
    finally:
        app.close()
