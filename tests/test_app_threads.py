"""FaceApp keeps the engine's subscriber contract (no browser): on the engine's worker only the mesh
update; the 2D view's drawing and JPEG encoding on the overlay thread. And the starting settings
chosen from the page's first round trip are kept as ``start_settings``."""

import threading
import time

import cv2
import numpy as np
import pytest

from face3d_nb.apps import live_app
from face3d_nb.testing.polling import wait_for
from face3d_nb.view.page_defaults import defaults_for


@pytest.fixture
def app(model_store, reconstructor):
    app = live_app.FaceApp(store=model_store, reconstructor=reconstructor)
    yield app
    app.close()



def test_the_overlay_is_drawn_off_the_engine_worker(app, face_photo, monkeypatch):
    threads = {"show": set(), "overlay": set()}
    show, overlay = app.viewer.show, live_app.draw_overlay

    def recording_show(event, frame_name=""):
        threads["show"].add(threading.current_thread().name)
        show(event, frame_name)

    def recording_overlay(frame, faces):
        threads["overlay"].add(threading.current_thread().name)
        return overlay(frame, faces)

    monkeypatch.setattr(app.viewer, "show", recording_show)
    monkeypatch.setattr(live_app, "draw_overlay", recording_overlay)
    app.controls.show_frame = True
    for _ in range(3):
        app.engine.submit(face_photo)
        assert app.engine.drain(30)
    wait_for(lambda: app.frame_view.value)
    assert threads == {"show": {"face3d-engine"}, "overlay": {"face3d-overlay"}}
    picture = cv2.imdecode(np.frombuffer(app.frame_view.value, np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape == face_photo.shape


def test_no_overlay_work_while_the_2d_view_is_hidden(app, face_photo):
    app.engine.submit(face_photo)
    assert app.engine.drain(30)
    time.sleep(0.3)
    assert app._latest is not None and app.frame_view.value == b""


def test_start_settings_are_the_ones_applied_and_shown(app):
    assert app.start_settings is None
    app.viewer.link.set_trait("rtt_ms", 250.0)
    chosen = defaults_for(250.0, software=app.viewer.link.software)
    assert app.start_settings == chosen
    assert (app.controls.detail, app.grabber.width, app.viewer.link.note) == (chosen.detail, chosen.input_size,
                                                                              chosen.reason)
    app.viewer.link.set_trait("rtt_ms", 2.0)  # later measurements change nothing
    assert app.start_settings == chosen
