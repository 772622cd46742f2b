"""The live app draws every update over, and textured by, the very frame its parameters came from.

Chromium's fake camera plays a coded clip: the test video with each frame ``i`` shifted right by
``24 * (3 i mod 7)`` pixels (so the face jumps between any two frames less than 7 apart) and stamped
with ``i`` in its top-right corner (:mod:`face3d_nb.testing.frame_code`). The app is served with a
settings file: no smoothing (each mesh is its own frame's), 640 px frames, the view over the frame.
The kernel notes the mesh of every frame it processed, by the frame's code. Then, screenshot after
screenshot of the live view, the code the page drew in the corner (the frame quad) names frame B:

- camera texture: the whole picture, face included, is clip frame B (the face is painted with the
  frame of its parameters: one from another frame would put another frame's face there);
- overlay: the flat green face covers where the kernel's mesh of frame B projects.

Once per transport.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from pages import PAGE_TIMEOUT_MS, SHOTS, VIEWPORT, requires_browser, shared_playwright

from face3d_nb.testing import frame_code
from face3d_nb.testing.assets import VIDEO
from face3d_nb.testing.browser import KernelProbe, Server, app_page, launch_chromium, wait_until, write_y4m

pytestmark = [pytest.mark.real_assets, requires_browser]

WIDTH, HEIGHT = 640, 360
SHOTS_PER_VIEW = 24

SETTINGS = """\
smoothing: 0
input_size: 640
view: texture
over_frame: true
transport: {transport}
"""

# Runs in the app's kernel: the mesh of each processed frame, by the code the frame carries.
RECORD = """
import numpy as np
from face3d_nb.core.raster import rasterize
from face3d_nb.live.events import FrameResult
from face3d_nb.testing import frame_code
meshes = {}
def note(event):
    if isinstance(event, FrameResult) and event.frame is not None and event.faces:
        meshes.setdefault(frame_code.read(event.frame), []).append((event.detail, event.faces[0].vertices[:, :2].copy()))
app.engine.subscribe(note)
def centroids(code, width):
    shape = app._latest.frame_shape
    out = []
    for detail, xy in meshes.get(code, []):
        triangles = app.viewer.levels.detail(detail).triangles
        mask = rasterize(np.column_stack([xy, np.zeros(len(xy))]), triangles, shape).mask
        ys, xs = np.nonzero(mask)
        out.append([float(xs.mean()) * width / shape[1], float(ys.mean()) * width / shape[1]])
    return out
def box(code, width):
    xy = np.concatenate([xy for _, xy in meshes.get(code, [])] or [np.zeros((0, 2))]) * width / app._latest.frame_shape[1]
    return [int(v) for v in (*xy.min(axis=0), *xy.max(axis=0))] if len(xy) else None
"""


def shift(index: int) -> int:
    return 24 * (3 * index % 7)


def coded(frame: np.ndarray, index: int) -> np.ndarray:
    return frame_code.stamp(np.roll(frame, shift(index), axis=1), index)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """The coded clip's y4m, and its frames as the camera delivers them (through 4:2:0 and back)."""
    if not VIDEO.is_file():
        pytest.skip(f"test video not found at {VIDEO}")
    frames = []

    def keep(frame, index):
        out = coded(frame, index)
        yuv = cv2.cvtColor(out, cv2.COLOR_BGR2YUV_I420)
        frames.append(cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR_I420))
        return out

    path = write_y4m(VIDEO, tmp_path_factory.mktemp("clip") / "coded.y4m", WIDTH, HEIGHT, transform=keep)
    return path, frames


@pytest.fixture(scope="module")
def browser(clip):
    browser = launch_chromium(shared_playwright(), clip[0])
    yield browser
    browser.close()


def canvas_shot(page) -> np.ndarray:
    png = page.locator(".face3d-viewer canvas").first.screenshot()
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR).astype(np.int16)


def shots(page, count: int, name: str) -> list[tuple[int, np.ndarray]]:
    """``count`` screenshots of the live view, each with the code of the frame drawn in its corner
    (screenshots whose corner has no readable code, a frame not there yet, are left out)."""
    out = []
    for i in range(count):
        shot = canvas_shot(page)
        code = frame_code.read(shot.astype(np.uint8))
        if code is not None:
            out.append((code, shot))
        if SHOTS and i == 0:
            cv2.imwrite(f"{SHOTS}/exact-{name}.png", shot.astype(np.uint8))
        page.wait_for_timeout(150)
    assert len(out) >= count * 0.8, f"{count - len(out)} of {count} screenshots had no readable frame code"
    return out


@pytest.mark.parametrize("transport", ["positions", "coefficients"])
def test_every_update_is_drawn_with_its_own_frame(real_store, browser, clip, tmp_path, transport):
    config = tmp_path / "settings.yaml"
    config.write_text(SETTINGS.format(transport=transport))
    frames = clip[1]
    with (Server("voila", tmp_path / "server", real_store.home, config=config) as server,
          app_page(browser, server, VIEWPORT, PAGE_TIMEOUT_MS) as (page, probe)):
        probe.run(RECORD)
        wait_until(lambda: probe.eval("app.viewer.stats().applied") >= 30, 240, 0.5, "30 mesh updates")
        assert probe.eval("(app.viewer.active_transport, app.viewer.view, app.viewer.over_frame)") == (
            transport, "texture", True)
        check_texture(shots(page, SHOTS_PER_VIEW, f"texture-{transport}"), frames, probe)
        probe.run("v = app.viewer; v.view = 'shaded'; v.color = '#00ff00'; v.ambient_intensity = 1.0; "
                  "v.key_intensity = 0.0; v.point_intensity = 0.0")
        wait_until(lambda: probe.eval("app.viewer.stats().applied") >= 60, 240, 0.5, "30 more updates")
        check_overlay(shots(page, SHOTS_PER_VIEW, f"overlay-{transport}"), probe)


def check_texture(drawn: list[tuple[int, np.ndarray]], frames: list[np.ndarray], probe: KernelProbe) -> None:
    """Where the face is, each picture is the clip frame its code names, and no other frame near it."""
    for code, shot in drawn:
        size = (shot.shape[1], shot.shape[0])
        box = probe.eval(f"box({code}, {shot.shape[1]})")
        assert box, f"the kernel processed no frame coded {code}"
        x0, y0, x1, y1 = box
        face = np.s_[max(0, y0):y1, max(0, x0):x1]
        errors = {k: np.abs(shot - cv2.resize(frames[k], size, interpolation=cv2.INTER_AREA))[face].mean()
                  for k in range(max(0, code - 6), min(len(frames), code + 7))}
        print(f"frame {code}: mean error {errors[code]:.2f} levels, nearest other frame "
              f"{min(e for k, e in errors.items() if k != code):.2f}")
        assert errors[code] < 6 and errors[code] == min(errors.values()), (code, errors)


def check_overlay(drawn: list[tuple[int, np.ndarray]], probe: KernelProbe) -> None:
    """The green face lies where the kernel's mesh of the frame the corner names projects."""
    faces = 0
    for code, shot in drawn:
        face = (shot[:, :, 1] > 200) & (shot[:, :, 0] < 60) & (shot[:, :, 2] < 60)
        if face.sum() < 500:
            continue  # the face of the frame before was lost: the view hides it, as it should
        faces += 1
        ys, xs = np.nonzero(face)
        expected = probe.eval(f"centroids({code}, {shot.shape[1]})")
        assert expected, f"the kernel processed no frame coded {code}"
        distance = min(np.hypot(xs.mean() - x, ys.mean() - y) for x, y in expected)
        print(f"frame {code}: the face is {distance:.1f} px from its mesh's place")
        # Another frame's mesh is at least 24 * 0.75 = 18 px off along x.
        assert distance < 5, f"frame {code}: the overlay is {distance:.1f} px from the mesh of its frame"
    assert faces >= len(drawn) / 2, f"a face in only {faces} of {len(drawn)} pictures"
