"""FaceApp's issue-5 features, Python side (no browser; widgets talk to no page): defaults from the
measured round trip, the execution provider switch and its CPU fallback notice, and the save panel
wired to the newest result. The page side is tested in tests/browser/test_app_saves.py."""

import threading

import cv2
import pytest

from face3d_nb.core.runtime import CUDA_FALLBACK, cuda_available
from face3d_nb.testing.assets import IMAGES


@pytest.fixture
def app(model_store, reconstructor):
    from face3d_nb.apps.live_app import FaceApp

    app = FaceApp(store=model_store, reconstructor=reconstructor)
    yield app
    app.close()


def _measure(app, rtt_s: float, renderer: str = "") -> None:
    """Play the page's side of a round-trip measurement, each pong ``rtt_s`` after its ping."""
    link, clock, pings = app.viewer.link, [100.0], []
    link._clock = lambda: clock[0]
    link.send = lambda content, buffers=None: pings.append(content["id"])
    link._handle_message(link, {"type": "hello", "renderer": renderer}, [])
    while link.measuring:
        clock[0] += rtt_s
        link._handle_message(link, {"type": "pong", "id": pings[-1]}, [])


def test_a_far_page_gets_low_detail_and_smaller_frames_and_is_told(app):
    assert app.engine.config.detail == "full" and app.grabber.width == 320
    _measure(app, 0.250)
    assert app.viewer.link.rtt_ms == pytest.approx(250.0)
    assert (app.controls.detail, app.engine.config.detail, app.grabber.width) == ("low", "low", 256)
    assert "250 ms" in app.viewer.link.note and "low mesh detail" in app.viewer.link.note
    app.controls.detail = "medium"
    _measure(app, 0.001)  # a later measurement does not undo the user's choice
    assert app.engine.config.detail == "medium"


def test_a_near_page_drawing_without_a_gpu_starts_at_medium_detail(app):
    _measure(app, 0.002, renderer="ANGLE (Google, Vulkan 1.3.0 (SwiftShader Device (Subzero)))")
    assert (app.engine.config.detail, app.grabber.width) == ("medium", 320)
    assert "2 ms" in app.viewer.link.note and "without a GPU" in app.viewer.link.note


@pytest.mark.real_assets
def test_the_newest_result_is_what_the_save_buttons_save(app):
    got = threading.Event()
    app.engine.subscribe(lambda event: got.set())
    app.engine.submit(cv2.imread(str(IMAGES["JianzhuGuo"])))
    assert got.wait(60)
    latest = app._latest
    assert latest is not None and len(latest.faces) == 1
    assert app.save_panel.buttons["obj"].description == "Save .obj"


@pytest.mark.skipif(cuda_available(), reason="this onnxruntime has CUDA: there is no fallback to show")
def test_provider_switch_restarts_the_engine_and_shows_the_fallback(app):
    assert app.provider_note.value == ""
    app.controls.provider = "cuda"
    assert CUDA_FALLBACK in app.provider_note.value
    assert app.engine.running and app.engine.config.provider == "cuda"
    app.controls.paused = True
    app.controls.provider = "cpu"
    assert app.provider_note.value == "" and app.engine.paused  # the switch keeps the app paused
