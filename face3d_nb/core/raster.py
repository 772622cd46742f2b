"""A z-buffered triangle rasteriser in numpy: which triangle is nearest at each pixel, and its
interpolated depth and attributes.

Used to draw textures in UV space and, in the tests, as the reference for what the browser renders.

Conventions: vertices are image pixels, x right, y down, z towards the viewer (a larger z is
nearer). Pixel (row i, column j) is covered by a triangle when its centre, the point x = j, y = i
(cv2's and 3DDFA's pixel coordinates), lies inside the triangle's 2D projection or on its edge.
Both windings draw; a degenerate (zero-area) triangle or one with a non-finite vertex draws nothing.
Depth and attributes are interpolated with screen-space (2D) barycentric weights. Where two
triangles give a pixel the same depth, the one with the lower index wins, so the result never
depends on the order of work (depths equal in exact arithmetic, as along a shared edge, can differ
in their last bit: then that bit decides).

How: each triangle's bounding box of pixel centres is enumerated as candidate pixels, in chunks of
at most :data:`CHUNK` candidates (a triangle larger than a chunk spans several), so memory stays
bounded whatever the triangles' sizes. A candidate is inside when its three edge functions have the
triangle's sign; each edge function is a cross product of the two corners taken relative to the
pixel, which is exactly negated for the neighbour sharing that edge, so shared edges leave no gaps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CHUNK", "Raster", "rasterize"]

#: Candidate pixels tested at once: about 100 MB of temporaries.
CHUNK = 1 << 19


@dataclass(frozen=True)
class Raster:
    """What :func:`rasterize` drew, per pixel of an (h, w) image.

    ``mask`` (h, w) bool: covered pixels; ``depth`` (h, w) float32: z of the nearest surface (the
    largest z), -inf where empty; ``triangle`` (h, w) int32: index of the triangle drawn, -1 where
    empty; ``values`` (h, w, C) float32: barycentric interpolation of the ``attributes`` of that
    triangle's corners, 0 where empty.
    """

    mask: np.ndarray
    depth: np.ndarray
    triangle: np.ndarray
    values: np.ndarray


def _edges(corners: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(3, N) edge functions of points (x, y) (N,) in triangles with ``corners`` (N, 3, 2).

    Row k is the cross product of the two corners other than k, taken relative to the point: twice
    the signed area of the sub-triangle opposite corner k, so the rows sum to twice the triangle's
    signed area and, divided by it, are the point's barycentric weights.
    """
    dx = corners[:, :, 0] - x[:, None]
    dy = corners[:, :, 1] - y[:, None]
    return np.stack([dx[:, 1] * dy[:, 2] - dy[:, 1] * dx[:, 2],
                     dx[:, 2] * dy[:, 0] - dy[:, 2] * dx[:, 0],
                     dx[:, 0] * dy[:, 1] - dy[:, 0] * dx[:, 1]])


def _check(vertices, triangles, shape, attributes) -> tuple[np.ndarray, np.ndarray, int, int, np.ndarray]:
    vertices = np.asarray(vertices)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or not np.issubdtype(vertices.dtype, np.number):
        raise ValueError(f"vertices must be (K, 3) numbers, got {vertices.shape} {vertices.dtype}")
    triangles = np.asarray(triangles)
    if triangles.ndim != 2 or triangles.shape[1] != 3 or not np.issubdtype(triangles.dtype, np.integer):
        raise ValueError(f"triangles must be (T, 3) integers, got {triangles.shape} {triangles.dtype}")
    if triangles.size and (triangles.min() < 0 or triangles.max() >= len(vertices)):
        raise ValueError(f"triangles must index the {len(vertices)} vertices")
    if len(shape) != 2 or any(int(n) != n or n < 1 for n in shape):
        raise ValueError(f"shape must be (h, w) positive integers, got {shape}")
    if attributes is None:
        attributes = np.zeros((len(vertices), 0), np.float32)
    attributes = np.asarray(attributes)
    if attributes.ndim != 2 or len(attributes) != len(vertices):
        raise ValueError(f"attributes must be (K, C) for the {len(vertices)} vertices, got {attributes.shape}")
    return vertices.astype(np.float64), triangles.astype(np.intp), int(shape[0]), int(shape[1]), attributes


def rasterize(vertices: np.ndarray, triangles: np.ndarray, shape: tuple[int, int],
              attributes: np.ndarray | None = None) -> Raster:
    """Draw ``triangles`` (T, 3) int of ``vertices`` (K, 3) float pixels into an image of ``shape``
    (h, w), nearest surface in front; ``attributes`` (K, C) float, or None for C = 0, are
    interpolated into :attr:`Raster.values`. See the module docstring for the conventions."""
    points, triangles, h, w, attributes = _check(vertices, triangles, shape, attributes)
    finite = np.isfinite(points).all(axis=1)[triangles].all(axis=1)
    # A triangle with a non-finite corner is moved to the origin, where it is degenerate.
    corners = np.where(finite[:, None, None], points[triangles], 0.0)  # (T, 3, 3)
    (ax, ay), (bx, by), (cx, cy) = (corners[:, k, :2].T for k in range(3))
    area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)  # twice the signed area
    lo = np.ceil(corners[:, :, :2].min(axis=1))
    hi = np.floor(corners[:, :, :2].max(axis=1))
    # Clipped while still float: a vertex far outside must not overflow the integer cast.
    x0, y0 = (np.clip(lo[:, k], 0, n).astype(np.int64) for k, n in ((0, w), (1, h)))
    x1, y1 = (np.clip(hi[:, k], -1, n - 1).astype(np.int64) for k, n in ((0, w), (1, h)))
    drawn = np.flatnonzero((area != 0) & (x1 >= x0) & (y1 >= y0))
    width = x1[drawn] - x0[drawn] + 1
    count = width * (y1[drawn] - y0[drawn] + 1)
    ends = np.cumsum(count)
    total = int(ends[-1]) if len(ends) else 0

    depth = np.full(h * w, -np.inf)
    nearest = np.full(h * w, -1, np.int64)
    for start in range(0, total, CHUNK):
        # Candidate g belongs to the drawn triangle whose range of candidates holds it.
        g = np.arange(start, min(start + CHUNK, total), dtype=np.int64)
        k = np.searchsorted(ends, g, side="right")
        local = g - (ends[k] - count[k])
        t = drawn[k]
        x = x0[t] + local % width[k]
        y = y0[t] + local // width[k]
        edges = _edges(corners[t, :, :2], x.astype(np.float64), y.astype(np.float64))
        sign = np.sign(area[t])
        inside = ((edges * sign) >= 0).all(axis=0)
        if not inside.any():
            continue
        t, x, y, edges = t[inside], x[inside], y[inside], edges[:, inside]
        z = (edges * corners[t, :, 2].T).sum(axis=0) / area[t]
        pixel = y * w + x
        # Nearest per pixel within the chunk: sorted by pixel, then z, then triangle descending,
        # the last of each pixel's run is the largest z and, among equals, the lowest triangle.
        order = np.lexsort((-t, z, pixel))
        pixel, z, t = pixel[order], z[order], t[order]
        last = np.append(pixel[1:] != pixel[:-1], True)
        pixel, z, t = pixel[last], z[last], t[last]
        better = (z > depth[pixel]) | ((z == depth[pixel]) & (t < nearest[pixel]))
        depth[pixel[better]] = z[better]
        nearest[pixel[better]] = t[better]

    covered = np.flatnonzero(nearest >= 0)
    values = np.zeros((h * w, attributes.shape[1]), np.float32)
    if len(covered) and attributes.shape[1]:
        t = nearest[covered]
        weights = _edges(corners[t, :, :2], (covered % w).astype(np.float64), (covered // w).astype(np.float64))
        weights /= area[t]
        values[covered] = np.einsum("kn,nkc->nc", weights, attributes[triangles[t]].astype(np.float64))
    return Raster(mask=(nearest >= 0).reshape(h, w), depth=depth.astype(np.float32).reshape(h, w),
                  triangle=nearest.astype(np.int32).reshape(h, w), values=values.reshape(h, w, attributes.shape[1]))
