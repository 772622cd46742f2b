"""The per-frame performance log, written by a real engine on the models of the test's tier."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

from face3d_nb.live.config import EngineConfig
from face3d_nb.live.engine import Engine
from face3d_nb.live.performance_log import COLUMNS, PerformanceLog

TIMEOUT = 60


def read_rows(path):
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_one_line_per_processed_frame_readable_while_running(reconstructor, face_photo, tmp_path):
    path = tmp_path / "logs" / "perf.csv"
    with Engine(EngineConfig(frame_skip=2), reconstructor) as engine:
        perf = PerformanceLog.attach(engine, path)
        assert path.read_text().splitlines() == [",".join(COLUMNS)]
        for _ in range(6):
            engine.submit(face_photo)
            assert engine.drain(TIMEOUT)
        # Flushed: another reader sees every line while the file is still open.
        rows = read_rows(path)
        engine.submit(b"not an image")
        assert engine.drain(TIMEOUT)
        perf.close()
        assert perf.closed
        engine.submit(face_photo)
        engine.submit(face_photo)
        assert engine.drain(TIMEOUT)
    assert [int(r["seq"]) for r in rows] == [0, 2, 4]
    for row in rows:
        assert row["time"][:2] == "20" and int(row["faces"]) == 1 and row["error"] == ""
        for stage in ("decode", "detect", "regress", "reconstruct", "total", "end_to_end"):
            assert float(row[f"{stage}_ms"]) >= 0
        assert float(row["processed_fps"]) >= 0
    assert [int(r["skipped"]) for r in rows] == [0, 1, 2]
    assert rows[0]["detected"] == "1"
    # The failed frame is a line with its error; after close nothing more is written.
    final = read_rows(path)
    assert len(final) == 4 == perf.lines
    assert "not a decodable image" in final[3]["error"] and final[3]["total_ms"] == ""
    assert int(final[3]["skipped"]) == 3


def test_close_twice_is_harmless(reconstructor, tmp_path):
    engine = Engine(EngineConfig(), reconstructor)
    perf = PerformanceLog.attach(engine, tmp_path / "perf.csv")
    perf.close()
    perf.close()
    assert perf.closed and perf.lines == 0


def test_video_live_writes_the_log_the_settings_file_asks_for(cli_env, face_clip_path, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("performance:\n  max_fps: 50\ndebug:\n  log_performance: perf.csv\n"
                      "model:\n  use_onnx: true\n")
    proc = subprocess.run([sys.executable, "-m", "face3d_nb.cli", "video", str(face_clip_path), "--live",
                           "--config", str(config), "--json"], capture_output=True, text=True, env=cli_env)
    assert proc.returncode == 0, proc.stderr
    assert "model.use_onnx: ignored: face3d_nb always runs ONNX Runtime" in proc.stderr
    processed = json.loads(proc.stdout)["frames"]
    rows = read_rows(tmp_path / "perf.csv")
    assert f"performance log: {tmp_path / 'perf.csv'} ({len(rows)} frames)" in proc.stderr
    assert [int(r["seq"]) for r in rows] == [f["frame"] for f in processed]
    assert all(r["error"] == "" for r in rows)
