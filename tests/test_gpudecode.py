"""The GPU decode, Python side: basis texture layout, per-frame uniforms, the shader's numpy
emulation against the CPU decode, the shader/uniform contract, the page link and the viewer's
coefficient transport (pacing, appearance, automatic choice). No browser: the page's side runs in
tests/browser/test_transport.py; here ``send`` is replaced by a list and the page's answers are fed
by hand."""

import json
import re
from collections import deque
from importlib import resources

import numpy as np
import pytest
import pythreejs as three

from face3d_nb.core.morphable import MorphableModel
from face3d_nb.testing.assets import REFERENCE
from face3d_nb.testing.basis import COEFFICIENT_SIZES, with_synthetic_basis
from face3d_nb.testing.results import posed_face, result_of
from face3d_nb.view.gpu_packing import TEXTURE_WIDTH, emulate, face_affine, face_uniforms, pack_basis
from face3d_nb.view.transport_choice import FAST_RATE, SLOW_RATE, RoundTrips, choose_transport
from face3d_nb.view.view_modes import FaceFrame, Look
from face3d_nb.view.view_transform import ViewTransform, view_index
from face3d_nb.widgets.coefficient_model import CoefficientModel
from face3d_nb.widgets.face_material import appearance_uniforms
from face3d_nb.widgets.page_link import PageLink


@pytest.fixture(scope="module")
def mean_model(real_store):
    """The real mean shape (38,365 vertices): these tests are about the real model's size."""
    from face3d_nb.core.pipeline import load_morphable_model

    return load_morphable_model(real_store.resolve())


@pytest.fixture(scope="module")
def full_model(mean_model):
    return with_synthetic_basis(mean_model)


def _reference_params(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A real pose and roi box (emma.jpg's first face) with real-sized coefficients."""
    ref = np.load(REFERENCE / "emma.npz")
    params = ref["params"][0].copy()
    params[12:] = np.random.default_rng(seed).normal(0, 1, 50) * COEFFICIENT_SIZES
    return params, ref["roi_boxes"][0]


def _cpu_view(model: MorphableModel, params, roi) -> tuple[np.ndarray, ViewTransform]:
    """What the position transport draws: the CPU mesh moved into the landmark frame, then framed."""
    vertices = model.vertices(params, roi)
    landmarks = model.landmarks_3d(params, roi)
    shift = np.float32((vertices[model.landmarks, 2] - landmarks[:, 2]).mean())
    lo, hi = landmarks.min(axis=0), landmarks.max(axis=0)
    transform = ViewTransform(center=((lo + hi) / 2).astype(np.float32),
                              scale=1.0 / float(np.ptp(landmarks[:, :2], axis=0).max()))
    return transform.apply(vertices - [0, 0, shift]), transform


# -- the texture ------------------------------------------------------------------------------
def test_texture_layout_groups_four_coefficients_per_texel():
    rng = np.random.default_rng(0)
    n_vertices = 1000
    basis = rng.normal(0, 1, (50, 3 * n_vertices)).astype(np.float32) * np.logspace(-3, 3, 50, dtype=np.float32)[:, None]
    texture = pack_basis(basis, n_vertices)
    assert texture.groups == 13 and texture.data.dtype == np.float16
    assert texture.data.shape == (-(-3 * 13 * n_vertices // TEXTURE_WIDTH), TEXTURE_WIDTH, 4)
    flat = texture.data.reshape(-1, 4).astype(np.float32)
    for v, g, c in [(0, 0, 0), (1, 2, 1), (999, 12, 2), (525, 7, 0)]:
        i = 3 * 13 * v + 3 * g + c
        expected = np.zeros(4, np.float32)
        k = np.arange(4 * g, min(4 * g + 4, 50))
        expected[: len(k)] = basis[k, 3 * v + c] / texture.scale[k]
        np.testing.assert_allclose(flat[i], expected, atol=1e-3)
    # Normalised per coefficient: half floats keep ~1/2000 of each row's own size.
    per_coefficient = np.abs(flat[: 3 * 13 * n_vertices]).reshape(n_vertices, 13, 3, 4).max(axis=(0, 2)).reshape(-1)
    np.testing.assert_array_equal(per_coefficient, [1.0] * 50 + [0.0] * 2)
    assert texture.nbytes == texture.data.nbytes


def test_u12_layout_keeps_high_bytes_then_shared_low_nibbles():
    rng = np.random.default_rng(0)
    n_vertices = 1000
    basis = rng.normal(0, 1, (50, 3 * n_vertices)).astype(np.float32) * np.logspace(-3, 3, 50, dtype=np.float32)[:, None]
    texture = pack_basis(basis, n_vertices, "u12")
    # 13 slots of high bytes, then 7 of low nibbles (two groups each): 20 slots of 3 texels per vertex.
    assert (texture.groups, texture.slots, texture.data.dtype) == (13, 20, np.uint8)
    assert texture.data.shape == (-(-3 * 20 * n_vertices // TEXTURE_WIDTH), TEXTURE_WIDTH, 4)
    flat = texture.data.reshape(-1, 4).astype(np.int64)
    for v, g, c in [(0, 0, 0), (1, 2, 1), (999, 12, 2), (525, 7, 0)]:
        first = 3 * 20 * v + c
        high, low = flat[first + 3 * g], flat[first + 3 * (13 + g // 2)]
        value = 16 * high + (low >> 4 if g % 2 == 0 else low & 15) - 2048
        k = np.arange(4 * g, min(4 * g + 4, 50))
        expected = np.zeros(4)
        expected[: len(k)] = basis[k, 3 * v + c]
        # Within half a step (1/2047 of each coefficient's largest value).
        step = texture.scale[4 * g: 4 * g + 4]
        assert np.all(np.abs(value * step - expected) <= 0.5001 * step), (v, g, c)
    # The last pair has one group: its second nibble stays empty.
    assert not (flat.reshape(-1, 20, 3, 4)[:n_vertices, 19] & 15).any()
    assert texture.nbytes / pack_basis(basis, n_vertices, "half").nbytes < 0.8


@pytest.mark.real_assets
def test_full_size_texture_fits_webgl2_limits(full_model):
    half = pack_basis(full_model.basis, full_model.n_vertices)
    assert half.data.shape == (731, 2048, 4)
    assert 11e6 < half.nbytes < 13e6
    u12 = pack_basis(full_model.basis, full_model.n_vertices, "u12")
    assert u12.data.shape == (1124, 2048, 4) and 9.1e6 < u12.nbytes < 9.3e6
    # Every texel address the shader computes is an exact float32 integer.
    assert 3 * u12.slots * full_model.n_vertices < 2**24


def test_pack_basis_rejects_bad_input():
    with pytest.raises(ValueError, match="basis must be"):
        pack_basis(np.zeros((50, 10), np.float32), 4)
    with pytest.raises(ValueError, match="non-finite"):
        pack_basis(np.full((50, 12), np.nan, np.float32), 4)
    with pytest.raises(ValueError, match="texture rows"):
        pack_basis(np.zeros((50, 3 * 120_000), np.float32), 120_000)
    with pytest.raises(ValueError, match="encoding must be one of half, u12"):
        pack_basis(np.zeros((50, 12), np.float32), 4, "u8")


# -- uniforms and the shader's arithmetic -----------------------------------------------------
@pytest.mark.real_assets
def test_face_affine_puts_landmarks_in_their_own_frame(full_model):
    params, roi = _reference_params()
    landmarks = full_model.landmarks_3d(params, roi)
    affine = face_affine(full_model, params, roi, landmarks)
    shape = full_model.mean + (params[12:] @ full_model.basis).reshape(-1, 3)
    mapped = shape[full_model.landmarks] @ affine[:, :3].T + affine[:, 3]
    np.testing.assert_allclose(mapped, landmarks, atol=2e-3)


@pytest.mark.real_assets
@pytest.mark.parametrize(("which", "encoding", "tolerance"),
                         [("mean", "half", 1e-4), ("synthetic", "half", 1e-4), ("synthetic", "u12", 2e-4)])
def test_emulated_shader_matches_cpu_decode(which, encoding, tolerance, mean_model, full_model):
    model = mean_model if which == "mean" else full_model
    params, roi = _reference_params()
    expected, transform = _cpu_view(model, params, roi)
    texture = None if model.basis is None else pack_basis(model.basis, model.n_vertices, encoding)
    uniforms = face_uniforms(model, params, roi, model.landmarks_3d(params, roi), transform, texture)
    decoded = emulate(model.mean, texture, uniforms)
    # A view unit is the face's size (~400 px on screen): 1e-4 is 0.04 px. 12-bit values add
    # their rounding, 1/4094 of each coefficient's largest deformation.
    assert np.abs(decoded - expected).max() < tolerance
    if texture is not None:
        moved = np.abs(expected - _cpu_view(mean_model, params, roi)[0]).max()
        assert moved > 0.02, "the synthetic basis should visibly deform the face"


@pytest.mark.real_assets
def test_uniforms_are_plain_lists_in_column_major_order(full_model):
    params, roi = _reference_params()
    transform = ViewTransform(center=np.zeros(3, np.float32), scale=0.01)
    texture = pack_basis(full_model.basis, full_model.n_vertices)
    landmarks = full_model.landmarks_3d(params, roi)
    uniforms = face_uniforms(full_model, params, roi, landmarks, transform, texture)
    lists = uniforms.as_lists()
    assert set(lists) == {"pose", "offset", "coefficients"}
    assert [len(lists[k]) for k in ("pose", "offset", "coefficients")] == [9, 3, 52]
    assert all(type(v) is float for values in lists.values() for v in values)
    # three.js's Matrix3.fromArray reads columns.
    assert lists["pose"][1] == pytest.approx(float(uniforms.pose[1, 0]))
    with pytest.raises(ValueError, match="finite"):
        face_uniforms(full_model, np.full(62, np.nan), roi, landmarks, transform, texture)


# -- the widgets ------------------------------------------------------------------------------
def _uniform_names(source: str) -> set[str]:
    return set(re.findall(r"^\s*uniform\s+(?:highp\s+)?\w+\s+(\w+)", source, re.MULTILINE))


@pytest.mark.real_assets
@pytest.mark.parametrize("which", ["mean", "synthetic"])
def test_material_uniforms_match_the_shaders(which, mean_model, full_model):
    model = mean_model if which == "mean" else full_model
    index = three.BufferAttribute(view_index(model.triangles, model.n_vertices), normalized=False)
    meshes = CoefficientModel(model, index)
    phong = three.MeshPhongMaterial(color="#d9a88f", shininess=20)
    appearance = appearance_uniforms(phong, three.AmbientLight(intensity=0.35),
                                     three.DirectionalLight(intensity=0.8, position=(1, 2, 3)),
                                     three.PointLight(intensity=0.3, position=(0, 0.5, 0)))
    params, roi = _reference_params()
    frame = face_uniforms(model, params, roi, model.landmarks_3d(params, roi), ViewTransform(np.zeros(3, np.float32), 1e-3),
                          meshes.texture)
    placed = FaceFrame("3:9", (1280, 720), ViewTransform(np.zeros(3, np.float32), 1e-3), (0.0, 100.0)).uniforms()
    material = meshes.material(meshes.uniforms(frame, appearance, placed, seq=7), Look(), phong)
    mesh = meshes.mesh(material, Look())
    assert mesh.frustumCulled is False and mesh.visible and material.side == "DoubleSide"

    sent = material.get_state()["uniforms"]
    json.dumps({k: v for k, v in sent.items() if k != "basis"})
    names = list(sent)
    static = resources.files("face3d_nb.widgets") / "static"
    declared = _uniform_names((static / "face.vert").read_text()) | _uniform_names((static / "face.frag").read_text())
    if model.basis is None:
        assert "basis" not in names and "coefficients" not in names
        declared -= {"basis", "coefficients"}
        assert "#define COEFFICIENT_GROUPS 0" in material.vertexShader
    else:
        # The front end only resolves a texture uniform that comes last.
        assert names[-1] == "basis" and sent["basis"]["type"] == "t"
        basis = material.uniforms["basis"]["value"]
        assert basis.type == "UnsignedByteType" and basis.data.dtype == np.uint8
        for define in ("COEFFICIENT_GROUPS 13", "BASIS_ROWS 1124.0", "BASIS_SLOTS 20", "BASIS_BITS 12"):
            assert f"#define {define}\n" in material.vertexShader
        # The encoding it replaced, kept for comparison.
        half = CoefficientModel(model, index, "half")
        half_frame = face_uniforms(model, params, roi, model.landmarks_3d(params, roi),
                                   ViewTransform(np.zeros(3, np.float32), 1e-3), half.texture)
        half_uniforms = half.uniforms(half_frame, appearance, placed, seq=7)
        half_material = half.material(half_uniforms, Look(), phong)
        assert "#define BASIS_SLOTS 13\n#define BASIS_BITS 16\n" in half_material.vertexShader
        assert half_uniforms["basis"]["value"].type == "HalfFloatType"
        # A material left open would name the closed texture in every later widget state request.
        half_material.close()
        half.close()
    # seq is the page link's, frameName names the frame the page puts in the frame texture.
    assert declared == set(names) - {"seq", "frameName"}
    assert sent["seq"]["value"] == 7.0 and sent["pose"]["type"] == "m3" and sent["diffuse"]["type"] == "c"


class _Recorder:
    """Stands in for the comm: what the kernel sends to the page."""

    def __init__(self, widget):
        self.messages = []
        widget.send = lambda content, buffers=None: self.messages.append((content, buffers or []))


def test_link_pings_one_at_a_time_and_times_them():
    now = [0.0]
    link = PageLink(clock=lambda: now[0])
    sent = _Recorder(link)
    link.measure([0, 262_144])
    assert len(sent.messages) == 1 and sent.messages[0] == ({"type": "ping", "id": 1}, [])
    now[0] = 0.02
    link._handle_message(link, {"type": "pong", "id": 7}, [])  # not the one in flight: ignored
    assert len(sent.messages) == 1
    link._handle_message(link, {"type": "pong", "id": 1}, [])
    (content, buffers), = sent.messages[1:]
    assert content == {"type": "ping", "id": 2} and len(buffers) == 1 and len(buffers[0]) == 262_144
    assert link.measuring
    now[0] = 0.02 + 0.02 + 0.1
    link._handle_message(link, {"type": "pong", "id": 2}, [])
    assert not link.measuring and len(sent.messages) == 2
    assert link.round_trips.round_trip == pytest.approx(0.02)
    assert link.round_trips.throughput == pytest.approx(262_144 / 0.1)


def test_link_gives_up_an_unanswered_ping():
    now = [0.0]
    link = PageLink(clock=lambda: now[0], ping_timeout=5.0)
    sent = _Recorder(link)
    link.measure([0])
    link.measure([0])
    assert len(sent.messages) == 1
    now[0] = 6.0
    link.measure([])
    assert len(sent.messages) == 2 and link.round_trips.round_trip is None
    link._handle_message(link, {"type": "pong", "id": 1}, [])  # too late: not counted
    assert link.round_trips.round_trip is None


def test_link_reports_applied_updates_and_ignores_junk():
    link = PageLink()
    seen = []
    link.on_applied(seen.append)
    for junk in (None, [], {"type": "applied"}, {"type": "applied", "seq": "3"}, {"type": "other"}):
        link._handle_message(link, junk, [])
    link._handle_message(link, {"type": "applied", "seq": 3.0}, [])
    assert seen == [3.0]


# -- choosing the transport -------------------------------------------------------------------
def _round_trips(rtt: float, throughput: float) -> RoundTrips:
    round_trips = RoundTrips()
    round_trips.add(100, rtt)
    round_trips.add(1_000_000, rtt + 1_000_000 / throughput)
    return round_trips


def test_round_trips_separate_round_trip_from_throughput():
    round_trips = _round_trips(0.04, 2e6)
    assert round_trips.round_trip == pytest.approx(0.04)
    assert round_trips.throughput == pytest.approx(2e6)
    assert round_trips.update_rate(460_000) == pytest.approx(1 / (0.04 + 0.23))
    assert RoundTrips().update_rate(100) is None


def test_choice_follows_the_link_and_the_page():
    fast, slow, remote = _round_trips(0.002, 200e6), _round_trips(0.01, 0.5e6), _round_trips(0.15, 200e6)
    position_bytes = 460_000
    assert choose_transport("auto", "ok", fast, position_bytes, "coefficients")[0] == "positions"
    transport, reason = choose_transport("auto", "ok", slow, position_bytes, "positions")
    assert transport == "coefficients" and "reach this page slowly" in reason
    assert choose_transport("auto", "ok", remote, position_bytes, "positions")[0] == "coefficients"
    # Between the two thresholds the current choice stays.
    middle = _round_trips(1 / (SLOW_RATE + FAST_RATE) * 2, 1e12)
    for current in ("positions", "coefficients"):
        assert choose_transport("auto", "ok", middle, position_bytes, current)[0] == current
    assert choose_transport("auto", "ok", RoundTrips(), position_bytes, "positions")[0] == "positions"
    # The page decides what it can do; a forced choice is obeyed where possible.
    transport, reason = choose_transport("coefficients", "no vertex texture fetch", slow, position_bytes, "positions")
    assert transport == "positions" and "no vertex texture fetch" in reason
    assert choose_transport("auto", "no half-float textures", slow, position_bytes, "positions")[1]
    assert choose_transport("coefficients", "", slow, position_bytes, "positions") == ("coefficients", "")
    assert choose_transport("auto", "", slow, position_bytes, "positions") == ("positions", "")
    assert choose_transport("coefficients", "ok", fast, position_bytes, "positions") == ("coefficients", "")
    assert choose_transport("positions", "ok", slow, position_bytes, "coefficients") == ("positions", "")
    with pytest.raises(ValueError, match="transport must be"):
        choose_transport("gpu", "ok", fast, position_bytes, "positions")


# -- the viewer's coefficient transport -------------------------------------------------------
def _frame(model: MorphableModel, params, roi, track_id: int = 1, captured_at: float = 0.0, with_vertices=True):
    return result_of([posed_face(model, params, roi, track_id, with_vertices)], captured_at=captured_at)


@pytest.fixture
def levels(full_model):
    from face3d_nb.core.detail import DetailLevels

    return DetailLevels(full_model)


@pytest.fixture
def viewer(levels):
    from face3d_nb.widgets.viewer import FaceViewer

    v = FaceViewer(levels, transport="coefficients", width=320, height=240)
    v.link.send = lambda content, buffers=None: None  # the page answers no pings
    v.link._handle_message(v.link, {"type": "hello", "renderer": "a GPU"}, [])  # the model goes to a page only
    yield v
    v.close()


def _applied(viewer, mesh) -> None:
    """What the page does once it has the uniforms: acknowledge their ``seq``."""
    viewer.link._handle_message(viewer.link, {"type": "applied", "seq": mesh.material.uniforms["seq"]["value"]}, [])


@pytest.mark.real_assets
def test_viewer_arguments_are_applied_after_the_scene_exists(viewer, levels):
    from face3d_nb.widgets.viewer import FaceViewer

    assert (viewer.renderer.width, viewer.renderer.height, viewer.view_camera.aspect) == (320, 240, 320 / 240)
    assert viewer.active_transport == "coefficients"
    with pytest.raises(TypeError, match="colour"):
        FaceViewer(levels, colour="#ffffff")


@pytest.mark.real_assets
def test_coefficient_updates_keep_three_in_flight_and_the_newest_wins(viewer, full_model):
    params, roi = _reference_params()
    viewer.show(_frame(full_model, params, roi, captured_at=100.0, with_vertices=False))
    [mesh] = viewer._pool.meshes
    assert viewer.link.materials == [mesh.material] and mesh.mesh in viewer.scene.children
    assert mesh.mesh.visible and mesh.material.uniforms["basis"]["value"] is not None
    sent = [mesh.material.uniforms]
    mesh.material.observe(lambda change: sent.append(change["new"]), "uniforms")
    newer = [params.copy() for _ in range(4)]
    for i, p in enumerate(newer):
        p[12] += 1e5 * (i + 1)
        viewer.show(_frame(full_model, p, roi, captured_at=101.0 + i, with_vertices=False))
    assert len(sent) == 3, "three in flight, the rest wait"
    viewer.link._handle_message(viewer.link, {"type": "applied", "seq": -5.0}, [])  # not one in flight
    assert len(sent) == 3
    # Acknowledgements come in order: the second one ends the first two flights.
    viewer.link._handle_message(viewer.link, {"type": "applied", "seq": sent[1]["seq"]["value"]}, [])
    assert len(sent) == 4 and len(mesh.flights) == 2
    expected = face_uniforms(full_model, newer[-1], roi, full_model.landmarks_3d(newer[-1], roi),
                             _transform_of(full_model, newer[-1], roi),
                              viewer._transports["coefficients"].model("full").texture)
    np.testing.assert_allclose(sent[-1]["coefficients"]["value"], expected.as_lists()["coefficients"], rtol=1e-6)
    assert [u["seq"]["value"] for u in sent] == sorted({u["seq"]["value"] for u in sent})
    _applied(viewer, mesh)
    stats = viewer.stats()
    assert stats.applied == 4 and stats.transport == "coefficients" and stats.flight_p50 >= 0
    assert mesh.flights == deque()


def _transform_of(model, params, roi):
    from face3d_nb.view.view_transform import fit_faces

    return fit_faces([model.landmarks_3d(params, roi)])


@pytest.mark.real_assets
def test_both_transports_put_every_vertex_in_the_same_place(viewer, levels, full_model):
    from face3d_nb.widgets.viewer import FaceViewer

    params, roi = _reference_params()
    positions = FaceViewer(levels, transport="positions")
    try:
        positions.show(_frame(full_model, params, roi))
        viewer.show(_frame(full_model, params, roi))
        [by_position], [by_coefficients] = positions._pool.meshes, viewer._pool.meshes
        decoded = emulate(full_model.mean, viewer._transports["coefficients"].model("full").texture,
                           by_coefficients.last[0])
        np.testing.assert_allclose(decoded, by_position.position.array, atol=1e-4)
    finally:
        positions.close()


@pytest.mark.real_assets
def test_colour_lights_and_wireframe_reach_the_shader(viewer, full_model):
    params, roi = _reference_params()
    viewer.show(_frame(full_model, params, roi))
    [mesh] = viewer._pool.meshes
    viewer.color, viewer.key_intensity, viewer.point_intensity, viewer.light_azimuth = "#336699", 1.25, 0.5, 90.0
    # Each change re-sends the last frame; the last changes wait for room in flight.
    assert len(mesh.flights) == 3 and mesh.pending is not None
    _applied(viewer, mesh)
    uniforms = mesh.material.uniforms
    assert uniforms["diffuse"]["value"] == "#336699" and uniforms["keyIntensity"]["value"] == 1.25
    assert uniforms["pointIntensity"]["value"] == 0.5 and viewer.point_light.power == pytest.approx(4 * np.pi * 0.5)
    np.testing.assert_allclose(uniforms["keyDirection"]["value"], viewer.key_light.position)
    viewer.wireframe = True
    assert mesh.material.wireframe and viewer.material.wireframe


@pytest.mark.real_assets
def test_auto_follows_the_measured_link_and_what_the_page_can_do(levels, full_model):
    from face3d_nb.widgets.viewer import FaceViewer

    viewer = FaceViewer(levels)
    pings = []
    viewer.link.send = lambda content, buffers=None: pings.append(content)
    try:
        params, roi = _reference_params()
        viewer.show(_frame(full_model, params, roi))
        assert viewer.active_transport == "positions" and pings == []
        viewer.link._handle_message(viewer.link, {"type": "hello", "renderer": "a GPU"}, [])  # the link gets timed
        assert viewer._transports["coefficients"]._models == {}
        viewer.link.set_state({"gpu_decode": "ok"})
        assert pings and pings[0]["type"] == "ping"
        # The page can decode: it gets the model for its GPU at once, before any switch needs it.
        assert list(viewer._transports["coefficients"]._models) == ["full"] and viewer.active_transport == "positions"
        viewer.link.round_trips.add(100, 0.08)
        viewer.link.round_trips.add(460_000, 0.08 + 460_000 / 125_000)
        viewer._chosen_at = -np.inf
        viewer.show(_frame(full_model, params, roi))
        assert viewer.active_transport == "coefficients" and "reach this page slowly" in viewer.transport_message
        assert viewer.link.message == viewer.transport_message
        viewer.show(_frame(full_model, params, roi, with_vertices=False))
        [mesh] = viewer._pool.meshes
        assert mesh.material is not None
        viewer.link.set_state({"gpu_decode": "no vertex texture fetch"})
        assert viewer.active_transport == "positions" and "no vertex texture fetch" in viewer.transport_message
        assert viewer._pool.meshes == [] and mesh.mesh not in viewer.scene.children and viewer.link.materials == []
        viewer.transport = "positions"
        assert viewer.transport_message == ""
    finally:
        viewer.close()
