"""The numpy rasteriser on hand-made triangles: coverage by pixel centres, edges, occlusion,
interpolation, clipping and bad input; and its speed on a real face."""

import time
from fractions import Fraction

import numpy as np
import pytest

from face3d_nb.core import raster
from face3d_nb.core.raster import rasterize


def _tri(*corners, z=0.0):
    return np.array([[x, y, z] for x, y in corners], np.float64), np.array([[0, 1, 2]])


def test_a_right_triangle_covers_the_pixel_centres_inside_and_on_its_edges():
    vertices, triangles = _tri((0, 0), (10, 0), (0, 10))
    drawn = rasterize(vertices, triangles, (20, 20))
    rows, cols = np.nonzero(drawn.mask)
    assert len(rows) == 66  # x + y <= 10 for x, y >= 0: 11 + 10 + ... + 1 (Pick: area 50 + 15 boundary + 1)
    assert (rows + cols).max() == 10 and rows.min() == 0 and cols.min() == 0
    assert drawn.mask.dtype == bool and drawn.depth.dtype == np.float32
    assert drawn.triangle.dtype == np.int32 and drawn.values.shape == (20, 20, 0)


def test_the_covered_count_follows_the_area_of_any_triangle():
    rng = np.random.default_rng(1)
    for _ in range(20):
        corners = rng.uniform(0, 60, (3, 2))
        vertices = np.column_stack([corners, np.zeros(3)])
        drawn = rasterize(vertices, [[0, 1, 2]], (60, 60))
        a, b, c = corners
        area = abs((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])) / 2
        perimeter = np.linalg.norm(a - b) + np.linalg.norm(b - c) + np.linalg.norm(c - a)
        assert abs(drawn.mask.sum() - area) <= perimeter / 2 + 2


def test_both_windings_draw_the_same_and_degenerate_triangles_nothing():
    vertices, _ = _tri((2.3, 1.1), (17.6, 4.2), (6.5, 15.9))
    forward = rasterize(vertices, [[0, 1, 2]], (20, 20))
    backward = rasterize(vertices, [[0, 2, 1]], (20, 20))
    assert forward.mask.sum() > 50 and np.array_equal(forward.mask, backward.mask)
    line = np.array([[0, 0, 0], [5, 5, 0], [10, 10, 0]], float)
    assert not rasterize(line, [[0, 1, 2], [0, 0, 1]], (20, 20)).mask.any()


def test_the_nearest_surface_wins_whatever_the_order_and_ties_go_to_the_lower_index():
    near, _ = _tri((0, 0), (20, 0), (0, 20), z=5.0)
    far, _ = _tri((0, 0), (20, 0), (0, 20), z=-3.0)
    vertices = np.concatenate([far, near])
    for triangles, winner in (([[0, 1, 2], [3, 4, 5]], 1), ([[3, 4, 5], [0, 1, 2]], 0)):
        drawn = rasterize(vertices, triangles, (20, 20))
        assert (drawn.triangle[drawn.mask] == winner).all()
        assert np.all(drawn.depth[drawn.mask] == 5.0)
    same = rasterize(np.concatenate([near, near]), [[3, 4, 5], [0, 1, 2]], (20, 20))
    assert (same.triangle[same.mask] == 0).all()


def test_a_sloped_triangle_in_front_at_one_end_and_behind_at_the_other():
    # Two triangles over one square cross at x = 10: each is in front on its own side.
    rising = np.array([[0, 0, 0], [20, 0, 20], [0, 20, 0], [20, 20, 20]], float)
    falling = rising * [1, 1, -1] + [0, 0, 20]
    vertices = np.concatenate([rising, falling])
    triangles = [[0, 1, 2], [1, 3, 2], [4, 5, 6], [5, 7, 6]]
    drawn = rasterize(vertices, triangles, (21, 21))
    assert drawn.mask.all()
    from_rising = np.isin(drawn.triangle, [0, 1])
    assert from_rising[:, 10:].all() and not from_rising[:, :10].any()  # equal at x = 10: lower index
    np.testing.assert_allclose(drawn.depth, np.maximum(np.arange(21), 20 - np.arange(21))[None].repeat(21, 0))


def test_attributes_are_exact_at_the_corners_and_linear_inside():
    vertices, triangles = _tri((1, 1), (30, 4), (8, 25), z=0.0)
    vertices[:, 2] = [1.0, 2.0, 4.0]
    # A linear function of x and y: barycentric interpolation must reproduce it everywhere.
    attributes = np.column_stack([3 * vertices[:, 0] - 2 * vertices[:, 1] + 7, [10.0, 20.0, 40.0]])
    drawn = rasterize(vertices, triangles, (32, 32), attributes)
    assert drawn.values.shape == (32, 32, 2) and drawn.values.dtype == np.float32
    rows, cols = np.nonzero(drawn.mask)
    np.testing.assert_allclose(drawn.values[rows, cols, 0], 3 * cols - 2 * rows + 7, rtol=1e-5, atol=1e-4)
    for (x, y, _), value in zip(vertices, attributes):
        assert drawn.mask[int(y), int(x)]
        np.testing.assert_allclose(drawn.values[int(y), int(x)], value, rtol=1e-6)
    np.testing.assert_allclose(drawn.values[rows, cols, 1], 10 * drawn.depth[rows, cols], rtol=1e-5)
    assert (drawn.values[~drawn.mask] == 0).all() and (drawn.depth[~drawn.mask] == -np.inf).all()
    assert (drawn.triangle[~drawn.mask] == -1).all()


def test_a_mesh_with_shared_edges_has_no_gaps():
    # A jittered grid: every pixel centre inside its outline is covered, whatever the rounding.
    rng = np.random.default_rng(3)
    n = 12
    u, v = np.meshgrid(np.arange(n), np.arange(n))
    points = np.column_stack([u.ravel() * 5.0 + 2, v.ravel() * 5.0 + 2])
    inner = (u.ravel() % (n - 1) != 0) & (v.ravel() % (n - 1) != 0)
    points[inner] += rng.uniform(-1.7, 1.7, (inner.sum(), 2))
    quads = np.arange(n * n).reshape(n, n)[:-1, :-1].ravel()
    triangles = np.concatenate([np.stack([quads, quads + n, quads + 1], -1),
                                np.stack([quads + 1, quads + n, quads + n + 1], -1)])
    drawn = rasterize(np.column_stack([points, np.zeros(len(points))]), triangles, (64, 64))
    assert drawn.mask[2:58, 2:58].all() and not drawn.mask[59:].any() and not drawn.mask[:, 59:].any()


def test_pixel_centres_on_a_shared_diagonal_are_drawn_once_by_the_lower_index():
    square = np.array([[0, 0, 0], [8, 0, 0], [0, 8, 0], [8, 8, 0]], float)
    drawn = rasterize(square, [[0, 1, 3], [0, 3, 2]], (9, 9))
    assert drawn.mask.all()
    rows, cols = np.indices((9, 9))
    assert (drawn.triangle[rows == cols] == 0).all()  # on the edge: both cover it, the lower index wins
    assert (drawn.triangle[rows > cols] == 1).all() and (drawn.triangle[rows < cols] == 0).all()


def test_triangles_are_clipped_to_the_image_and_far_or_broken_vertices_are_harmless():
    vertices = np.array([[-50, -50, 0], [60, -50, 0], [-50, 60, 0], [1e15, 2, 0], [3, -1e15, 0], [np.nan, 0, 0]],
                        float)
    drawn = rasterize(vertices, [[0, 1, 2], [3, 4, 5], [0, 3, 5]], (10, 10))
    rows, cols = np.nonzero(drawn.mask)
    assert len(rows) == 64 and (rows + cols <= 10).all()  # the corner x + y <= 10 of the image
    assert set(np.unique(drawn.triangle[drawn.mask])) == {0}
    far = rasterize(vertices, [[3, 4, 0]], (10, 10))
    assert far.mask.shape == (10, 10) and np.isfinite(far.depth[far.mask]).all()


def test_triangles_larger_than_a_chunk_give_the_same_picture(monkeypatch):
    rng = np.random.default_rng(5)
    vertices = np.column_stack([rng.uniform(-5, 45, (30, 2)), rng.uniform(-1, 1, 30)])
    triangles = rng.integers(0, 30, (25, 3))
    attributes = rng.normal(size=(30, 2))
    whole = rasterize(vertices, triangles, (40, 40), attributes)
    monkeypatch.setattr(raster, "CHUNK", 97)
    chunked = rasterize(vertices, triangles, (40, 40), attributes)
    for a, b in zip((whole.mask, whole.depth, whole.triangle, whole.values),
                    (chunked.mask, chunked.depth, chunked.triangle, chunked.values)):
        np.testing.assert_array_equal(a, b)


def test_it_agrees_with_exact_arithmetic_on_integer_triangles():
    rng = np.random.default_rng(7)
    h, w = 14, 18
    vertices = np.column_stack([rng.integers(-3, w + 3, (24, 2)), rng.uniform(-10, 10, 24)])
    triangles = rng.integers(0, 24, (16, 3))
    drawn = rasterize(vertices, triangles, (h, w))
    # Every triangle whose pixel centres include (x, y), with its exact depth there.
    hits = {}
    for t, (i, j, k) in enumerate(triangles):
        (ax, ay), (bx, by), (cx, cy) = (vertices[n, :2].astype(int) for n in (i, j, k))
        area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        for y in range(h):
            for x in range(w):
                e = [(bx - x) * (cy - y) - (by - y) * (cx - x), (cx - x) * (ay - y) - (cy - y) * (ax - x),
                     (ax - x) * (by - y) - (ay - y) * (bx - x)]
                if area != 0 and all(v * area >= 0 for v in e):
                    z = sum(Fraction(int(v), int(area)) * Fraction(vertices[n, 2]) for v, n in zip(e, (i, j, k)))
                    hits.setdefault((y, x), []).append((z, t))
    assert drawn.mask.sum() == len(hits) > 40
    for (y, x), found in hits.items():
        best = max(z for z, _ in found)
        # Equal depths (a shared edge) are a tie that rounding may decide either way.
        assert drawn.triangle[y, x] in [t for z, t in found if abs(z - best) < 1e-9], (y, x)
        assert drawn.depth[y, x] == pytest.approx(float(best), abs=1e-5)


@pytest.mark.parametrize(("vertices", "triangles", "shape", "attributes", "message"), [
    (np.zeros((3, 2)), [[0, 1, 2]], (4, 4), None, "vertices must be"),
    (np.zeros((3, 3)), [[0, 1, 2.0]], (4, 4), None, "triangles must be"),
    (np.zeros((3, 3)), [[0, 1, 3]], (4, 4), None, "index the 3 vertices"),
    (np.zeros((3, 3)), [[0, 1, 2]], (0, 4), None, "shape must be"),
    (np.zeros((3, 3)), [[0, 1, 2]], (4, 4), np.zeros((2, 1)), "attributes must be"),
])
def test_bad_input_is_a_clear_error(vertices, triangles, shape, attributes, message):
    with pytest.raises(ValueError, match=message):
        rasterize(vertices, triangles, shape, attributes)


@pytest.mark.real_assets
def test_a_real_face_at_640x360_in_well_under_two_seconds(reconstructor):
    import cv2

    from face3d_nb.testing.assets import IMAGES

    image = cv2.resize(cv2.imread(str(IMAGES["JianzhuGuo"])), (640, 360))
    face = reconstructor(image)[0]
    vertices = reconstructor.vertices(face)
    rasterize(vertices, reconstructor.triangles, (360, 640))  # warm up numpy's allocations
    start = time.perf_counter()
    drawn = rasterize(vertices, reconstructor.triangles, (360, 640), vertices[:, 2:])
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"{elapsed:.2f} s"
    # Brows, nose and eyes are on the face; what is seen there is their surface or something in front.
    x, y = np.round(face.landmarks[17:48, :2]).astype(int).T
    assert drawn.mask[y, x].all()
    assert (drawn.depth[y, x] > face.landmarks[17:48, 2] - 1.0).all()
    np.testing.assert_allclose(drawn.values[drawn.mask, 0], drawn.depth[drawn.mask], rtol=1e-5)
