"""Reliability, lifecycle: whatever state the app is in, closing it releases everything and nothing is lost.

Each test is one fault from issue 12's lifecycle list: a worker busy past the stop timeout, a
provider switch whose models fail to load, ``app = FaceApp()`` re-run without ``close()``, and a
kernel shut down while a recording runs (a real Jupyter kernel, shut down the way Jupyter does it).
The models are the synthetic ones: these test wiring, not accuracy.
"""

from __future__ import annotations

import shutil
import sys
import textwrap
import threading

import pytest
from ipywidgets.widgets.widget import _instances as widget_instances

from face3d_nb.apps import live_app
from face3d_nb.core.pipeline import Reconstructor
from face3d_nb.live.engine import Engine
from face3d_nb.live.recording import read_recording
from face3d_nb.testing.polling import wait_for
from face3d_nb.testing.synthetic_models import synthetic_store


def _face3d_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("face3d")]


def _blocking_subscriber():
    """A subscriber that holds the engine's worker until ``gate`` is set; ``entered`` says it is there."""
    entered, gate = threading.Event(), threading.Event()

    def hold(_event) -> None:
        entered.set()
        gate.wait(30)

    return hold, entered, gate


@pytest.fixture
def app(synthetic_store, synthetic_reconstructor):
    app = live_app.FaceApp(store=synthetic_store, reconstructor=synthetic_reconstructor)
    yield app
    app.close()


def test_stopping_a_busy_engine_returns_and_the_worker_ends_after_its_frame(synthetic_reconstructor, face_photo):
    engine = Engine(reconstructor=synthetic_reconstructor)
    hold, entered, gate = _blocking_subscriber()
    engine.subscribe(hold)
    engine.start()
    engine.submit(face_photo)
    assert entered.wait(30)
    assert engine.stop(timeout=0.1) is False
    assert not engine.running
    with pytest.raises(RuntimeError, match="still busy"):
        engine.start()
    gate.set()
    wait_for(lambda: "face3d-engine" not in _face3d_threads(), message="the worker ends after its frame")
    engine.start()
    engine.submit(face_photo)
    assert engine.drain(30) and engine.stats().processed == 2
    assert engine.stop() is True


def test_closing_the_app_with_a_stuck_engine_still_closes_every_widget(app, face_photo, monkeypatch):
    monkeypatch.setattr(live_app, "_STOP_TIMEOUT", 0.1)
    hold, entered, gate = _blocking_subscriber()
    app.engine.subscribe(hold)
    app.engine.submit(face_photo)
    assert entered.wait(30)
    widgets = [app.grabber, app.camera, app.controls, app.stats_panel, app.frame_view, app.plot, app.save_panel,
               app.viewer.renderer, app.viewer.link, app]
    app.close()
    assert [w for w in widgets if w.comm is not None] == []
    assert "face3d-stats" not in _face3d_threads()
    gate.set()
    wait_for(lambda: _face3d_threads() == [], message="the stuck worker ends once its frame is done")


def test_a_failed_provider_switch_keeps_the_app_on_its_provider(tmp_path, face_photo):
    store = synthetic_store(tmp_path / "home")
    app = live_app.FaceApp(store=store, reconstructor=Reconstructor(store.resolve()))
    try:
        # The models for the new provider cannot load: the cache was emptied after the app started.
        shutil.rmtree(store.home)
        app.controls.provider = "cuda"
        assert app.controls.provider == "cpu" and app.engine.config.provider == "cpu" and app.engine.running
        assert "Could not switch to cuda" in app.provider_note.value
        app.engine.submit(face_photo)
        assert app.engine.drain(30) and app.engine.stats().processed == 1
    finally:
        app.close()


def test_a_new_app_closes_the_previous_one(synthetic_store, synthetic_reconstructor):
    before = set(widget_instances)
    first = live_app.FaceApp(store=synthetic_store, reconstructor=synthetic_reconstructor)
    made_by_first = [w for key, w in list(widget_instances.items()) if key not in before]
    second = live_app.FaceApp(store=synthetic_store, reconstructor=synthetic_reconstructor)
    try:
        assert not first.engine.running
        # Every widget, down to each one's Layout and Style and the 3D scene's cameras and lights:
        # each is a comm of its own that the page keeps a model for (bench_churn.py counts them).
        assert [w for w in made_by_first if w.comm is not None] == []
        assert second.engine.running and _face3d_threads().count("face3d-engine") == 1
        assert _face3d_threads().count("face3d-stats") == 1
    finally:
        second.close()
    assert _face3d_threads() == []


def test_a_recording_in_progress_is_kept_when_the_kernel_shuts_down(tmp_path, synthetic_store):
    from jupyter_client.manager import KernelManager

    manager = KernelManager(kernel_name="python3")
    manager.kernel_spec.argv[0] = sys.executable
    manager.start_kernel(cwd=str(tmp_path))
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        code = textwrap.dedent(f"""
            from face3d_nb.apps.live_app import FaceApp
            from face3d_nb.core.pipeline import Reconstructor
            from face3d_nb.models.store import ModelStore
            from face3d_nb.testing.media import face_picture
            store = ModelStore({str(synthetic_store.home)!r})
            app = FaceApp(store=store, reconstructor=Reconstructor(store.resolve()))
            app.save_panel.buttons["record"].value = True
            for _ in range(3):
                app.engine.submit(face_picture(480, 640))
                assert app.engine.drain(30)
        """)
        reply = client.execute_interactive(code, timeout=120)
        assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=False)
    [kept] = (tmp_path / "face3d-recordings").glob("face3d-session-*.jsonl")
    header, frames = read_recording(kept)
    assert len(frames) == 3 and header["format"] == "face3d_nb-recording"

