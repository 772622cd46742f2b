"""The live engine with the real models: flow control, errors, threads, tracking, smoothing, memory, CLI."""

from __future__ import annotations

import gc
import json
import os
import re
import threading
import time
import weakref

import cv2
import numpy as np
import pytest

from face3d_nb.cli import main
from face3d_nb.core.pipeline import scale_face
from face3d_nb.live.config import EngineConfig
from face3d_nb.live.engine import Engine
from face3d_nb.live.events import ErrorEvent, FrameResult
from face3d_nb.testing.assets import VIDEO

TIMEOUT = 60  # generous: the CI machine is small and shared


class Collector:
    """Subscribes to an engine and lets the test wait for the n-th event."""

    def __init__(self, engine: Engine):
        self.events: list = []
        self._cond = threading.Condition()
        engine.subscribe(self)

    def __call__(self, event) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait_for(self, n: int, timeout: float = TIMEOUT) -> list:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.events) >= n, timeout), f"only {len(self.events)} of {n} events"
            return list(self.events)

    @property
    def results(self) -> list[FrameResult]:
        return [e for e in self.events if isinstance(e, FrameResult)]


class FakeClock:
    def __init__(self, t: float = 100.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def photo(face_photo):
    return face_photo


@pytest.fixture(scope="module")
def video(face_clip):
    return face_clip


def _run(engine: Engine, frames, times=None) -> None:
    """Submit frames one at a time, each after the previous one is done (nothing dropped)."""
    for i, frame in enumerate(frames):
        engine.submit(frame, captured_at=None if times is None else times[i])
        assert engine.drain(TIMEOUT)


def _balanced(stats) -> bool:
    return stats.submitted == stats.processed + stats.errors + stats.dropped + stats.skipped


def _engine_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "face3d-engine"]


def test_newest_frame_wins_and_drops_are_counted(reconstructor, photo):
    gate, inside = threading.Event(), threading.Event()

    def hold_first(event):
        if event.seq == 0:
            inside.set()
            gate.wait(TIMEOUT)

    with Engine(EngineConfig(), reconstructor) as engine:
        engine.subscribe(hold_first)
        events = Collector(engine)
        engine.submit(photo)
        assert inside.wait(TIMEOUT)  # the worker is busy with frame 0
        for _ in range(5):
            engine.submit(photo)  # frames 1..5: each replaces the one before
        assert engine.stats().dropped == 4
        gate.set()
        assert engine.drain(TIMEOUT)
        assert [e.seq for e in events.events] == [0, 5]
        stats = engine.stats()
    assert (stats.submitted, stats.processed, stats.dropped, stats.errors) == (6, 2, 4, 0)
    assert _balanced(stats)


def test_frame_skip_processes_every_kth_frame(reconstructor, photo):
    with Engine(EngineConfig(frame_skip=3), reconstructor) as engine:
        events = Collector(engine)
        _run(engine, [photo] * 7)
        assert [e.seq for e in events.events] == [0, 3, 6]
        stats = engine.stats()
    assert (stats.skipped, stats.processed, stats.dropped) == (4, 3, 0)


def test_max_fps_spaces_processed_frames_on_the_engine_clock(reconstructor, photo):
    clock = FakeClock()
    with Engine(EngineConfig(max_fps=10), reconstructor, clock=clock) as engine:
        events = Collector(engine)
        engine.submit(photo)
        events.wait_for(1)
        clock.t += 0.05
        engine.submit(photo)
        engine.submit(photo)
        # Half the interval has passed on the engine's clock: nothing may be processed, however
        # long we wait in real time.
        time.sleep(0.3)
        assert len(events.events) == 1
        clock.t += 0.05
        assert [e.seq for e in events.wait_for(2)] == [0, 2]
        engine.update_config(max_fps=0)
        engine.submit(photo)
        assert events.wait_for(3)[-1].seq == 3
        assert engine.stats().dropped == 1


def test_frames_older_than_max_age_are_dropped_not_processed(reconstructor, photo):
    clock = FakeClock()
    with Engine(EngineConfig(max_age=0.1), reconstructor, clock=clock) as engine:
        events = Collector(engine)
        _run(engine, [photo], times=[clock.t - 0.2])
        _run(engine, [photo], times=[clock.t - 0.05])
        assert [e.seq for e in events.events] == [1]
        assert events.events[0].timings["wait"] == pytest.approx(50)
        stats = engine.stats()
    assert (stats.dropped, stats.processed) == (1, 1) and _balanced(stats)


def test_worker_errors_are_published_and_the_next_frame_still_works(reconstructor, photo, caplog):
    jpeg = cv2.imencode(".jpg", photo)[1].tobytes()
    with Engine(EngineConfig(max_encoded_bytes=len(jpeg) + 10), reconstructor) as engine:
        events = Collector(engine)
        _run(engine, [b"not an image", np.zeros((48, 64), np.float32), jpeg + bytes(100), jpeg, photo])
        with pytest.raises(TypeError, match="numpy array or encoded image bytes"):
            engine.submit([[0, 0, 0]])
        stats = engine.stats()
    errors, results = events.events[:3], events.events[3:]
    assert all(isinstance(e, ErrorEvent) for e in errors)
    assert [e.seq for e in errors] == [0, 1, 2]
    assert "not a decodable image" in errors[0].error
    assert "uint8" in errors[1].error
    assert "max_encoded_bytes" in errors[2].error
    assert all("\n" not in e.error for e in errors)
    assert [type(r) for r in results] == [FrameResult, FrameResult]
    assert [len(r.faces) for r in results] == [1, 1]
    assert results[0].frame_shape == photo.shape[:2]
    assert (stats.errors, stats.processed) == (3, 2)
    assert "not a decodable image" in caplog.text


class _FailingOnce:
    """Fault injection (no real input makes the regressor raise): the real reconstructor, except
    that its second ``faces`` call (frame 1's; frame 0's detection pass makes one) raises."""

    def __init__(self, reconstructor):
        self._real = reconstructor
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self._real, name)

    def faces(self, *args):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("injected\nfailure")
        return self._real.faces(*args)


def test_unexpected_worker_exception_is_logged_published_and_survived(reconstructor, photo, caplog):
    with Engine(EngineConfig(), _FailingOnce(reconstructor)) as engine:
        events = Collector(engine)
        _run(engine, [photo] * 3)
        assert engine.running
    first, failed, recovered = events.events
    assert isinstance(first, FrameResult) and isinstance(recovered, FrameResult)
    assert isinstance(failed, ErrorEvent) and failed.error == "RuntimeError: injected failure"
    assert recovered.detected, "after an unexpected failure tracking starts again from a detection"
    assert "Traceback" in caplog.text and "frame 1 failed" in caplog.text


def test_a_raising_subscriber_neither_stops_the_worker_nor_the_others(reconstructor, photo):
    def broken(event):
        raise ValueError("subscriber bug")

    with Engine(EngineConfig(), reconstructor) as engine:
        engine.subscribe(broken)
        events = Collector(engine)
        _run(engine, [photo] * 3)
        stats = engine.stats()
    assert len(events.results) == 3
    assert (stats.callback_errors, stats.errors, stats.processed) == (3, 0, 3)


def test_unsubscribe(reconstructor, photo):
    with Engine(EngineConfig(), reconstructor) as engine:
        events = Collector(engine)
        late = Collector(engine)
        unsubscribe = engine.subscribe(late)  # subscribed twice: receives each event twice
        _run(engine, [photo])
        unsubscribe()
        unsubscribe()
        _run(engine, [photo])
    assert len(events.events) == 2
    assert len(late.events) == 3


def _native_threads() -> int | None:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return None


def test_stop_joins_the_worker_and_releases_the_sessions(cli_env, reconstructor, photo):
    # Warm up what the process keeps anyway (OpenCV's and ONNX Runtime's shared pools), so the
    # thread count below only sees what this engine starts and should stop.
    with Engine(EngineConfig(), reconstructor) as engine:
        _run(engine, [photo])
    gc.collect()
    before = _native_threads()
    engine = Engine(EngineConfig(arch="mb05"))
    engine.start()
    refs = [weakref.ref(engine._reconstructor.detector.session), weakref.ref(engine._reconstructor.regressor.session)]
    events = Collector(engine)
    _run(engine, [photo] * 2)
    assert engine.running and len(_engine_threads()) == 1
    engine.stop()
    assert not engine.running
    assert _engine_threads() == []
    gc.collect()
    assert [r() for r in refs] == [None, None], "the engine's ONNX sessions are still alive"
    if before is not None:
        # At most: a thread another test left behind may have ended meanwhile.
        assert _native_threads() <= before
    engine.submit(photo)
    assert engine.stats().dropped == 1 and len(events.events) == 2
    # It can start again, with fresh sessions.
    with engine:
        _run(engine, [photo])
    assert len(events.results) == 3
    assert _engine_threads() == []


def test_stop_from_a_subscriber_does_not_deadlock(reconstructor, photo):
    engine = Engine(EngineConfig(), reconstructor)
    engine.subscribe(lambda event: engine.stop())
    engine.start()
    engine.submit(photo)
    deadline = time.monotonic() + TIMEOUT
    while _engine_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _engine_threads() == []
    engine.stop()


def test_pause_drops_frames_and_resume_continues(reconstructor, photo):
    with Engine(EngineConfig(), reconstructor) as engine:
        events = Collector(engine)
        _run(engine, [photo])
        engine.pause()
        assert engine.paused
        engine.submit(photo)
        engine.submit(photo)
        assert engine.drain(TIMEOUT)
        assert len(events.events) == 1 and engine.stats().dropped == 2
        engine.resume()
        assert not engine.paused
        _run(engine, [photo])
        assert [e.seq for e in events.events] == [0, 3]
        assert _balanced(engine.stats())


def test_frames_before_start_are_dropped(reconstructor, photo):
    engine = Engine(EngineConfig(), reconstructor)
    engine.submit(photo)
    assert not engine.running
    assert engine.stats().dropped == 1


def test_update_config_validates_and_applies_on_the_next_frame(reconstructor, video):
    with Engine(EngineConfig(detect_interval=30), reconstructor) as engine:
        events = Collector(engine)
        _run(engine, video[:3])
        assert [r.detected for r in events.results] == [True, False, False]
        with pytest.raises(ValueError, match="^speed: unknown"):
            engine.update_config(speed=2)
        with pytest.raises(ValueError, match="^smoothing: must be between"):
            engine.update_config(smoothing=2.0)
        with pytest.raises(ValueError, match="^arch: can only change while the engine is stopped"):
            engine.update_config(arch="mb1")
        engine.update_config(detect_interval=1, dense=False, keep_frame=False)
        _run(engine, video[3:5])
        assert [r.detected for r in events.results[3:]] == [True, True]
        assert all(t.vertices is None for r in events.results[3:] for t in r.faces)
        assert all(r.frame is None for r in events.results[3:])
        assert engine.config.detect_interval == 1
    assert engine.update_config(arch="mb05").arch == "mb05"  # fine while stopped


def test_reset_tracking_starts_a_new_track(reconstructor, video):
    with Engine(EngineConfig(), reconstructor) as engine:
        events = Collector(engine)
        _run(engine, video[:2])
        engine.reset_tracking()
        _run(engine, video[2:4])
    assert [r.detected for r in events.results] == [True, False, True, False]
    assert [r.faces[0].track_id for r in events.results] == [1, 1, 2, 2]


def test_video_through_the_engine(reconstructor, video):
    # No search for faces that enter (tested with the tracker): the first frame and the periodic detection.
    with Engine(EngineConfig(search_interval=0), reconstructor) as engine:
        events = Collector(engine)
        _run(engine, video, times=[i / 25 for i in range(len(video))])
        stats = engine.stats()
    results = events.results
    assert len(results) == len(video)
    assert all(r.frame_shape == (360, 640) and r.scale == 0.5 and r.frame.shape == (360, 640, 3) for r in results)
    assert {t.track_id for r in results for t in r.faces} == {1}
    assert all(len(r.faces) == 1 for r in results)
    assert sum(r.detected for r in results) == 2
    for r in results:
        (tracked,) = r.faces
        assert tracked.vertices.shape == (reconstructor.model.n_vertices, 3)
        assert tracked.vertices.dtype == np.float32
        assert np.isfinite(tracked.face.params).all()
        # The mesh is decoded from the smoothed parameters: its landmark vertices are the landmarks.
        landmark_vertices = tracked.vertices[reconstructor.model.landmarks, :2]
        np.testing.assert_allclose(landmark_vertices, tracked.face.landmarks[:, :2], atol=0.01)
        assert set(r.timings) == {"wait", "decode", "detect", "regress", "reconstruct", "total", "end_to_end"}
    # Mapped back to the 1280x720 input, the face is where the detector finds it there.
    first = scale_face(results[0].faces[0].face, 1 / results[0].scale)
    box = reconstructor.detector(video[0])[0]
    centre = first.landmarks[:, :2].mean(axis=0)
    assert box[0] < centre[0] < box[2] and box[1] < centre[1] < box[3]
    assert _balanced(stats) and stats.processed == len(video)
    assert set(stats.latency_p50) == set(results[0].timings)
    assert all(stats.latency_p95[k] >= stats.latency_p50[k] for k in stats.latency_p50)


def _landmark_jitter(results) -> float:
    tracks = np.array([r.faces[0].face.landmarks[:, :2] for r in results], np.float64)
    return float(np.linalg.norm(np.diff(tracks, axis=0), axis=2).mean())


@pytest.mark.real_assets
def test_smoothing_halves_landmark_jitter_on_a_still_face(reconstructor, photo):
    rng = np.random.default_rng(0)
    frames = [np.clip(photo + rng.normal(0, 3, photo.shape), 0, 255).astype(np.uint8) for _ in range(30)]
    times = [i / 30 for i in range(30)]
    jitter = {}
    for strength in (0.0, 0.5):
        with Engine(EngineConfig(smoothing=strength, dense=False), reconstructor) as engine:
            events = Collector(engine)
            _run(engine, frames, times)
        assert {t.track_id for r in events.results for t in r.faces} == {1}
        # The real detector scores this generated face below confirm_score: it shows from the second frame.
        jitter[strength] = _landmark_jitter(events.results[1:])
    assert jitter[0.0] > 0.1, "the noise should move the raw landmarks"
    assert jitter[0.5] < 0.5 * jitter[0.0], jitter


def _rss_mb() -> float | None:
    try:
        import psutil  # noqa: PLC0415 - optional

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except OSError:
            return None


def test_memory_is_flat_over_5000_frames(reconstructor, photo):
    """Tracking, losing and re-acquiring a face, and failing on bad bytes, 5,000 times."""
    if _rss_mb() is None:
        pytest.skip("no way to read this process's memory use here")
    small = cv2.resize(photo, (240, 320), interpolation=cv2.INTER_AREA)
    black = np.zeros_like(small)

    def frame(i: int):
        if i % 250 == 249:
            return b"\xff\xd8 broken jpeg"
        return black if i % 100 >= 97 else small

    track_ids: set[int] = set()
    with Engine(EngineConfig(), reconstructor) as engine:
        # Keep nothing but the ids: results hold meshes and frames, which the caller owns.
        engine.subscribe(lambda event: track_ids.update(t.track_id for t in getattr(event, "faces", ())))
        _run(engine, [frame(i) for i in range(500)])
        gc.collect()
        before = _rss_mb()
        for i in range(500, 5500):
            engine.submit(frame(i))
            assert engine.drain(TIMEOUT)
        gc.collect()
        after = _rss_mb()
        stats = engine.stats()
    assert stats.processed + stats.errors == 5500 and stats.errors == 22
    assert max(track_ids) > 50, "tracks should come and go"
    assert after - before < 20, f"RSS grew by {after - before:.1f} MB over 5,000 frames"


@pytest.mark.real_assets
def test_cli_video_live_json(cli_env, capsys):
    assert main(["video", str(VIDEO), "--live", "--json", "--arch", "mb05"]) == 0
    doc = json.loads(capsys.readouterr().out)
    frames = doc["frames"]
    assert 0.5 * 55 < len(frames) <= 55
    assert [f["frame"] for f in frames] == sorted({f["frame"] for f in frames})
    for f in frames:
        (face,) = f["faces"]
        assert isinstance(face["track_id"], int) and face["track_id"] == 1
        assert {"box", "roi_box", "params", "pose", "scale", "t3d", "landmarks"} <= set(face)
        assert len(face["landmarks"]) == 68
    # Coordinates are in the video's own 1280x720 pixels, as `video --json` reports them.
    xs = [p[0] for f in frames for p in f["faces"][0]["landmarks"]]
    assert max(xs) > 640
    assert frames[0]["faces"][0]["box"][4] > 0.5
    assert any(f["faces"][0]["box"][4] is None for f in frames)


@pytest.mark.real_assets
def test_cli_video_live_text_with_config_file(cli_env, capsys, tmp_path):
    config = tmp_path / "engine.toml"
    config.write_text("detect_interval = 1\nmax_faces = 1\n")
    assert main(["video", str(VIDEO), "--live", "--config", str(config), "--set", "smoothing=0.9"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^frame \d+: 1 face\(s\) #1 yaw", out, re.MULTILINE)
    assert "55 submitted" in out and "latency ms (p50 / p95)" in out and "end_to_end" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--live", "--set", "max_faces=two"], "max_faces: 'two' is not a valid int"),
        (["--live", "--set", "colour=red"], "colour: unknown setting"),
        (["--set", "smoothing=1"], "--config and --set only apply with --live"),
    ],
)
@pytest.mark.real_assets
def test_cli_video_live_bad_settings(cli_env, capsys, argv, message):
    assert main(["video", str(VIDEO), *argv]) == 2
    assert message in capsys.readouterr().err
