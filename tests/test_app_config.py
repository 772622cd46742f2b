"""FaceApp(config=FILE) in the kernel: the file's settings reach the engine, the grabber, the viewer and the log."""

from __future__ import annotations

import csv
import time

import cv2
import pytest

from face3d_nb.apps.live_app import FaceApp
from face3d_nb.live.config import EngineConfig
from face3d_nb.testing.media import face_picture
from face3d_nb.testing.polling import wait_for


@pytest.fixture
def seed_config(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("model:\n  device: cpu\n  use_onnx: true\nperformance:\n  input_resolution: 480x360\n"
                    "  max_fps: 15\n  frame_skip: 1\ndebug:\n  log_performance: perf.csv\n"
                    "detail: low\ntransport: positions\n")
    return path


def test_a_seed_config_file_drives_the_app(reconstructor, seed_config, tmp_path):
    app = FaceApp(config=seed_config, reconstructor=reconstructor)
    try:
        assert (app.engine.config.max_fps, app.engine.config.frame_skip, app.engine.config.provider) == (15, 1, "cpu")
        assert (app.controls.input_size, app.grabber.width, app.grabber.max_fps) == (480, 480, 15)
        assert (app.viewer.transport, app.controls.detail) == ("positions", "low")
        # The page's round trip chooses the rest, never what the file set.
        app.viewer.link.set_trait("rtt_ms", 5.0)
        assert app.start_settings is not None and app.start_settings.input_size != 480
        assert (app.controls.input_size, app.controls.detail) == (480, "low")
        assert "The settings file's input_size (480) is kept." in app.viewer.link.note
        jpeg = cv2.imencode(".jpg", face_picture(240, 320))[1].tobytes()
        for seq in range(3):
            app.grabber._handle_message(app.grabber, {"type": "frame", "page": "tab-1", "seq": seq,
                                                      "captured_at": time.time() * 1000}, [memoryview(jpeg)])
            wait_for(lambda n=seq: app.performance_log.lines > n, message=f"log line {seq}")
        assert app.performance_log.path == tmp_path.resolve() / "perf.csv"
    finally:
        app.close()
    assert app.performance_log.closed
    with (tmp_path / "perf.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["seq"]) for r in rows] == [0, 1, 2]


def test_an_engine_config_still_works_and_writes_no_log(reconstructor):
    app = FaceApp(EngineConfig(max_fps=7), reconstructor=reconstructor)
    try:
        assert app.engine.config.max_fps == 7 and app.performance_log is None
        assert app.settings.given == frozenset()
    finally:
        app.close()


def test_a_bad_file_is_an_error_naming_the_key(reconstructor, tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[performance]\nmax_fsp = 15\n")
    with pytest.raises(ValueError, match=r"performance\.max_fsp: unknown setting \(did you mean"):
        FaceApp(config=path, reconstructor=reconstructor)
