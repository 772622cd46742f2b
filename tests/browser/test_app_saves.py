"""The app's save buttons, mesh detail, plots and GPU switch in a real Voila server and headless
Chromium whose fake camera plays the test video: .obj/.ply, screenshot and recording downloads
reach the browser (Playwright sees them) and load with the right contents; the detail control
changes what is decoded and drawn; the defaults come from the measured round trip; the CUDA
fallback is shown."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from pages import PAGE_TIMEOUT_MS, VIEWPORT, local_only, requires_browser

from face3d_nb.live.recording import read_recording
from face3d_nb.testing.browser import KernelProbe, Server, probe_for, wait_until
from face3d_nb.view.page_defaults import defaults_for

pytestmark = [pytest.mark.real_assets, requires_browser]
trimesh = pytest.importorskip("trimesh")

TIMEOUT = 180  # seconds; the browser's software WebGL, the server and the kernel share 2 cores


def download(page, selector: str, folder):
    """Click ``selector`` and save the download it starts into ``folder``."""
    with page.expect_download(timeout=TIMEOUT * 1000) as info:
        page.locator(selector).click()
    path = folder / info.value.suggested_filename
    info.value.save_as(path)
    return path


def more_meshes(probe: KernelProbe, n: int = 3) -> None:
    applied = probe.eval("app.viewer.stats().applied")
    wait_until(lambda: probe.eval("app.viewer.stats().applied") >= applied + n, TIMEOUT, 0.5, f"{n} more meshes")


def test_save_buttons_deliver_files_to_the_browser(model_store, reconstructor, browser, tmp_path):
    levels = reconstructor.levels
    with Server("voila", tmp_path, model_store.home) as server:
        page = browser.new_page(viewport=VIEWPORT, accept_downloads=True)
        blocked = local_only(page)
        probe = None
        try:
            page.goto(server.url + "/", timeout=PAGE_TIMEOUT_MS)
            link = page.locator(".face3d-link")
            wait_until(lambda: "Round trip to the kernel" in (link.inner_text() if link.count() else ""), TIMEOUT,
                       0.5, "the round-trip notice")
            probe = probe_for(server)
            # Defaults from the measured round trip and the page's renderer (SwiftShader here, so
            # medium detail at most): applied, and said in the page.
            # The link measures itself again while frames flow, so a later `rtt_ms` may differ from
            # the one the settings were chosen from: check what the app applied and told the page.
            assert probe.eval("app.viewer.link.software"), probe.eval("app.viewer.link.renderer")
            rtt_ms, detail, size, reason = probe.eval("(app.start_settings.rtt_ms, app.start_settings.detail, "
                                                      "app.start_settings.input_size, app.start_settings.reason)")
            chosen = defaults_for(rtt_ms, software=True)
            print(f"round trip to the page: {rtt_ms:.1f} ms -> {detail} detail, {size} px")
            assert (detail, size, reason) == (chosen.detail, chosen.input_size, chosen.reason)
            assert link.inner_text() == reason
            assert probe.eval("(app.engine.config.detail, app.grabber.width)") == (detail, size)
            more_meshes(probe)

            # Another mesh detail: the engine decodes, and the page is sent, that level.
            detail = "low" if chosen.detail == "medium" else "medium"
            page.locator(".face3d-detail select").select_option(detail)
            wait_until(lambda: probe.eval("app.engine.config.detail") == detail, 30, 0.25, f"detail={detail}")
            more_meshes(probe)
            level = levels.detail(detail)
            # The face's mesh is the scene's last child.
            assert probe.eval("app.viewer.scene.children[-1].geometry.attributes['position'].array.shape[0]") \
                == len(level.vertices)

            for fmt in ("obj", "ply"):
                path = download(page, f".face3d-save-{fmt}", tmp_path)
                assert path.suffix == f".{fmt}"
                # maintain_order: keep the few landmark vertices no triangle of a lower level uses.
                mesh = trimesh.load(path, process=False, maintain_order=True)
                faces = len(mesh.vertices) // len(level.vertices)
                assert faces >= 1 and len(mesh.vertices) == faces * len(level.vertices)
                assert len(mesh.faces) == faces * len(level.triangles)
                assert np.asarray(mesh.visual.vertex_colors)[:, :3].std() > 5  # the camera's colours

            # WebGL keeps no drawing buffer between frames, so a picture taken between two renders
            # can come out empty (a known limit of the screenshot, see README); allow three tries.
            for _ in range(3):
                shot = download(page, ".face3d-save-screenshot", tmp_path)
                picture = cv2.imread(str(shot))
                assert shot.suffix == ".png" and picture is not None and picture.shape[:2] == (480, 480)
                if picture.reshape(-1, 3).std(axis=0).max() > 10:  # a face, not an empty view
                    break
            else:
                pytest.fail("three screenshots of the 3D view were all empty")

            page.locator(".face3d-save-record").click()
            wait_until(lambda: probe.eval("app.save_panel.recording"), 30, 0.25, "the recording to start")
            processed = probe.eval("app.engine.stats().processed")
            wait_until(lambda: probe.eval("app.engine.stats().processed") >= processed + 5, TIMEOUT, 0.5,
                       "frames to record")
            recording = download(page, ".face3d-save-record", tmp_path)
            header, frames = read_recording(recording)
            assert recording.suffix == ".jsonl" and header["arch"] in ("mb1", "mb05") and len(frames) >= 5
            assert any(f.faces for f in frames)
            # The page reports a delivery after the browser has the file: it may arrive a little later.
            wait_until(lambda: probe.eval("app.save_panel.downloader.delivered") >= 4, 30, 0.25, "4 deliveries")
            assert probe.eval("app.save_panel.downloader.delivered") == 4

            # Plots: drawn in the page, which reports what drawing costs it.
            wait_until(lambda: probe.eval("app.plot.draws") > 0, 60, 0.5, "the plot's cost report")
            print(f"pose plot in the page: {probe.eval('app.plot.draws')} draws, "
                  f"{probe.eval('app.plot.draw_ms'):.2f} ms per draw (mean of the last report)")
            assert 0 < probe.eval("app.plot.draw_ms") < 50

            # The GPU switch where onnxruntime has no CUDA: the page says it runs on the CPU, and it runs.
            page.locator(".face3d-provider select").select_option(label="GPU (CUDA)")
            note = page.locator(".face3d-provider-note")
            wait_until(lambda: "using the CPU" in note.inner_text(), 60, 0.5, "the CUDA fallback message")
            more_meshes(probe)
            assert probe.eval("app.engine.config.provider") == "cuda"
            assert not [url for url in blocked if "fontawesome" not in url], blocked  # nothing from elsewhere
            page.screenshot(path=str(tmp_path / "app.png"), full_page=True)
        finally:
            if probe is not None:
                probe.close()
            page.close()
