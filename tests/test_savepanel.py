"""The app's save buttons, Python side: mesh files that load in trimesh with the right counts and
camera colours, the first face's UV texture, and a recording delivered when it stops.

No browser here: the downloader's ``send`` is replaced by a list (downloads in Chromium are
tested in tests/browser).
"""

import dataclasses
import io

import cv2
import numpy as np
import pytest
import pythreejs as three

from face3d_nb.core.uv_texture import uv_texture
from face3d_nb.live.events import FrameResult, TrackedFace
from face3d_nb.live.recording import read_recording
from face3d_nb.testing.media import face_picture
from face3d_nb.testing.polling import wait_for
from face3d_nb.widgets.save_panel import SavePanel, result_mesh_file, result_uv_texture

trimesh = pytest.importorskip("trimesh")


@pytest.fixture(scope="module")
def photo():
    return face_picture(640, 360, ((0.25, 0.5), (0.75, 0.5)))


def _result(reconstructor, photo, detail, seq=0):
    faces = reconstructor(photo)
    return FrameResult(seq=seq, captured_at=100.0 + seq / 30, frame_shape=photo.shape[:2],
                       faces=tuple(TrackedFace(i + 1, f, reconstructor.vertices(f, detail)) for i, f in enumerate(faces)),
                       timings={}, detected=True, frame=photo, detail=detail)


@pytest.mark.parametrize("detail", ["full", "medium", "low"])
@pytest.mark.parametrize("fmt", ["obj", "ply"])
def test_mesh_files_load_in_trimesh_with_the_right_counts_and_colours(reconstructor, photo, detail, fmt):
    result = _result(reconstructor, photo, detail)
    level = reconstructor.levels.detail(detail)
    data = result_mesh_file(result, level.triangles, fmt)
    # maintain_order: trimesh would otherwise drop the few landmark vertices no triangle uses at lower levels.
    mesh = trimesh.load(io.BytesIO(data), file_type=fmt, process=False, maintain_order=True)
    n_faces = len(result.faces)
    assert n_faces == 2
    assert len(mesh.vertices) == n_faces * len(level.vertices)
    assert len(mesh.faces) == n_faces * len(level.triangles)
    first = result.faces[0].vertices
    np.testing.assert_allclose(mesh.vertices[:3, 0], first[:3, 0], atol=0.01)
    np.testing.assert_allclose(mesh.vertices[:3, 1], photo.shape[0] - first[:3, 1], atol=0.01)  # y up
    x, y = np.round(first[:, :2]).astype(int).T
    want = photo[np.clip(y, 0, photo.shape[0] - 1), np.clip(x, 0, photo.shape[1] - 1), ::-1]
    got = np.asarray(mesh.visual.vertex_colors)[: len(first), :3]
    assert np.abs(got.astype(int) - want).max() <= 1  # OBJ stores colours as 0..1 with 3 decimals


def test_panel_delivers_meshes_and_a_recording(reconstructor, photo):
    renderer = three.Renderer(scene=three.Scene(), camera=three.PerspectiveCamera())
    latest = [None]
    subscribers = []

    def subscribe(callback):
        subscribers.append(callback)
        return lambda: subscribers.remove(callback)

    panel = SavePanel(renderer, lambda: latest[0], lambda d: reconstructor.levels.detail(d).triangles, subscribe,
                      header={"arch": "mb05"})
    sent = []
    panel.downloader.send = lambda content, buffers=None: sent.append((content, [bytes(b) for b in buffers or []]))
    try:
        panel.buttons["obj"].click()  # made on a thread of its own, off the kernel's main thread
        wait_for(lambda: panel.downloader.message == "no face to save yet", 30)
        assert sent == []
        latest[0] = _result(reconstructor, photo, "low")
        panel.buttons["ply"].click()
        wait_for(lambda: sent, 30)
        (content, (data,)), = sent
        assert content["name"].endswith(".ply") and content["mime"] == "application/ply"
        assert data == result_mesh_file(latest[0], reconstructor.levels.detail("low").triangles, "ply")

        panel.buttons["record"].value = True
        assert panel.recording and len(subscribers) == 1
        for seq in range(3):
            subscribers[0](_result(reconstructor, photo, "low", seq))
        panel.buttons["record"].value = False
        assert not panel.recording and subscribers == []
        content, (data,) = sent[-1]
        assert content["name"].startswith("face3d-session-") and content["name"].endswith(".jsonl")
        header, frames = read_recording(panel.recording_path)
        assert header["arch"] == "mb05" and [f.seq for f in frames] == [0, 1, 2]
        assert data == panel.recording_path.read_bytes()
        panel.buttons["screenshot"].click()
        assert sent[-1][0]["type"] == "screenshot" and sent[-1][0]["name"].endswith(".png")
    finally:
        folder = panel.recording_path.parent
        panel.close()
    assert not folder.exists()


def _layout(reconstructor):
    """A UV layout for any model: its mean face seen from the front, squeezed into 0..1."""
    xy = reconstructor.model.mean[:, :2]
    return (xy - xy.min(axis=0)) / np.ptp(xy, axis=0)


@pytest.mark.parametrize("detail", ["full", "low"])
def test_the_uv_texture_is_the_first_face_unwrapped_from_the_frame(reconstructor, photo, detail):
    result = _result(reconstructor, photo, detail)
    level = reconstructor.levels.detail(detail)
    uv = _layout(reconstructor)[level.vertices]
    png = result_uv_texture(result, level.triangles, uv)
    texture = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert texture.shape == (512, 512, 3)
    np.testing.assert_array_equal(texture, uv_texture(photo, result.faces[0].vertices, level.triangles, uv))
    assert not np.array_equal(texture, uv_texture(photo, result.faces[1].vertices, level.triangles, uv))
    with pytest.raises(ValueError, match="no camera frame"):
        result_uv_texture(dataclasses.replace(result, frame=None), level.triangles, uv)


def test_the_uv_texture_button_delivers_a_png_or_says_what_is_missing(reconstructor, photo):
    renderer = three.Renderer(scene=three.Scene(), camera=three.PerspectiveCamera())
    latest = [None]
    asked = []

    def uv(detail):
        asked.append(detail)
        return _layout(reconstructor)[reconstructor.levels.detail(detail).vertices]

    def triangles(detail):
        return reconstructor.levels.detail(detail).triangles

    plain = SavePanel(renderer, lambda: latest[0], triangles, lambda callback: lambda: None)
    panel = SavePanel(renderer, lambda: latest[0], triangles, lambda callback: lambda: None, uv=uv)
    sent = []
    panel.downloader.send = lambda content, buffers=None: sent.append((content, [bytes(b) for b in buffers or []]))
    try:
        assert "uv" not in plain.buttons and panel.buttons["uv"].description == "Save UV texture"
        panel.buttons["uv"].click()  # made on a thread of its own, off the kernel's main thread
        wait_for(lambda: panel.downloader.message == "no face to save yet", 30)
        latest[0] = dataclasses.replace(_result(reconstructor, photo, "medium"), frame=None)
        panel.buttons["uv"].click()
        wait_for(lambda: "no camera frame" in panel.downloader.message, 30)
        assert sent == [] and asked == []
        latest[0] = _result(reconstructor, photo, "medium")
        panel.buttons["uv"].click()
        wait_for(lambda: sent, 30)
        (content, (data,)), = sent
        assert content["name"].startswith("face3d-uv-") and content["name"].endswith(".png")
        assert content["mime"] == "image/png" and asked == ["medium"]
        assert data == result_uv_texture(latest[0], triangles("medium"), uv("medium"))
    finally:
        plain.close()
        panel.close()
