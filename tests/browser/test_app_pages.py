"""The live app end to end: `face3d-nb app` (Voila) and JupyterLab, headless Chromium, fake camera.

The fake camera plays the real test video; the real models run in the page's kernel. What the page
shows is read from the DOM (the stats panel's stable CSS classes); what the kernel holds (widget
state, threads) is read by a second client on the page's own kernel (:class:`KernelProbe`).
"""

from __future__ import annotations

import time

import pytest
from pages import PAGE_TIMEOUT_MS, VIEWPORT, local_only, requires_browser, screenshot, wait_for_stat

from face3d_nb.testing.browser import KernelProbe, Server, launch_chromium, probe_for, wait_until

pytestmark = [pytest.mark.real_assets, requires_browser]


def wait_kernel(probe: KernelProbe, expression: str, timeout: float = 120.0, message: str | None = None):
    return wait_until(lambda: probe.eval(expression), timeout, 0.5, message or expression)


def app_threads(probe: KernelProbe) -> list[str]:
    return probe.eval("[t.name for t in __import__('threading').enumerate() if t.name.startswith('face3d')]")


def camera_source(page, probe: KernelProbe, where: str) -> str:
    """The path frames take here (whichever it is): the page's line and the kernel's trait must agree."""
    source = wait_kernel(probe, "app.grabber.source", message="the page reporting where its frames come from")
    line = page.locator(".face3d-camera-source").inner_text().strip()
    print(f"\n{where}: camera source {source!r}, the page says {line!r}")
    if source == "camera_stream":
        assert line == "Camera: via ipywebrtc"
    else:
        assert source == "direct" and line.startswith("Camera: opened directly"), (source, line)
    return source


def mesh_figures(probe: KernelProbe, where: str, seconds: float = 10.0) -> None:
    """Print the mesh updates the page acknowledged per second, and capture-to-applied p50, over ``seconds``."""
    before = probe.eval("app.viewer.stats().applied")
    start = time.monotonic()
    time.sleep(seconds)
    after, p50, transport = probe.eval("(lambda s: (s.applied, s.latency_p50, s.transport))(app.viewer.stats())")
    rate = (after - before) / (time.monotonic() - start)
    print(f"\n{where}: {rate:.1f} mesh updates/s, capture-to-applied p50 {p50:.0f} ms ({transport})")
    assert rate > 0


# -- Voila ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def voila(real_store, tmp_path_factory):
    with Server("voila", tmp_path_factory.mktemp("voila"), real_store.home) as server:
        yield server


@pytest.fixture(scope="module")
def voila_app(voila, browser):
    """The app page in Voila, streaming, and a probe on its kernel."""
    page = browser.new_page(viewport=VIEWPORT)
    blocked = local_only(page)
    page.goto(f"{voila.url}/", timeout=PAGE_TIMEOUT_MS)
    probe = probe_for(voila)
    yield page, probe, blocked
    probe.close()
    page.close()


def test_voila_streams_the_camera_into_a_live_mesh(voila_app, tmp_path):
    page, probe, blocked = voila_app
    page.wait_for_selector(".face3d-viewer canvas", timeout=PAGE_TIMEOUT_MS)
    # The camera shows: the preview holds real decoded frames.
    wait_until(lambda: page.evaluate("() => { const i = document.querySelector('img.face3d-camera-preview');"
                                     " return !!i && !i.hidden && i.naturalWidth > 0; }"), 180,
               message="the camera preview")
    assert wait_for_stat(page, "fps") > 0
    assert wait_for_stat(page, "mesh-fps") > 0
    assert wait_kernel(probe, "app.viewer.stats().applied >= 5", message="5 mesh updates acknowledged")
    assert probe.eval("app.grabber.status") == "streaming"
    assert probe.eval("app.stats()['mesh']['meshes']") == 1
    camera_source(page, probe, "Voila")
    mesh_figures(probe, "Voila")
    # `face3d-nb app` starts kernels without widget echo, and nothing outside this machine was needed.
    assert probe.eval("__import__('os').environ.get('JUPYTER_WIDGETS_ECHO')") == "0"
    assert not [url for url in blocked if "fontawesome" not in url], blocked
    wait_for_stat(page, "latency-p50")
    screenshot(page, "voila_app", tmp_path)


def test_controls_change_the_scene(voila_app):
    page, probe, _ = voila_app
    page.locator(".face3d-wireframe input[type=checkbox]").check(timeout=60_000)
    wait_kernel(probe, "app.viewer.material.wireframe is True", message="wireframe on in the kernel's scene")
    colour = page.locator(".face3d-color input[type=text]")
    colour.fill("#3366cc")
    colour.press("Enter")
    wait_kernel(probe, "app.viewer.material.color == '#3366cc'", message="the new mesh colour")
    before = probe.eval("app.viewer.ambient.intensity")
    page.locator(".face3d-ambient-intensity .noUi-handle").focus()
    page.keyboard.press("End")
    wait_kernel(probe, f"app.viewer.ambient.intensity > {before}", message="a brighter ambient light")
    assert probe.eval("app.viewer.ambient.intensity") == pytest.approx(2.0)
    page.locator(".face3d-wireframe input[type=checkbox]").uncheck()
    wait_kernel(probe, "app.viewer.material.wireframe is False")


def test_pause_stops_updates_and_resume_restarts_them(voila_app):
    page, probe, _ = voila_app
    pause = page.locator(".face3d-pause")
    pause.click()
    wait_kernel(probe, "app.engine.paused and app.grabber.status == 'paused'", message="paused")
    # Let the update in flight when pausing land, then nothing more may arrive.
    time.sleep(2.0)
    applied, received = probe.eval("(app.viewer.stats().applied, app.grabber.received)")
    time.sleep(3.0)
    assert probe.eval("(app.viewer.stats().applied, app.grabber.received)") == (applied, received)
    assert pause.inner_text().strip() == "Resume"
    pause.click()
    wait_kernel(probe, f"app.viewer.stats().applied > {applied} + 3", message="updates after resuming")
    assert probe.eval("app.grabber.status") == "streaming"


def test_a_hidden_page_stops_grabbing(voila_app):
    page, probe, _ = voila_app
    set_visibility = ("state => { Object.defineProperty(document, 'visibilityState', {value: state, configurable: true});"
                      " document.dispatchEvent(new Event('visibilitychange')); }")
    page.evaluate(set_visibility, "hidden")
    wait_kernel(probe, "app.grabber.status == 'hidden'", message="the page reporting itself hidden")
    time.sleep(2.0)
    received = probe.eval("app.grabber.received")
    time.sleep(3.0)
    assert probe.eval("app.grabber.received") == received
    page.evaluate(set_visibility, "visible")
    wait_kernel(probe, f"app.grabber.received > {received} + 3", message="frames again once visible")


def test_close_leaves_no_thread_running(voila_app):
    page, probe, _ = voila_app
    assert "face3d-engine" in app_threads(probe)
    probe.run("app.close()")
    assert app_threads(probe) == []
    assert probe.eval("app.engine.running") is False


def test_the_camera_picker_switches_cameras(voila, playwright_session, tmp_path):
    browser = launch_chromium(playwright_session, None, cameras=2)
    known = set(voila.connection_files())
    try:
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(f"{voila.url}/", timeout=PAGE_TIMEOUT_MS)
        probe = probe_for(voila, known)
        try:
            picker = page.locator(".face3d-camera-picker")
            wait_until(lambda: picker.is_visible() and picker.locator("option").count() == 2, 180,
                       message="a picker of two cameras")
            cameras = wait_kernel(probe, "len(app.grabber.cameras) == 2 and app.grabber.cameras")
            second = cameras[1]["id"]
            wait_kernel(probe, "app.grabber.received > 3", message="frames from the first camera")
            picker.select_option(second)
            wait_kernel(probe, f"app.grabber.device_id == {second!r}", message="the chosen camera in the kernel")
            camera = page.locator(".face3d-camera")
            # The page reads the track it opened: its device is the one chosen.
            wait_until(lambda: camera.get_attribute("data-device") == second, 60, message="the second camera open")
            received = probe.eval("app.grabber.received")
            wait_kernel(probe, f"app.grabber.received > {received} + 5", message="frames from the second camera")
            assert probe.eval("app.grabber.status") == "streaming"
            assert camera_source(page, probe, "Voila, second camera") == "direct"
            assert picker.input_value() == second
            screenshot(page, "voila_camera_picker", tmp_path)
            probe.run("app.close()")
        finally:
            probe.close()
    finally:
        browser.close()


def test_a_denied_camera_shows_a_message(voila, playwright_session, fake_camera, tmp_path):
    browser = launch_chromium(playwright_session, fake_camera, allow_camera=False)
    try:
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(f"{voila.url}/", timeout=PAGE_TIMEOUT_MS)
        message = page.locator(".face3d-camera-message")
        wait_until(lambda: "denied" in (message.inner_text() if message.count() else ""), 180,
                   message="the camera-denied message")
        assert message.is_visible()
        assert "Traceback" not in page.locator("body").inner_text()
        screenshot(page, "voila_denied", tmp_path)
    finally:
        browser.close()


# -- JupyterLab ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lab(real_store, tmp_path_factory):
    with Server("lab", tmp_path_factory.mktemp("lab"), real_store.home) as server:
        yield server


def test_jupyterlab_runs_the_same_notebook(lab, browser, tmp_path):
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(f"{lab.url}/lab/tree/face3d_app.ipynb?token={lab.token}", timeout=PAGE_TIMEOUT_MS)
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                               " && window.jupyterapp.shell.currentWidget.sessionContext"
                               " && window.jupyterapp.shell.currentWidget.sessionContext.session"
                               " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel",
                               timeout=PAGE_TIMEOUT_MS)
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        page.wait_for_selector(".face3d-viewer canvas", timeout=PAGE_TIMEOUT_MS)
        assert wait_for_stat(page, "fps") > 0
        assert wait_for_stat(page, "mesh-fps") > 0
        [session] = lab.api("/api/sessions")
        probe = KernelProbe(lab.runtime_dir / f"kernel-{session['kernel']['id']}.json")
        try:
            wait_kernel(probe, "app.viewer.stats().applied >= 5", message="5 mesh updates acknowledged")
            camera_source(page, probe, "JupyterLab")
            mesh_figures(probe, "JupyterLab")
            # JupyterLab as people run it: ipywidgets echoes what the page syncs back to it.
            assert probe.eval("__import__('ipywidgets').widgets.widget.JUPYTER_WIDGETS_ECHO") is True
            # The GPU transport works in JupyterLab too: the page passes its check and acknowledges.
            wait_kernel(probe, "app.viewer.link.gpu_decode == 'ok'", message="the page's GPU check")
            page.locator(".face3d-transport select").select_option(label="coefficients (page's GPU decodes)")
            applied = probe.eval("app.viewer.stats().applied")
            wait_kernel(probe, f"app.viewer.active_transport == 'coefficients' and app.viewer.stats().applied > "
                               f"{applied + 5}", message="5 coefficient updates acknowledged")
            page.locator(".face3d-transport select").select_option(label="automatic")
            page.locator(".face3d-wireframe input[type=checkbox]").check()
            wait_kernel(probe, "app.viewer.material.wireframe is True")
            page.locator(".face3d-wireframe input[type=checkbox]").uncheck()
            wait_kernel(probe, "app.viewer.material.wireframe is False")
            wait_for_stat(page, "latency-p50")
            # The notebook scrolls inside the page: bring the 3D view to the top for the picture.
            page.evaluate("() => document.querySelector('.face3d-viewer').scrollIntoView({block: 'start'})")
            screenshot(page, "jupyterlab_app", tmp_path)
            probe.run("app.close()")
            assert app_threads(probe) == []
        finally:
            probe.close()
        # Nothing in the notebook's output area is an error.
        assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").count() == 0
    finally:
        page.close()
