"""Image-pixel face meshes -> arrays ready for a 3D view: framed, y up, with per-vertex normals.

Pure numpy/scipy (no widget imports), so the viewer's maths is testable on its own.

Meshes come from :class:`~face3d_nb.core.morphable.MorphableModel` in image pixels: x right, y down, z towards
the viewer. The view frame is three.js's: x right, y up, z towards the viewer, so y is negated;
that mirror reverses each triangle's winding, which :class:`MeshTopology` undoes once so
counter-clockwise front faces (and the normals built from them) point out of the face.

Framing and depth come from the faces' 68 landmarks, not from their meshes, so that a view that
decodes the mesh itself (the GPU transport, :mod:`~face3d_nb.view.gpu_packing`) frames it identically.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse

__all__ = ["Framing", "MeshTopology", "frame_faces", "to_landmark_frame"]

# A face mesh's box against its 68 landmarks' box (measured on the reference faces, within 5%):
# 1.06 times as wide, 1.29 times as tall, and centred 0.10 of its height higher (the forehead).
_MESH_PER_LANDMARKS = np.array([1.06, 1.29, 1.0])
_FOREHEAD = 0.10


@dataclass(frozen=True)
class Framing:
    """Maps image pixels to view units: ``view = (p - center) * scale * (1, -1, 1)``.

    ``center`` (3,) float32 image pixels; ``scale`` view units per pixel. Chosen so the framed
    faces span about one view unit along their longest side, centred on the origin.
    """

    center: np.ndarray
    scale: float

    def apply(self, vertices: np.ndarray) -> np.ndarray:
        """(V, 3) image pixels -> (V, 3) float32 C-contiguous view coordinates."""
        out = np.subtract(vertices, self.center, dtype=np.float32)
        out *= np.float32(self.scale)
        out[:, 1] *= -1
        return out


def frame_faces(landmarks: Sequence[np.ndarray]) -> Framing:
    """The framing that centres the faces with these ``landmarks`` (each (68, 3) image pixels)
    together and fits their meshes to about one view unit; several faces keep their layout."""
    if not landmarks:
        raise ValueError("frame_faces needs at least one face")
    boxes = []
    for points in landmarks:
        lo, hi = points.min(axis=0), points.max(axis=0)
        half = (hi - lo) / 2 * _MESH_PER_LANDMARKS
        center = (lo + hi) / 2 - [0, _FOREHEAD * 2 * half[1], 0]
        boxes += [center - half, center + half]
    lo, hi = np.min(boxes, axis=0), np.max(boxes, axis=0)
    extent = float(max(hi[0] - lo[0], hi[1] - lo[1], 1e-6))
    return Framing(center=((lo + hi) / 2).astype(np.float32), scale=1.0 / extent)


def to_landmark_frame(vertices: np.ndarray, vertex_landmarks: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """``vertices`` (K, 3) as ``MorphableModel.vertices`` returns them (their minimum z at 0) moved
    along z into the frame of the face's ``landmarks`` (68, 3) from ``landmarks_3d``, whose own
    minimum z is at 0; ``vertex_landmarks`` (68,) are the landmarks' indices among the vertices.
    Only that frame is known without decoding the mesh, so both transports draw in it."""
    shift = np.mean(vertices[vertex_landmarks, 2] - landmarks[:, 2], dtype=np.float64)
    out = np.array(vertices, dtype=np.float32)
    out[:, 2] -= np.float32(shift)
    return out


class MeshTopology:
    """The static part of a face mesh: triangles, as the view index, and a vertex-normal operator.

    ``index`` (T*3,) uint32: triangles of the y-up view frame (winding reversed from image pixels).
    ``normals(view_vertices)`` (V, 3) float32 unit normals, each the area-weighted mean of its
    triangles' normals (a sparse (V, T) incidence product: a few ms for the 38k-vertex face).
    """

    def __init__(self, triangles: np.ndarray, n_vertices: int):
        tri = np.ascontiguousarray(np.asarray(triangles)[:, ::-1], dtype=np.int64)
        if tri.ndim != 2 or tri.shape[1] != 3 or tri.min() < 0 or tri.max() >= n_vertices:
            raise ValueError(f"triangles must be (T, 3) indices below {n_vertices}")
        self.n_vertices = n_vertices
        self._tri = tri
        self.index = tri.astype(np.uint32).reshape(-1)
        rows = tri.reshape(-1)
        cols = np.repeat(np.arange(len(tri)), 3)
        self._incidence = scipy.sparse.csr_matrix(
            (np.ones(len(rows), np.float32), (rows, cols)), shape=(n_vertices, len(tri))
        )

    def normals(self, vertices: np.ndarray) -> np.ndarray:
        if vertices.shape != (self.n_vertices, 3):
            raise ValueError(f"expected ({self.n_vertices}, 3) vertices, got {vertices.shape}")
        a, b, c = (vertices[self._tri[:, k]] for k in range(3))
        # Unnormalised cross products weight each triangle by its area.
        face_normals = np.cross(b - a, c - a)
        normals = np.asarray(self._incidence @ face_normals, dtype=np.float32)
        length = np.linalg.norm(normals, axis=1, keepdims=True)
        normals /= np.maximum(length, np.float32(1e-12))
        return normals
