"""The viewer's views (shaded, camera texture, depth, PNCC, points; over the frame or in 3D; pose box):
their numbers (pure numpy) and the kernel side of drawing them with each transport, without a browser
(what the kernel sends is observed on the widgets' traits and, for custom messages, through a
stubbed ``send``). The pictures a page draws are checked in tests/browser/test_view_pictures.py.
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from face3d_nb.live.events import FrameResult, TrackedFace
from face3d_nb.live.settings_file import load_settings
from face3d_nb.testing.assets import ASSETS
from face3d_nb.testing.media import face_picture
from face3d_nb.view.view_modes import (
    HEADER_ROWS,
    VIEWS,
    FaceFrame,
    Look,
    depth_range,
    frame_extent,
    frame_transform,
    pncc_colors,
    pose_box,
)
from face3d_nb.widgets.camera import FrameGrabber
from face3d_nb.widgets.controls import ControlPanel
from face3d_nb.widgets.viewer import FaceViewer


# -- the numbers ---------------------------------------------------------------------------------
def test_the_frame_transform_puts_pixel_centres_where_the_orthographic_camera_shows_them():
    height, width = 180, 320
    transform = frame_transform(height, width)
    right, top = frame_extent(height, width)
    corners = transform.apply(np.array([[-0.5, -0.5, 0], [width - 0.5, height - 0.5, 7]], np.float32))
    # The frame's outer edges are the camera's: its top-left corner up and left, y up in the view.
    np.testing.assert_allclose(corners[:, :2], [[-right, top], [right, -top]], atol=1e-6)
    assert corners[1, 2] == pytest.approx(7 / width)
    with pytest.raises(ValueError, match="1x1"):
        frame_transform(0, 10)


def test_a_face_frame_header_carries_exactly_what_its_uniforms_say():
    transform = frame_transform(360, 640)
    frame = FaceFrame("16777215:123456", (640, 360), transform, (-40.5, 210.25))
    header = frame.header()
    assert header.shape == (HEADER_ROWS, 3) and header.dtype == np.float32 and (header[:, 2] > 1e29).all()
    uniforms = frame.uniforms()
    assert tuple(header[0, :2]) == (16777215.0, 123456.0) == tuple(uniforms["frameName"])
    assert list(header[1, :2]) == uniforms["frameSize"] == [640.0, 360.0]
    np.testing.assert_allclose([*header[2, :2], header[3, 0]], uniforms["imageCenter"])
    assert header[3, 1] == pytest.approx(uniforms["imageScale"]) and list(header[4, :2]) == [-40.5, 210.25]
    assert FaceFrame("", (640, 360), transform, (0, 1)).tag_seq == (-1.0, -1.0)


def test_a_header_reads_back_as_its_frame():
    frame = FaceFrame("12:34", (320, 180), frame_transform(180, 320), (-5.5, 60.0))
    back = FaceFrame.from_header(frame.header())
    sent, read = frame.uniforms(), back.uniforms()
    # All exact but the scale, which float32 rounds.
    assert read.pop("imageScale") == pytest.approx(sent.pop("imageScale")) and read == sent and back.name == "12:34"
    assert FaceFrame.from_header(FaceFrame("", (8, 8), frame_transform(8, 8), (0, 1)).header()).name == ""


def test_depth_runs_from_behind_the_face_to_its_nearest_landmark():
    landmarks = np.zeros((68, 3), np.float32)
    landmarks[:, 0] = np.linspace(100, 300, 68)
    landmarks[:, 2] = np.linspace(0, 80, 68)
    far, near = depth_range(landmarks)
    assert near == 80 and far == pytest.approx(80 - 0.75 * 200)


def test_pncc_colours_span_each_axis():
    mean = np.random.default_rng(0).normal(size=(500, 3)) * [10, 20, 5]
    colors = pncc_colors(mean)
    np.testing.assert_allclose(colors.min(axis=0), 0) and np.testing.assert_allclose(colors.max(axis=0), 1)
    assert np.argmax(colors[:, 1]) == np.argmax(mean[:, 1])


@pytest.mark.real_assets
def test_pncc_colours_are_upstreams_ncc_code(real_reconstructor):
    ncc = np.load(ASSETS / "3ddfa_v2" / "configs" / "ncc_code.npy")
    np.testing.assert_allclose(pncc_colors(real_reconstructor.model.mean), ncc.T, atol=1e-6)


def test_the_pose_box_surrounds_the_face_and_turns_with_it(reconstructor, face_photo):
    [face] = reconstructor(face_photo)[:1]
    model = reconstructor.model
    box = pose_box(model, face.params, face.roi_box, face.landmarks)
    assert box.shape == (8, 3)
    centre = box.mean(axis=0)[:2]
    lo, hi = face.landmarks[:, :2].min(axis=0), face.landmarks[:, :2].max(axis=0)
    assert (lo < centre).all() and (centre < hi).all()
    # The front square (corners 4..7) is wider than the back one, and nearer (larger z).
    assert np.ptp(box[4:, 0]) > np.ptp(box[:4, 0]) and box[4:, 2].mean() > box[:4, 2].mean()


def test_a_look_must_be_a_view():
    assert Look().plain and not Look("depth").plain and not Look(over_frame=True).plain
    with pytest.raises(ValueError, match="view must be one of"):
        Look("uv")


# -- the viewer ------------------------------------------------------------------------------------
@pytest.fixture
def scene(reconstructor):
    """A result of one face with its frame (a generated picture), and the face's (params, vertices)."""
    picture = face_picture()
    [face] = reconstructor(picture)[:1]
    vertices = reconstructor.vertices(face)
    return FrameResult(seq=5, captured_at=time.time(), frame_shape=picture.shape[:2],
                       faces=(TrackedFace(1, face, vertices),), timings={}, detected=True, frame=picture)


@pytest.fixture(params=["positions", "coefficients"])
def viewer(request, reconstructor):
    """A viewer on one transport, a page that said hello, and the page link's messages kept."""
    v = FaceViewer(reconstructor.levels, transport=request.param)
    v.link.sent = []
    v.link.send = lambda content, buffers=None: v.link.sent.append((content, buffers))
    v.link._handle_message(v.link, {"type": "hello", "renderer": ""}, [])
    yield v
    v.close()


def frames_sent(viewer):
    return [(c["name"], b) for c, b in viewer.link.sent if c.get("type") == "frame"]


def frame_named(viewer, mesh):
    """The (tag, seq) the face mesh's last update names, as the page reads it."""
    if viewer.active_transport == "coefficients":
        return tuple(mesh.material.uniforms["frameName"]["value"])
    return tuple(mesh.position.array[-HEADER_ROWS, :2])


def test_the_default_look_sends_no_frame_and_no_header(viewer, scene):
    viewer.show(scene)
    [mesh] = viewer._pool.meshes
    assert frames_sent(viewer) == [] and not viewer.link.keep_frames and not viewer.link.headers
    if viewer.active_transport == "positions":
        assert mesh.position.array.shape == (len(scene.faces[0].vertices), 3) and mesh.material is None


@pytest.mark.parametrize("view", VIEWS)
def test_each_view_names_its_frame_and_the_kernel_sends_one_the_page_lacks(viewer, scene, view):
    viewer.view, viewer.over_frame = view, True
    assert viewer.link.keep_frames and viewer.renderer.camera is viewer.stage.image_camera
    viewer.show(scene)
    [mesh] = viewer._pool.meshes
    [(name, [jpeg])] = frames_sent(viewer)
    # The frame goes first, as a JPEG of the result's frame, and the update names it.
    decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == scene.frame.shape and np.abs(decoded.astype(int) - scene.frame).mean() < 3
    assert name == "0:1" and frame_named(viewer, mesh) == (0.0, 1.0)
    assert type(mesh.mesh).__name__ == ("Points" if view == "points" else "Mesh")
    assert f"#define VIEW {VIEWS.index(view)}\n" in mesh.material.vertexShader
    # Over the frame: the view takes the frame's shape, the camera spans its pixels.
    assert (viewer.renderer.width, viewer.renderer.height) == (480, 270)
    assert viewer.stage.image_camera.right == pytest.approx(0.5) and viewer.stage.frame_quad.visible
    if viewer.active_transport == "positions":
        assert viewer.link.headers == [[mesh.position, mesh.material]]
        assert ("pncc" in mesh.geometry.attributes) == (view == "pncc")
        assert (mesh.geometry.index is None) == (view == "points")
    # A frame the page has (the camera's) is named, not sent.
    viewer.link.sent.clear()
    viewer._pool.applied(mesh.flights[-1].seq)
    viewer.show(scene, "77:5")
    assert frames_sent(viewer) == [] and frame_named(viewer, mesh) == (77.0, 5.0)


def test_a_new_look_rebuilds_the_meshes_and_the_3d_view_comes_back(viewer, scene):
    viewer.show(scene)
    [first] = viewer._pool.meshes
    viewer.view = "depth"
    assert viewer._pool.meshes == [] and first.mesh not in viewer.scene.children
    viewer.show(scene)
    [mesh] = viewer._pool.meshes
    assert mesh.look == Look("depth") and mesh.mesh in viewer.scene.children
    viewer.view = "shaded"
    assert not viewer.link.keep_frames and viewer.renderer.camera is viewer.view_camera
    assert viewer.renderer.controls == [viewer.orbit] and (viewer.renderer.width, viewer.renderer.height) == (480, 480)


def test_opacity_and_the_pose_box_follow_their_traits(viewer, scene):
    viewer.view = "pncc"
    viewer.show(scene)
    [mesh] = viewer._pool.meshes
    viewer._pool.applied(mesh.flights[-1].seq)
    viewer.opacity = 0.4
    assert mesh.material.transparent and viewer.material.opacity == 0.4
    if viewer.active_transport == "coefficients":
        viewer._pool.applied(mesh.flights[-1].seq)  # the restyle re-sent the last update
    assert mesh.material.uniforms["opacity"]["value"] == 0.4
    with pytest.raises(Exception, match="opacity must be within"):
        viewer.opacity = 1.5
    assert not viewer.stage.pose_lines.visible
    viewer.pose_box = True
    viewer.show(scene)
    lines = viewer.stage.pose_lines
    assert lines.visible and lines.geometry.attributes["position"].array.shape == (24, 3)
    viewer.pose_box = False
    assert not lines.visible


def test_the_grabber_names_frames_by_its_page_tag():
    grabber = FrameGrabber()
    grabber.send = lambda content, buffers=None: None
    jpeg = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    grabber._handle_message(grabber, {"type": "frame", "page": "4711", "seq": 9, "captured_at": time.time() * 1000},
                            [jpeg])
    assert grabber.frame_name(9) == "4711:9"
    grabber._page = "not-a-number"
    assert grabber.frame_name(9) == ""
    grabber.close()


@pytest.mark.parametrize("page", ["²", "١٢", "0", str(2 ** 24)])
def test_a_page_id_that_is_no_tag_names_no_frame(page):
    grabber = FrameGrabber()
    grabber._page = page  # what a page sent (untrusted): superscripts, other scripts' digits, out of range
    assert grabber.frame_name(3) == ""
    grabber.close()


def test_the_view_settings_and_controls(tmp_path, viewer):
    path = tmp_path / "app.yaml"
    path.write_text("view: pncc\nover_frame: true\n")
    settings = load_settings(path)
    assert (settings.view, settings.over_frame) == ("pncc", True)
    path.write_text("over_frame: 1\n")
    with pytest.raises(ValueError, match="over_frame: expected a boolean"):
        load_settings(path)
    panel = ControlPanel(viewer)
    [view] = [w for group in panel.children for w in group.children if "face3d-view" in w._dom_classes]
    view.value = "points"
    assert viewer.view == "points"
    panel.close()
