"""Image-pixel face meshes -> arrays ready for a 3D view: fitted to the view, y up, in the landmark frame.

Pure numpy (no widget imports), so the viewer's maths is testable on its own.

Meshes come from :class:`~face3d_nb.core.morphable.MorphableModel` in image pixels: x right, y down, z towards
the viewer. The view is three.js's: x right, y up, z towards the viewer, so y is negated; that
mirror reverses each triangle's winding, which :func:`view_index` undoes so counter-clockwise
front faces point out of the face.

The fit and the depth come from the faces' 68 landmarks, not from their meshes, so that a view that
decodes the mesh itself (the GPU transport, :mod:`~face3d_nb.view.gpu_packing`) places it identically.
``MorphableModel`` puts the minimum z of whatever it decodes at 0: the dense mesh and the 68
landmarks each get their own shift. Both transports draw in the landmarks' frame, the only one known
without decoding the mesh; :func:`landmark_frame_shift` is the one place that moves into it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["ViewTransform", "fit_faces", "landmark_frame_shift", "to_landmark_frame", "view_index"]

# A face mesh's box against its 68 landmarks' box (measured on the reference faces, within 5%):
# 1.06 times as wide, 1.29 times as tall, and centred 0.10 of its height higher (the forehead).
_MESH_PER_LANDMARKS = np.array([1.06, 1.29, 1.0])
_FOREHEAD = 0.10


@dataclass(frozen=True)
class ViewTransform:
    """Maps image pixels to view units: ``view = (p - center) * scale * (1, -1, 1)``.

    ``center`` (3,) float32 image pixels; ``scale`` view units per pixel. Chosen so the fitted
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


def fit_faces(landmarks: Sequence[np.ndarray]) -> ViewTransform:
    """The transform that centres the faces with these ``landmarks`` (each (68, 3) image pixels)
    together and fits their meshes to about one view unit; several faces keep their layout."""
    if not landmarks:
        raise ValueError("fit_faces needs at least one face")
    boxes = []
    for points in landmarks:
        lo, hi = points.min(axis=0), points.max(axis=0)
        half = (hi - lo) / 2 * _MESH_PER_LANDMARKS
        center = (lo + hi) / 2 - [0, _FOREHEAD * 2 * half[1], 0]
        boxes += [center - half, center + half]
    lo, hi = np.min(boxes, axis=0), np.max(boxes, axis=0)
    extent = float(max(hi[0] - lo[0], hi[1] - lo[1], 1e-6))
    return ViewTransform(center=((lo + hi) / 2).astype(np.float32), scale=1.0 / extent)


def landmark_frame_shift(z_at_landmarks: np.ndarray, landmarks: np.ndarray) -> float:
    """What to subtract from z to move points into the frame of the face's ``landmarks`` (68, 3)
    (as ``landmarks_3d`` returns them, their own minimum z at 0), given ``z_at_landmarks`` (68,),
    the z of the same 68 points in the points' present frame (the mean, against rounding)."""
    return float(np.mean(np.asarray(z_at_landmarks, np.float64) - landmarks[:, 2]))


def to_landmark_frame(vertices: np.ndarray, vertex_landmarks: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """``vertices`` (K, 3) as ``MorphableModel.vertices`` returns them moved along z into the frame of
    the face's ``landmarks`` (68, 3); ``vertex_landmarks`` (68,) are the landmarks' indices among
    the vertices. (K, 3) float32, a new array."""
    out = np.array(vertices, dtype=np.float32)
    out[:, 2] -= np.float32(landmark_frame_shift(vertices[vertex_landmarks, 2], landmarks))
    return out


def view_index(triangles: np.ndarray, n_vertices: int) -> np.ndarray:
    """(T*3,) uint32 the view's triangle index of ``triangles`` (T, 3) image-frame vertex indices
    below ``n_vertices``: winding reversed for the y-up view, so front faces are counter-clockwise."""
    tri = np.asarray(triangles)
    if tri.ndim != 2 or tri.shape[1] != 3 or tri.min() < 0 or tri.max() >= n_vertices:
        raise ValueError(f"triangles must be (T, 3) indices below {n_vertices}")
    return np.ascontiguousarray(tri[:, ::-1], dtype=np.uint32).reshape(-1)
