"""The 3D view: fitting real face meshes to the view and its triangle index, and the kernel side of
the mesh pacing: the position transport's, and the protocol both transports share, driven through
the same tests (the coefficient transport's own side is in test_gpudecode.py).

No browser here: the page's acknowledgement is delivered as the page sends it (a ``version``
state update through ``set_state``), and what the kernel sends is observed on the widgets' traits
and, for custom messages, through a stubbed ``send``.
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
import traitlets

from face3d_nb.live.events import FrameResult, TrackedFace
from face3d_nb.testing.assets import IMAGES
from face3d_nb.testing.media import face_picture
from face3d_nb.view.view_transform import fit_faces, to_landmark_frame, view_index
from face3d_nb.widgets.viewer import FaceViewer


@pytest.fixture
def meshes(request, reconstructor):
    """(face, dense mesh (V, 3) image px): "emma" one face, "trump_hillary" two; from the real photos
    for tests marked real_assets, else from generated pictures."""
    if request.node.get_closest_marker("real_assets"):
        pictures = {name: cv2.imread(str(IMAGES[name])) for name in ("emma", "trump_hillary")}
    else:
        pictures = {"emma": face_picture(), "trump_hillary": face_picture(centres=((0.25, 0.5), (0.75, 0.5)))}
    out = {}
    for name, count in (("emma", 1), ("trump_hillary", 2)):
        faces = reconstructor(pictures[name])
        assert len(faces) >= count
        out[name] = [(face, reconstructor.vertices(face)) for face in faces[:count]]
    return out


def result(faces, captured_at=None, detail="full"):
    """A FrameResult carrying ``faces`` [(track_id, (face, vertices))]."""
    return FrameResult(seq=0, captured_at=time.time() if captured_at is None else captured_at,
                       frame_shape=(480, 640), faces=tuple(TrackedFace(t, f, v) for t, (f, v) in faces),
                       timings={}, detected=True, frame=None, detail=detail)


@pytest.fixture
def viewer(reconstructor):
    v = FaceViewer(reconstructor.levels, max_faces=2)
    yield v
    v.close()


def deformed(vertices, k):
    """``vertices`` with the chin pushed forward by ``k`` px: a change the view transform cannot undo."""
    out = vertices.copy()
    out[:, 2] += np.float32(k) * (out[:, 1] - out[:, 1].min()) / np.ptp(out[:, 1])
    return out


def sends(mesh):
    """Count the position arrays the kernel sends for ``mesh`` (each reassignment is one message)."""
    mesh.sends = []
    mesh.position.observe(lambda change: mesh.sends.append(change["new"]), "array")
    return mesh


def framed(face, vertices, model):
    """What the position transport sends for one face: its mesh in its landmark frame, fitted to the view."""
    return fit_faces([face.landmarks]).apply(to_landmark_frame(vertices, model.landmarks, face.landmarks))


def acknowledge(mesh):
    """What the page does once it has applied an array: sync the attribute's bumped ``version``."""
    mesh.position.set_state({"version": mesh.position.version + 1})


# -- pure mesh maths ----------------------------------------------------------------------------
@pytest.mark.real_assets
def test_fit_centres_and_fits_the_faces(meshes):
    [(face, emma)] = meshes["emma"]
    view = fit_faces([face.landmarks]).apply(emma)
    lo, hi = view.min(axis=0), view.max(axis=0)
    assert view.dtype == np.float32 and view.flags.c_contiguous
    # Framed from the landmarks alone, the whole mesh (forehead included) is centred and fits.
    np.testing.assert_allclose((lo + hi)[:2] / 2, 0, atol=0.03)
    assert max(hi[0] - lo[0], hi[1] - lo[1]) == pytest.approx(1.0, rel=0.05)
    # y is flipped to point up: the forehead (smallest image y) ends up on top.
    top = np.argmin(emma[:, 1])
    assert view[top, 1] == pytest.approx(hi[1])


@pytest.mark.real_assets
def test_two_faces_keep_their_layout(meshes):
    (face_a, a), (face_b, b) = meshes["trump_hillary"]
    transform = fit_faces([face_a.landmarks, face_b.landmarks])
    va, vb = transform.apply(a), transform.apply(b)
    # Same scale for both, so the gap between them is the image's gap.
    gap_image = a[:, 0].mean() - b[:, 0].mean()
    gap_view = va[:, 0].mean() - vb[:, 0].mean()
    assert gap_view == pytest.approx(gap_image * transform.scale, rel=1e-4)
    assert np.concatenate([va, vb])[:, :2].max() == pytest.approx(0.5, abs=0.03)


def test_landmark_frame_is_the_landmarks_own(meshes, reconstructor):
    # MorphableModel puts each decoded mesh's own minimum z at 0; the landmark frame is known
    # without decoding: the mesh's landmark vertices land exactly on the face's landmarks.
    [(face, emma)] = meshes["emma"]
    model = reconstructor.levels.model("full")
    moved = to_landmark_frame(emma, model.landmarks, face.landmarks)
    np.testing.assert_allclose(moved[model.landmarks], face.landmarks, atol=1e-3)
    np.testing.assert_array_equal(moved[:, :2], emma[:, :2])


@pytest.mark.real_assets
def test_the_view_index_turns_front_faces_to_the_viewer(meshes, reconstructor):
    [(face, emma)] = meshes["emma"]
    index = view_index(reconstructor.triangles, len(emma))
    assert index.dtype == np.uint32 and index.shape == (3 * len(reconstructor.triangles),)
    view = fit_faces([face.landmarks]).apply(emma)
    # Counter-clockwise seen from the front (three.js's front faces): the triangles facing the
    # viewer, around the nose tip and the cheeks, have normals towards +z once y is flipped up.
    a, b, c = (view[index.reshape(-1, 3)[:, k]] for k in range(3))
    normals = np.cross(b - a, c - a)
    frontmost = (a[:, 2] + b[:, 2] + c[:, 2]) > 3 * np.quantile(view[:, 2], 0.9)
    assert frontmost.sum() > 100 and (normals[frontmost, 2] > 0).mean() > 0.95


def test_the_view_index_rejects_bad_triangles():
    with pytest.raises(ValueError, match="indices below 3"):
        view_index(np.array([[0, 1, 3]]), 3)
    with pytest.raises(ValueError, match="indices below 3"):
        view_index(np.array([0, 1, 2]), 3)
    with pytest.raises(ValueError, match="at least one"):
        fit_faces([])


# -- pacing -----------------------------------------------------------------------------------
def test_updates_wait_for_the_acknowledgement_and_the_newest_wins(viewer, meshes, reconstructor):
    [emma] = meshes["emma"]
    viewer.show(result([(1, emma)], captured_at=100.0))
    [mesh] = viewer._pool.meshes
    sends(mesh)
    # Creating the mesh carried the first positions: it is in flight until the page says otherwise.
    shifted = [(emma[0], deformed(emma[1], d)) for d in (1, 2, 3)]
    for i, face in enumerate(shifted):
        viewer.show(result([(1, face)], captured_at=101.0 + i))
    assert mesh.sends == []
    acknowledge(mesh)
    # Only the newest waiting mesh goes out, and it is exactly what show() was given (framed).
    assert len(mesh.sends) == 1
    expected = framed(*shifted[-1], reconstructor.levels.model("full"))
    np.testing.assert_array_equal(mesh.sends[0], expected)
    acknowledge(mesh)
    assert len(mesh.sends) == 1  # nothing waiting, nothing sent
    viewer.show(result([(1, emma)]))
    assert len(mesh.sends) == 2  # idle: sent at once
    viewer.show(result([(1, shifted[0])]))
    viewer.show(result([(1, shifted[1])]))
    assert len(mesh.sends) == 2  # never two in flight
    stats = viewer.stats()
    assert stats.applied == 2 and stats.meshes == 1 and stats.lost == 0
    # Capture-to-acknowledgement latency, from the captured_at of the mesh that was acknowledged.
    assert stats.latency_p95 > 1000 * (time.time() - 104.0) - 1000


def test_an_update_never_acknowledged_is_given_up(viewer, meshes):
    face, vertices = meshes["emma"][0]
    viewer.ack_timeout = 0.05
    viewer.show(result([(1, (face, vertices))]))
    [mesh] = viewer._pool.meshes
    sends(mesh)
    viewer.show(result([(1, (face, deformed(vertices, 1)))]))
    assert mesh.sends == []
    time.sleep(0.1)
    viewer.show(result([(1, (face, deformed(vertices, 2)))]))
    assert len(mesh.sends) == 1 and viewer.stats().lost == 1


def test_an_unchanged_mesh_is_not_sent_and_not_waited_for(viewer, meshes):
    face, vertices = meshes["emma"][0]
    viewer.show(result([(1, (face, vertices))]))
    [mesh] = viewer._pool.meshes
    sends(mesh)
    acknowledge(mesh)
    # Equal arrays are not synced by traitlets, so no acknowledgement would ever come for them.
    viewer.show(result([(1, (face, vertices.copy()))]))
    assert mesh.sends == [] and not mesh.flights
    viewer.show(result([(1, (face, deformed(vertices, 1)))]))
    assert len(mesh.sends) == 1


def test_faces_get_their_own_meshes_and_lost_tracks_are_hidden(viewer, meshes):
    a, b = meshes["trump_hillary"]
    [c] = meshes["emma"]
    viewer.show(result([(1, a), (2, b), (3, c)]))
    assert len(viewer._pool.meshes) == 2  # max_faces
    assert [m.track_id for m in viewer._pool.meshes] == [1, 2]
    assert all(m.mesh in viewer.scene.children for m in viewer._pool.meshes)
    viewer.show(result([(2, b)]))
    first, second = viewer._pool.meshes
    assert first.track_id is None and not first.mesh.visible and second.mesh.visible
    # A new track reuses the free mesh; it shows again once its positions are sent.
    acknowledge(first)
    viewer.show(result([(2, b), (5, c)]))
    assert first.track_id == 5 and first.mesh.visible
    assert viewer.stats().meshes == 2
    viewer.show(result([]))
    assert viewer.stats().meshes == 0 and not any(m.mesh.visible for m in viewer._pool.meshes)


def test_faces_without_vertices_are_skipped(viewer, meshes):
    [(face, _)] = meshes["emma"]
    viewer.show(result([(1, (face, None))]))
    assert viewer._pool.meshes == []


# -- appearance ----------------------------------------------------------------------------------
def test_appearance_traits_drive_the_scene(viewer):
    viewer.color = "#3366CC"
    viewer.wireframe = True
    viewer.ambient_intensity, viewer.key_intensity, viewer.point_intensity = 0.1, 1.5, 0.0
    assert viewer.material.color == "#3366cc" and viewer.material.wireframe
    assert (viewer.ambient.intensity, viewer.key_light.intensity, viewer.point_light.intensity) == (0.1, 1.5, 0.0)
    viewer.light_azimuth, viewer.light_elevation = 90.0, 0.0
    np.testing.assert_allclose(viewer.key_light.position, (3, 0, 0), atol=1e-9)
    viewer.light_elevation = 90.0
    np.testing.assert_allclose(viewer.key_light.position, (0, 3, 0), atol=1e-9)
    viewer.width, viewer.height = 640, 320
    assert (viewer.renderer.width, viewer.renderer.height, viewer.view_camera.aspect) == (640, 320, 2.0)


@pytest.mark.parametrize("name, value", [("color", "red"), ("color", "#12345"), ("color", "#gggggg"),
                                         ("light_elevation", 91.0), ("ambient_intensity", -0.1)])
def test_bad_appearance_values_are_rejected(viewer, name, value):
    with pytest.raises(traitlets.TraitError, match=name):
        setattr(viewer, name, value)


def test_reset_view_asks_the_page_to_reset_the_orbit_controls(viewer):
    messages = []
    viewer.orbit.send = lambda content, buffers=None: messages.append(content)
    viewer.reset_view()
    assert messages == [{"type": "exec_three_obj_method", "method_name": "reset", "args": []}]


def test_a_new_detail_level_gets_new_geometry(viewer, meshes, reconstructor):
    face, full = meshes["emma"][0]
    viewer.show(result([(1, (face, full))]))
    [mesh] = viewer._pool.meshes
    old = mesh.position
    acknowledge(mesh)
    low = reconstructor.vertices(face, "low")
    viewer.show(result([(1, (face, low))], detail="low"))
    level = reconstructor.levels.detail("low")
    assert mesh.detail == "low" and mesh.position is not old and old.comm is None
    assert mesh.position.array.shape == (len(level.vertices), 3) == low.shape
    assert np.array_equal(mesh.geometry.index.array, level.triangles[:, ::-1].reshape(-1))
    assert mesh.mesh.geometry is mesh.geometry and mesh.flights
    # The replaced attribute's late acknowledgement does not end the new geometry's flight.
    old.set_state({"version": 99})
    assert mesh.flights
    acknowledge(mesh)
    assert not mesh.flights and viewer.stats().applied == 2


def test_close_closes_every_widget(viewer, meshes):
    viewer.show(result([(1, meshes["emma"][0])]))
    widgets = [viewer.renderer, viewer.scene, viewer.material, viewer._pool.meshes[0].position]
    viewer.close()
    assert all(w.comm is None for w in widgets)


# -- the protocol, the same for both transports ---------------------------------------------------
def page_applies(viewer, mesh):
    """What the page does once it has applied ``mesh``'s newest update, as each transport's page
    says it: pythreejs syncs the position attribute's bumped ``version``; the page link reports
    the ``seq`` uniform of the face's material."""
    if viewer.active_transport == "positions":
        acknowledge(mesh)
    else:
        seq = mesh.material.uniforms["seq"]["value"]
        viewer.link._handle_message(viewer.link, {"type": "applied", "seq": seq}, [])


@pytest.fixture(params=["positions", "coefficients"])
def either(request, reconstructor):
    """A viewer forced to one transport, with a page that said hello (the coefficient transport
    sends its model to a page only) and answers nothing: the page link's messages go nowhere."""
    v = FaceViewer(reconstructor.levels, max_faces=2, transport=request.param)
    v.link.send = lambda content, buffers=None: None
    v.link._handle_message(v.link, {"type": "hello", "renderer": ""}, [])
    assert v.active_transport == request.param
    yield v
    v.close()


def updates(meshes, n):
    """``n`` different updates of emma's face (the chin pushed further each time)."""
    [(face, vertices)] = meshes["emma"]
    return [(face, deformed(vertices, k + 1)) for k in range(n)]


def test_each_transport_keeps_its_window_in_flight_and_the_newest_wins(either, meshes):
    window = either._pool.transport.window
    assert window == {"positions": 1, "coefficients": 3}[either.active_transport]
    faces = updates(meshes, window + 3)
    for i, face in enumerate(faces):
        either.show(result([(1, face)], captured_at=100.0 + i))
    [mesh] = either._pool.meshes
    # The mesh's creation carried the first update; window updates fly, the newest of the rest waits.
    assert len(mesh.flights) == window and mesh.pending[1] == 100.0 + len(faces) - 1
    seqs = [f.seq for f in mesh.flights]
    assert seqs == sorted(set(seqs))
    page_applies(either, mesh)
    # One acknowledgement of the newest seq ends every older flight too; the waiting update goes.
    assert mesh.pending is None and [f.captured_at for f in mesh.flights] == [100.0 + len(faces) - 1]
    assert either.stats().applied == window
    page_applies(either, mesh)
    stats = either.stats()
    assert not mesh.flights and stats.applied == window + 1 and stats.lost == 0
    assert stats.transport == either.active_transport and stats.meshes == 1 and stats.flight_p50 >= 0


def test_each_transport_ignores_acknowledgements_of_nothing_in_flight(either, meshes):
    either.show(result([(1, updates(meshes, 1)[0])]))
    [mesh] = either._pool.meshes
    either._pool.applied(-5.0)
    assert len(mesh.flights) == 1 and either.stats().applied == 0
    page_applies(either, mesh)
    page_applies(either, mesh)  # again: nothing left to end
    assert not mesh.flights and either.stats().applied == 1


def test_each_transport_gives_up_an_update_after_the_timeout(either, meshes):
    either.ack_timeout = 0.05
    faces = updates(meshes, 2 + either._pool.transport.window)
    either.show(result([(1, faces[0])]))
    [mesh] = either._pool.meshes
    for face in faces[1:-1]:
        either.show(result([(1, face)]))
    flying = list(mesh.flights)
    assert len(flying) == either._pool.transport.window
    time.sleep(0.1)
    either.show(result([(1, faces[-1])]))
    # Every update past the timeout counts as lost, and the newest goes out in its place.
    assert either.stats().lost == len(flying) and [f.seq for f in mesh.flights] == [mesh.seq]
    assert mesh.seq > flying[-1].seq
