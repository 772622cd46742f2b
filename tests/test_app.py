"""FaceApp in the kernel, without a browser: the real engine and the test's models behind the real widgets.

Frames arrive as the page sends them (the grabber's message handler, JPEGs of a generated face)
and the page's mesh acknowledgements are delivered as the page sends them (``version`` state
updates); ``send`` of the grabber is stubbed to collect what would go back to the page. The model
download is served by a real HTTP server on loopback with the real files from shared/assets (the
``upstream`` fixture).
"""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from face3d_nb.apps.live_app import FaceApp
from face3d_nb.live.config import EngineConfig
from face3d_nb.models.store import ModelStore
from face3d_nb.testing.media import face_picture
from face3d_nb.testing.polling import wait_for


@pytest.fixture(scope="module")
def jpegs():
    """30 camera frames of a face drifting right, 320x180 JPEG."""
    frames = [face_picture(320, 180, ((0.45 + 0.002 * i, 0.5),), size=0.9, seed=i) for i in range(30)]
    return [cv2.imencode(".jpg", frame)[1].tobytes() for frame in frames]


@pytest.fixture
def app(reconstructor):
    app = FaceApp(EngineConfig(detail="low"), reconstructor=reconstructor)
    app.grabber.sent = []
    app.grabber.send = lambda content, buffers=None: app.grabber.sent.append(content)
    yield app
    app.close()


def deliver(app, jpeg: bytes, seq: int) -> None:
    """What the page does with one camera frame."""
    app.grabber._handle_message(app.grabber, {"type": "frame", "page": "tab-1", "seq": seq,
                                              "captured_at": time.time() * 1000}, [memoryview(jpeg)])


def acknowledge_all(app) -> None:
    """What the page does once it has applied the meshes in flight."""
    for mesh in app.viewer._pool.meshes:
        if mesh.flights:
            mesh.position.set_state({"version": mesh.position.version + 1})


def panel_number(app, name: str) -> float:
    """The number in the stats panel's ``face3d-stat-<name>`` element, -1 when absent or not a number."""
    html = app.stats_panel.value
    marker = f"class='face3d-stat-{name}'>"
    if marker not in html:
        return -1
    try:
        return float(html.split(marker)[1].split("<")[0])
    except ValueError:
        return -1


def stream(app, jpegs, count: int, start: int = 0) -> None:
    for i in range(count):
        deliver(app, jpegs[(start + i) % len(jpegs)], start + i)
        time.sleep(0.04)
        acknowledge_all(app)


def test_frames_become_mesh_updates_and_stats(app, jpegs):
    stream(app, jpegs, 20)
    wait_for(lambda: app.engine.stats().processed >= 10, message="10 processed frames")
    acknowledge_all(app)
    assert app.grabber.received == 20 and app.grabber.sent[-1] == {"type": "ack", "seq": 19, "page": "tab-1", "accepted": True}
    mesh = app.viewer.stats()
    assert mesh.meshes == 1 and mesh.applied >= 5
    level = app.engine.stats()
    assert level.errors == 0
    [face_mesh] = app.viewer._pool.meshes
    assert face_mesh.detail == "low" and len(face_mesh.position.array) < 38365
    wait_for(lambda: panel_number(app, "fps") > 0, 5, "processed fps in the stats panel")


def test_settings_reach_the_engine_and_the_page(app, jpegs):
    c = app.controls
    c.smoothing, c.frame_skip, c.max_fps, c.input_size, c.detail = 0.9, 2, 12.0, 480, "medium"
    config = app.engine.config
    assert (config.smoothing, config.frame_skip, config.max_fps, config.detail) == (0.9, 2, 12.0, "medium")
    assert (app.grabber.max_fps, app.grabber.width) == (12.0, 480)
    c.show_frame = True
    stream(app, jpegs, 10)
    wait_for(lambda: app.frame_view.value, 30, "the 2D landmark view")
    assert app.frame_view.layout.display is None
    assert cv2.imdecode(np.frombuffer(app.frame_view.value, np.uint8), cv2.IMREAD_COLOR) is not None


def test_pause_stops_the_engine_and_the_page(app, jpegs):
    app.controls.paused = True
    assert app.engine.paused and app.grabber.enabled is False
    processed = app.engine.stats().processed
    stream(app, jpegs, 5)
    time.sleep(0.3)
    assert app.engine.stats().processed == processed
    app.controls.paused = False
    assert not app.engine.paused and app.grabber.enabled
    stream(app, jpegs, 5)
    wait_for(lambda: app.engine.stats().processed > processed, message="processing after resume")


def test_untrusted_frames_are_dropped_and_counted(app, jpegs):
    # Small on the wire, huge once decoded: refused from its header, before any pixel is allocated.
    huge = cv2.imencode(".jpg", np.zeros((2200, 2200, 3), np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 10])[1].tobytes()
    assert len(huge) < app.grabber.max_bytes
    deliver(app, huge, 1)
    wait_for(lambda: app.engine.stats().errors == 1, message="the oversized frame refused")
    deliver(app, b"\xff\xd8\xff\xe0" + bytes(64), 2)
    wait_for(lambda: app.engine.stats().errors == 2, message="the undecodable frame refused")
    deliver(app, bytes(app.grabber.max_bytes + 1), 3)
    assert app.grabber.rejected == 1
    stream(app, jpegs, 5, start=4)
    wait_for(lambda: app.engine.stats().processed >= 1, message="good frames still processed")
    # The panel's dropped count includes the rejected frame (and frames replaced by newer ones).
    wait_for(lambda: panel_number(app, "dropped") >= 1, 5, "the rejected frame in the stats")


def test_close_stops_everything_and_is_idempotent(reconstructor, jpegs):
    app = FaceApp(reconstructor=reconstructor)
    app.grabber.send = lambda content, buffers=None: None
    stream(app, jpegs, 3)
    assert {"face3d-engine", "face3d-stats"} <= {t.name for t in threading.enumerate()}
    app.close()
    assert not [t.name for t in threading.enumerate() if t.name.startswith("face3d")]
    assert not app.engine.running and app.grabber.comm is None and app.viewer.renderer.comm is None
    app.close()


# -- missing models ---------------------------------------------------------------------------------
@pytest.mark.real_assets
def test_missing_models_offer_a_download_that_starts_the_app(upstream, tmp_path):
    app = FaceApp(EngineConfig(arch="mb05"), store=ModelStore(tmp_path / "models"))
    try:
        assert app.engine is None
        notice, bfm, row, status = app.children[0].children
        assert "models not installed" in notice.value
        button, progress = row.children
        bfm.value = False  # the Basel Face Model is not among the test files
        button.click()
        assert button.disabled
        wait_for(lambda: app.engine is not None and app.engine.running, 180, "the download and the app starting")
        assert progress.value == pytest.approx(1.0)
        assert app.engine.running and app.viewer is not None and app.grabber is not None
        assert app.store.resolve("mb05").arch == "mb05"
    finally:
        app.close()
    assert not [t.name for t in threading.enumerate() if t.name.startswith("face3d")]


def test_a_failed_download_says_why_and_can_be_retried(tmp_path, monkeypatch):
    monkeypatch.setenv("FACE3D_URL_3DDFA_V2", "http://127.0.0.1:9/{commit}/{path}")
    app = FaceApp(EngineConfig(arch="mb05"), store=ModelStore(tmp_path / "models"))
    try:
        _, _, row, status = app.children[0].children
        button, _ = row.children
        button.click()
        wait_for(lambda: not button.disabled, 60, "the download to fail")
        assert "face3d-fetch-error" in status.value and "cannot download" in status.value
        assert app.engine is None
    finally:
        app.close()
