"""A face's texture in the model's UV layout: the photo unwrapped onto a square image.

Each vertex takes the colour of the image at its (x, y) projection (bilinear, clamped to the
border), then the triangles are drawn in UV space with those colours interpolated
(:func:`~face3d_nb.core.raster.rasterize`), as upstream's ``uv_tex`` does. UV coordinates are in
0..1 with v up, as in OBJ files and BFM_UV.mat: (u, v) is pixel column ``u * (size - 1)``, row
``(1 - v) * (size - 1)``, so an OBJ using the same (u, v) as ``vt`` shows the texture the right way
round. Nothing is done about self-occlusion: a vertex hidden behind the nose in the photo takes
the colour of what hides it. Pixels no triangle covers stay black.
"""

from __future__ import annotations

import numpy as np

from .raster import rasterize

__all__ = ["sample_bilinear", "uv_texture"]


def sample_bilinear(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Colours (N, C) float32 of the (h, w, C) ``image`` at ``points`` (N, 2+) (x, y) pixels,
    bilinearly interpolated between pixel centres; points outside take the nearest border pixel's."""
    h, w = image.shape[:2]
    x = np.clip(points[:, 0].astype(np.float64), 0, w - 1)
    y = np.clip(points[:, 1].astype(np.float64), 0, h - 1)
    # The corner pixels' top-left one stays one short of the last row and column, so that its
    # neighbours exist; the point then weighs the far ones fully.
    x0 = np.clip(np.floor(x), 0, max(w - 2, 0)).astype(np.intp)
    y0 = np.clip(np.floor(y), 0, max(h - 2, 0)).astype(np.intp)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    top = image[y0, x0] * (1 - fx) + image[y0, x1] * fx
    bottom = image[y1, x0] * (1 - fx) + image[y1, x1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def uv_texture(image: np.ndarray, vertices: np.ndarray, triangles: np.ndarray, uv: np.ndarray,
               size: int = 512) -> np.ndarray:
    """The (size, size, 3) uint8 BGR texture of one face.

    ``image`` (h, w, 3) uint8 BGR, the picture the face was found in; ``vertices`` (K, 3) the face's
    mesh in its pixels (x right, y down); ``triangles`` (T, 3) int over them; ``uv`` (K, 2) each
    vertex's (u, v) in 0..1, v up; ``size`` the texture's side in pixels (2..8192).
    ``ValueError`` for arrays of the wrong shape or type.
    """
    image, vertices, uv = np.asarray(image), np.asarray(vertices), np.asarray(uv)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise ValueError(f"image must be (h, w, 3) uint8 BGR, got {image.shape} {image.dtype}")
    if vertices.ndim != 2 or vertices.shape[1] != 3 or not np.isfinite(vertices).all():
        raise ValueError(f"vertices must be (K, 3) finite pixel coordinates, got {vertices.shape}")
    if uv.shape != (len(vertices), 2) or not np.isfinite(uv).all():
        raise ValueError(f"uv must be (K, 2) finite, one row per vertex (K = {len(vertices)}), got {uv.shape}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 2 <= size <= 8192:
        raise ValueError(f"size must be an integer in 2..8192, got {size!r}")
    colors = sample_bilinear(image, vertices)
    side = size - 1
    # Flat in UV space: every z is 0, so where triangles overlap the lower index wins.
    points = np.column_stack([uv[:, 0] * side, (1 - uv[:, 1]) * side, np.zeros(len(uv))])
    drawn = rasterize(points, triangles, (size, size), colors)
    return np.clip(np.rint(drawn.values), 0, 255).astype(np.uint8)
