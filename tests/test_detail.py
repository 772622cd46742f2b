"""Mesh detail levels: fewer vertices and triangles, the same face, exact landmarks."""

import numpy as np
import pytest

from face3d_nb.bfm import MorphableModel
from face3d_nb.detail import LEVELS, simplify

from conftest import REFERENCE, requires_assets

pytestmark = requires_assets


@pytest.fixture(scope="module")
def levels(reconstructor):
    m = reconstructor.model
    return {name: simplify(name, m.mean, m.triangles, m.landmarks, f) for name, f in LEVELS.items()}


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
