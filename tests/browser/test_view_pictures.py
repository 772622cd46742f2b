"""Every view of a face, drawn by a real page, against the kernel's own numpy rendering of it.

Voila serves a notebook showing two FaceViewers of the mean-shape model, one per mesh transport,
each as wide as the image so one view pixel is one image pixel over the frame. The kernel shows them
the faces of a shared image (its upstream reference parameters) with the image as the frame; it
sends the frame itself (no camera here). Headless Chromium (software WebGL) draws them; each view is
checked against :func:`~face3d_nb.core.raster.rasterize` of the same mesh:

- overlay: the shaded face, lit flat green, covers the mesh's projected triangles (IoU >= 0.98);
- camera texture over the frame: the face repaints the frame with itself (mean error < 3 levels);
- PNCC and depth: the colours of a numpy rendering of the same mesh (mean error < 3 levels).

Screenshots of every view go to ``$FACE3D_SCREENSHOTS`` when set (run with -s for the figures).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from pages import SHOTS, shared_playwright
from test_transport import screenshot

from face3d_nb.core.pipeline import load_morphable_model
from face3d_nb.core.raster import rasterize
from face3d_nb.testing.assets import ASSETS, REFERENCE
from face3d_nb.testing.browser import (
    NotebookServer,
    chromium_missing,
    launch_chromium,
    probe_for,
    wait_until,
    write_notebook,
)
from face3d_nb.view.view_modes import depth_range, pncc_colors
from face3d_nb.view.view_transform import to_landmark_frame

pytestmark = [pytest.mark.real_assets, pytest.mark.skipif(chromium_missing() is not None, reason=str(chromium_missing()))]

IMAGE, NAME = ASSETS / "3ddfa_v2" / "images" / "JianzhuGuo.jpg", "JianzhuGuo"
TRANSPORTS = ("positions", "coefficients")

KERNEL = """
import cv2
import numpy as np
import ipywidgets as widgets
from IPython.display import display
from face3d_nb.models.store import ModelStore
from face3d_nb.core.detail import DetailLevels
from face3d_nb.core.pipeline import load_morphable_model
from face3d_nb.testing.results import posed_face, result_of
from face3d_nb.widgets.viewer import FaceViewer

image = cv2.imread({image!r})
model = load_morphable_model(ModelStore().resolve())
reference = np.load({reference!r})
faces = [posed_face(model, p, roi, i + 1)
         for i, (p, roi) in enumerate(zip(reference["params"], reference["roi_boxes"]))]
result = result_of(faces, image.shape[:2], frame=image)
viewers = {{}}
for transport in {transports!r}:
    viewer = FaceViewer(DetailLevels(model), transport=transport, width=image.shape[1], height=image.shape[0])
    viewer.renderer.add_class(f"view-{{transport}}")
    viewers[transport] = viewer

def show(**traits):
    for viewer in viewers.values():
        for name, value in traits.items():
            setattr(viewer, name, value)
        viewer.show(result)

def idle():
    return all(v.active_transport == k and not m.flights and m.pending is None
               for k, v in viewers.items() for m in v._pool.meshes) and all(v._pool.meshes for v in viewers.values())

display(widgets.HBox([v.renderer for v in viewers.values()]))
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory, real_store):
    work = tmp_path_factory.mktemp("views")
    code = KERNEL.format(image=str(IMAGE), reference=str(REFERENCE / f"{NAME}.npz"), transports=TRANSPORTS)
    with NotebookServer(write_notebook(work / "views.ipynb", code), work, real_store.home) as running:
        yield running


@pytest.fixture(scope="module")
def page(server):
    browser = launch_chromium(shared_playwright())
    known = set(server.connection_files())
    page = browser.new_page(viewport={"width": 2 * 420 + 100, "height": 700})
    page.goto(server.url, timeout=120_000)
    for transport in TRANSPORTS:
        page.wait_for_selector(f".view-{transport} canvas", timeout=120_000)
    probe = probe_for(server, known, 60)
    wait_until(lambda: probe.eval("viewers['coefficients'].link.gpu_decode") == "ok", 60, 0.25, "the GPU check")
    yield page, probe
    probe.close()
    browser.close()


@pytest.fixture(scope="module")
def scene(real_store):
    """The kernel's side: the frame and each face's mesh in image pixels, in its landmark frame."""
    model = load_morphable_model(real_store.resolve())
    reference = np.load(REFERENCE / f"{NAME}.npz")
    meshes = []
    for p, roi in zip(reference["params"], reference["roi_boxes"]):
        landmarks = model.landmarks_3d(p, roi)
        meshes.append((to_landmark_frame(model.vertices(p, roi), model.landmarks, landmarks), landmarks))
    return cv2.imread(str(IMAGE)), model, meshes


def drawn(page, probe, name: str, timeout: float = 90.0, **traits) -> dict[str, np.ndarray]:
    """Each transport's screenshot of the view with ``traits``, once every update is acknowledged and
    three screenshots in a row, half a second apart, are identical (the frame has arrived)."""
    probe.run(f"show(**{traits!r})")
    wait_until(lambda: probe.eval("idle()"), timeout, 0.25, "the page to acknowledge every update")
    shots: list[dict[str, np.ndarray]] = []

    def steady():
        shots.append({t: screenshot(page, t) for t in TRANSPORTS})
        recent = shots[-3:]
        return len(recent) == 3 and all(np.array_equal(s[t], recent[0][t]) for s in recent for t in TRANSPORTS)

    wait_until(steady, timeout, 0.5, "the views to settle")
    if SHOTS:
        for transport, shot in shots[-1].items():
            cv2.imwrite(str(Path(SHOTS) / f"view-{name}-{transport}.png"), shot.astype(np.uint8))
    return shots[-1]


def render(scene, attributes=None):
    """The numpy rendering of every face: the raster of their meshes, nearest surface first."""
    image, model, meshes = scene
    vertices = np.concatenate([v for v, _ in meshes])
    triangles = np.concatenate([model.triangles + i * model.n_vertices for i in range(len(meshes))])
    values = None if attributes is None else np.concatenate(attributes)
    return rasterize(vertices, triangles, image.shape[:2], values)


def inner(mask: np.ndarray) -> np.ndarray:
    """The mask less two pixels at its edges, where rasterisers may round either way."""
    return cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)


def test_overlay_covers_the_projected_mesh(page, scene):
    shots = drawn(*page, "overlay", view="shaded", over_frame=True, color="#00ff00", ambient_intensity=1.0,
                  key_intensity=0.0, point_intensity=0.0, opacity=1.0)
    expected = render(scene).mask
    for transport, shot in shots.items():
        # Flat green: ambient light only, on a mesh the colour of nothing in the photo.
        face = (shot[:, :, 1] > 230) & (shot[:, :, 0] < 30) & (shot[:, :, 2] < 30)
        iou = (face & expected).sum() / (face | expected).sum()
        print(f"overlay {transport}: IoU {iou:.4f} over {expected.sum()} pixels")
        assert iou >= 0.98, f"{transport}: the overlay's face mask has IoU {iou:.4f} with the numpy raster"


def test_camera_texture_repaints_the_frame_with_itself(page, scene):
    image = scene[0].astype(np.int16)
    face = render(scene).mask
    outside = ~cv2.dilate(face.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    shots = drawn(*page, "texture", view="texture", over_frame=True, opacity=1.0)
    for transport, shot in shots.items():
        # The frame quad shows the frame itself (a JPEG of it) ...
        assert np.abs(shot - image)[outside].mean() < 3, transport
    # ... so without it only the face shows the frame: each pixel the frame's pixel beneath it.
    _, probe = page
    probe.run("for v in viewers.values(): v.stage.frame_quad.visible = False")
    try:
        shots = drawn(*page, "texture-alone", view="texture", over_frame=True, opacity=1.0)
    finally:
        probe.run("for v in viewers.values(): v.stage.frame_quad.visible = True")
    mask = inner(face)
    for transport, shot in shots.items():
        error = np.abs(shot - image)[mask].mean()
        print(f"texture {transport}: mean error {error:.2f} levels over {mask.sum()} pixels")
        assert error < 3, f"{transport}: the camera texture differs from the frame by {error:.2f} levels"
        assert np.abs(shot - image)[outside].mean() > 20, f"{transport}: the frame is still drawn behind"


@pytest.mark.parametrize("view", ["pncc", "depth"])
def test_pncc_and_depth_match_a_numpy_rendering(page, scene, view):
    _, model, meshes = scene
    if view == "pncc":
        colors = [pncc_colors(model.mean) for _ in meshes]
    else:
        colors = []
        for vertices, landmarks in meshes:
            far, near = depth_range(landmarks)
            grey = np.clip((vertices[:, 2] - far) / (near - far), 0, 1)
            colors.append(np.repeat(grey[:, None], 3, axis=1))
    raster = render(scene, colors)
    # RGB in 0..1 -> the screenshot's BGR levels.
    expected = np.rint(raster.values[:, :, ::-1] * 255)
    mask = inner(raster.mask)
    shots = drawn(*page, view, view=view, over_frame=True, opacity=1.0)
    for transport, shot in shots.items():
        error = np.abs(shot - expected)[mask].mean()
        print(f"{view} {transport}: mean error {error:.2f} levels over {mask.sum()} pixels")
        assert error < 3, f"{transport}: the {view} view differs from the numpy rendering by {error:.2f} levels"


def test_points_pose_box_and_the_3d_views_draw(page, scene):
    """Dense points over the frame, the pose box and the free-orbit views draw something face-sized."""
    image = scene[0].astype(np.int16)
    face = render(scene).mask
    shots = drawn(*page, "points-pose", view="points", over_frame=True, pose_box=True, color="#ff00ff")
    for transport, shot in shots.items():
        magenta = (shot[:, :, 0] > 200) & (shot[:, :, 2] > 200) & (shot[:, :, 1] < 60)
        assert magenta[face].mean() > 0.3 and magenta[~face].mean() < 0.01, transport
        box = (np.abs(shot - [100, 220, 60]).max(axis=2) < 40) & ~face
        assert box.sum() > 200, f"{transport}: no pose box drawn"
    for view in ("texture", "depth", "pncc"):
        shots = drawn(*page, f"{view}-3d", view=view, over_frame=False, pose_box=False)
        for transport, shot in shots.items():
            background = np.abs(shot - shot[2, 2]).max(axis=2) < 8
            assert 0.1 < (~background).mean() < 0.9, f"{transport} {view} in 3D"
            assert not np.array_equal(shot, image[: shot.shape[0], : shot.shape[1]])
