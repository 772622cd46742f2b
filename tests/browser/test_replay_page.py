"""`face3d-nb replay FILE` in a real Voila server and headless Chromium: the recording plays into the
3D view, and what the page's kernel replays equals the recording, frame for frame, bit for bit."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest
from pages import PAGE_TIMEOUT_MS, VIEWPORT, local_only, requires_browser

from face3d_nb.live.recording import read_recording
from face3d_nb.testing.assets import VIDEO
from face3d_nb.testing.browser import Server, probe_for, wait_until
from face3d_nb.testing.recordings import record_video

pytestmark = [pytest.mark.real_assets, requires_browser]

FRAMES = 30


class ReplayServer(Server):
    """``face3d-nb replay`` instead of ``face3d-nb app``."""

    def __init__(self, recording, detail: str, *args, **kwargs):
        super().__init__("voila", *args, **kwargs)
        self.recording, self.detail = recording, detail

    def command(self) -> list[str]:
        return [sys.executable, "-m", "face3d_nb.cli", "replay", str(self.recording), "--detail", self.detail,
                "--port", str(self.port), "--host", "127.0.0.1"]


@pytest.fixture(scope="module")
def recording(real_reconstructor, tmp_path_factory):
    return record_video(real_reconstructor, tmp_path_factory.mktemp("replay-page") / "session.jsonl", FRAMES, VIDEO)


def test_replay_page_plays_the_recording_frame_exact(recording, model_store, browser, tmp_path):
    again = tmp_path / "replayed.jsonl"
    with ReplayServer(recording, "medium", tmp_path, model_store.home) as server:
        page = browser.new_page(viewport=VIEWPORT)
        blocked = local_only(page)
        try:
            page.goto(server.url + "/", timeout=PAGE_TIMEOUT_MS)
            status = page.locator(".face3d-replay-status")
            status.wait_for(timeout=PAGE_TIMEOUT_MS)
            # Autoplay: 30 frames at 25 fps, a little over a second once the kernel is up.
            wait_until(lambda: f"{FRAMES}</span> / {FRAMES} frames" in status.inner_html(), 120, 0.5,
                       "the replay to reach the last frame")
            probe = probe_for(server)
            try:
                wait_until(lambda: probe.eval("app.viewer.stats().applied") > 0, 60, 0.5,
                           "the page to apply a replayed mesh")
                probe.run(f"from face3d_nb.live.recording import Recorder\n"
                          f"_again = Recorder({str(again)!r})\n"
                          f"app.replayer.subscribe(_again)\n"
                          f"app.replayer.speed = 4.0\n"
                          f"app.replayer.restart()")
                wait_until(lambda: probe.eval("app.replayer.finished.is_set() and app.replayer.played") >= 2 * FRAMES,
                           60, 0.25, "the second replay to finish")
                probe.run("_again.close()")
                # The face's mesh (the scene's last child) has the medium level's vertices.
                assert probe.eval("app.viewer.scene.children[-1].geometry.attributes['position'].array.shape[0]") \
                    == probe.eval("len(app.replayer.levels.detail('medium').vertices)")
            finally:
                probe.close()
            assert not [url for url in blocked if "fontawesome" not in url], blocked  # nothing from elsewhere
            canvas = page.locator(".face3d-viewer canvas").first
            shot = tmp_path / "replay.png"
            canvas.screenshot(path=str(shot))
        finally:
            page.close()
    _, want = read_recording(recording)
    _, got = read_recording(again)
    assert len(want) == FRAMES and [f.seq for f in got] == [f.seq for f in want]
    for a, b in zip(want, got):
        assert a.frame_shape == b.frame_shape and len(a.faces) == len(b.faces)
        for fa, fb in zip(a.faces, b.faces):
            assert fa.track_id == fb.track_id and fa.pose == fb.pose
            assert np.array_equal(fa.params, fb.params) and np.array_equal(fa.roi_box, fb.roi_box)
    picture = cv2.imread(str(shot))
    # The mesh is drawn: the view is not one flat background colour.
    assert picture is not None and picture.reshape(-1, 3).std(axis=0).max() > 10
