"""Mesh detail levels: fewer vertices and triangles, the same face, exact landmarks."""

import numpy as np
import pytest

from face3d_nb.core.detail import LEVELS, DetailLevels, simplify
from face3d_nb.core.morphable import MorphableModel
from face3d_nb.testing.assets import REFERENCE


@pytest.fixture
def levels(reconstructor):
    m = reconstructor.model
    return {name: simplify(name, m.mean, m.triangles, m.landmarks, f) for name, f in LEVELS.items()}


@pytest.mark.real_assets
def test_levels_shrink_vertices_and_triangles(reconstructor, levels):
    sizes = [(len(levels[n].vertices), len(levels[n].triangles)) for n in ("full", "medium", "low")]
    assert sizes[0] == (38365, 76073)
    assert sizes[0][0] > 3 * sizes[1][0] > 9 * sizes[2][0]
    assert sizes[0][1] > 3 * sizes[1][1] > 9 * sizes[2][1]
    landmarks = reconstructor.model.landmarks
    for detail in levels.values():
        unused = np.setdiff1d(np.arange(len(detail.vertices)), detail.triangles)
        # Only a pinned landmark may be left out of every triangle.
        assert np.isin(detail.vertices[unused], landmarks).all()


@pytest.mark.real_assets
def test_reduced_model_decodes_the_same_surface(reconstructor, levels):
    model = reconstructor.model
    rng = np.random.default_rng(0)
    full = MorphableModel(model.mean, rng.standard_normal((50, 3 * model.n_vertices)).astype(np.float32) * 1e3,
                          model.triangles, model.landmarks)
    ref = np.load(REFERENCE / "emma.npz")
    params, roi = ref["params"][0], ref["roi_boxes"][0]
    dense = full.vertices(params, roi)
    for detail in levels.values():
        small = full.reduced(detail.vertices, detail.triangles)
        assert small.basis.shape == (50, 3 * len(detail.vertices))
        got = small.vertices(params, roi)
        # Same points as the full decode (up to the z offset, which is set by each mesh's minimum).
        np.testing.assert_allclose(got[:, :2], dense[detail.vertices, :2], rtol=1e-4, atol=0.05)
        np.testing.assert_allclose(small.landmarks_3d(params, roi), full.landmarks_3d(params, roi), atol=1e-3)


def test_triangles_keep_their_facing(reconstructor, levels):
    model = reconstructor.model

    def mean_normal_z(points, tris):
        t = points[tris]
        return np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])[:, 2].sum()

    full_sign = np.sign(mean_normal_z(model.mean, model.triangles))
    for detail in levels.values():
        assert np.sign(mean_normal_z(model.mean[detail.vertices], detail.triangles)) == full_sign


def test_reduction_must_keep_landmarks(reconstructor):
    model = reconstructor.model
    keep = np.setdiff1d(np.arange(model.n_vertices), model.landmarks[:1])
    with pytest.raises(ValueError, match="landmark"):
        model.reduced(keep, np.zeros((1, 3), np.int32))


@pytest.mark.real_assets
def test_engine_decodes_the_configured_level_and_switches_while_running(reconstructor):
    import threading

    import cv2

    from face3d_nb.live.config import EngineConfig
    from face3d_nb.live.engine import Engine
    from face3d_nb.live.events import FrameResult
    from face3d_nb.testing.assets import IMAGES

    photo = cv2.imread(str(IMAGES["JianzhuGuo"]))
    results, done = [], threading.Event()

    def keep(event):
        results.append(event)
        done.set()

    def run_one(engine):
        done.clear()
        engine.submit(photo)
        assert done.wait(60)

    levels = reconstructor.levels
    with Engine(EngineConfig(detail="low"), reconstructor) as engine:
        engine.subscribe(keep)
        run_one(engine)
        engine.update_config(detail="medium")
        run_one(engine)
        engine.update_config(detail="full")
        run_one(engine)
    assert all(isinstance(r, FrameResult) for r in results)
    assert [r.detail for r in results] == ["low", "medium", "full"]
    for result in results:
        face = result.faces[0]
        kept = levels.detail(result.detail).vertices
        assert face.vertices.shape == (len(kept), 3)
        # The kept vertices of the full decode of the same face (z is offset by each mesh's minimum).
        full = reconstructor.vertices(face.face)
        np.testing.assert_allclose(face.vertices[:, :2], full[kept, :2], atol=1e-3)


def test_detail_is_a_validated_setting():
    from face3d_nb.live.config import EngineConfig, parse_override

    assert EngineConfig().detail == "full"
    assert EngineConfig().replace(**dict([parse_override("detail=low")])).detail == "low"
    with pytest.raises(ValueError, match="^detail: 'high' is not one of full, medium, low"):
        EngineConfig(detail="high")
    with pytest.raises(ValueError, match="unknown mesh detail"):
        DetailLevels(None).model("high")


def test_no_flecks_lower_levels_keep_no_triangle_turned_against_the_surface(reconstructor, levels):
    model = reconstructor.model
    # The full mesh's unit normal per vertex (area-weighted), wound as the y-flipped view's index.
    view_triangles = model.triangles[:, ::-1]
    corners = model.mean[view_triangles]
    surface = np.zeros_like(model.mean)
    np.add.at(surface, view_triangles, np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])[:, None])
    surface /= np.maximum(np.linalg.norm(surface, axis=1, keepdims=True), 1e-12)
    for name in ("medium", "low"):
        detail = levels[name]
        corners = model.mean[detail.vertices][detail.triangles]
        normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
        # The surface normals are for the y-flipped view frame, so facing the surface is a negative product.
        facing = (normals * surface[detail.vertices][detail.triangles].mean(axis=1)).sum(axis=1)
        # A triangle turned over by the clustering is drawn as a dark fleck; a few remain at the rim.
        assert (facing > 0).sum() < 0.002 * len(detail.triangles), name
