"""The 3D morphable model decoder: 62 parameters -> pose, 68 landmarks and the dense face mesh.

Parameters (62,) are upstream's: a row-major 3x4 affine camera ``[R|t]`` (12, scale folded into
R), 40 identity and 10 expression coefficients. Geometry comes out in image pixels (x right,
y down, z towards the viewer, minimum z at 0) via upstream's ``similar_transform`` from the
120x120 crop frame to the roi box.

Two models: the full Basel Face Model subset ``bfm_noneck_v3`` (identity and expression change the
shape) or, when that file is not installed, the exact mean shape of the same 38,365 vertices
(identity and expression are ignored; the pose is still exact). ``MorphableModel.full`` says which.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import asin, atan2, cos, degrees, pi
from pathlib import Path

import cv2
import numpy as np
from threadpoolctl import ThreadpoolController

from ..models.safe_pickle import load_pkl

__all__ = ["MorphableModel", "Pose", "image_affine", "pose_from_params", "similar_transform", "split_params"]

N_SHAPE, N_EXPR = 40, 10
# Side of the square crop the regressor sees; the camera matrix maps model units to its pixels.
CROP_SIZE = 120
_BLAS = ThreadpoolController()


@dataclass(frozen=True)
class Pose:
    """Head pose decomposed from the camera matrix.

    ``yaw``, ``pitch``, ``roll`` in degrees (upstream's ``matrix2angle`` order and signs);
    ``scale`` (unitless, model units to crop pixels); ``rotation`` (3, 3) orthonormal; ``t3d`` (3,)
    translation in crop pixels.
    """

    yaw: float
    pitch: float
    roll: float
    scale: float
    rotation: np.ndarray
    t3d: np.ndarray


def split_params(params: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(62,) -> scaled rotation R (3, 3), offset (3,), identity (40,), expression (10,)."""
    params = np.asarray(params, dtype=np.float32).reshape(-1)
    if params.size != 12 + N_SHAPE + N_EXPR:
        raise ValueError(f"expected 62 parameters, got {params.size}")
    camera = params[:12].reshape(3, 4)
    return camera[:, :3], camera[:, 3], params[12 : 12 + N_SHAPE], params[12 + N_SHAPE :]


def pose_from_params(params: np.ndarray) -> Pose:
    """Scale, rotation and Euler angles from the camera part of ``params``."""
    camera = np.asarray(params, dtype=np.float64).reshape(-1)[:12].reshape(3, 4)
    r1, r2 = camera[0, :3], camera[1, :3]
    n1, n2 = np.linalg.norm(r1), np.linalg.norm(r2)
    r1, r2 = r1 / n1, r2 / n2
    rotation = np.stack([r1, r2, np.cross(r1, r2)])
    yaw, pitch, roll = _euler(rotation)
    return Pose(degrees(yaw), degrees(pitch), degrees(roll), float((n1 + n2) / 2), rotation, camera[:, 3].copy())


def _euler(r: np.ndarray) -> tuple[float, float, float]:
    # Near +-90 degrees of yaw the decomposition is degenerate; fix roll at 0 as upstream does.
    if r[2, 0] > 0.998:
        return pi / 2, atan2(-r[0, 1], -r[0, 2]), 0.0
    if r[2, 0] < -0.998:
        return -pi / 2, atan2(r[0, 1], r[0, 2]), 0.0
    yaw = asin(r[2, 0])
    c = cos(yaw)
    return yaw, atan2(r[2, 1] / c, r[2, 2] / c), atan2(r[1, 0] / c, r[0, 0] / c)


def similar_transform(points: np.ndarray, roi_box, size: int = CROP_SIZE) -> np.ndarray:
    """Map points (N, 3) from the ``size``-pixel crop frame (y up) to image pixels of ``roi_box``.

    Works in place on a float32 copy; z is scaled like x and y and shifted so its minimum is 0.
    """
    pts = np.array(points, dtype=np.float32)
    sx, sy, ex, ey = (float(v) for v in roi_box[:4])
    scale_x, scale_y = (ex - sx) / size, (ey - sy) / size
    # The -1 undoes the 1-based pixel indexing of the Matlab code the model was fitted with.
    pts[:, 0] = (pts[:, 0] - 1) * scale_x + sx
    pts[:, 1] = (size - pts[:, 1]) * scale_y + sy
    pts[:, 2] = (pts[:, 2] - 1) * ((scale_x + scale_y) / 2)
    pts[:, 2] -= pts[:, 2].min()
    return pts


class MorphableModel:
    """Mean shape, optional identity/expression basis, triangles and landmark vertices.

    Attributes: ``mean`` (V, 3) float32 model units; ``basis`` (50, V*3) float32, one row per
    coefficient (40 identity, then 10 expression) with columns x, y, z per vertex, or None in
    mean-shape mode; ``triangles`` (T, 3) int32; ``landmarks`` (68,) vertex indices; ``full``
    True when identity and expression are used.
    """

    def __init__(self, mean: np.ndarray, basis: np.ndarray | None, triangles: np.ndarray, landmarks: np.ndarray):
        self.mean = np.ascontiguousarray(mean, dtype=np.float32).reshape(-1, 3)
        n = len(self.mean)
        # Coefficient-major so a decode is one vector-matrix product over contiguous rows: three
        # times faster than the vertex-major matrix-vector product here.
        self.basis = None if basis is None else np.ascontiguousarray(basis, dtype=np.float32)
        if self.basis is not None and self.basis.shape != (N_SHAPE + N_EXPR, 3 * n):
            raise ValueError(f"basis has shape {self.basis.shape}, expected ({N_SHAPE + N_EXPR}, {3 * n})")
        self.triangles = np.ascontiguousarray(triangles, dtype=np.int32)
        if self.triangles.ndim != 2 or self.triangles.shape[1] != 3 or self.triangles.max() >= n or self.triangles.min() < 0:
            raise ValueError(f"triangles must be (T, 3) indices below {n}")
        self.landmarks = np.asarray(landmarks, dtype=np.intp)
        if self.landmarks.shape != (68,) or self.landmarks.max() >= n:
            raise ValueError("expected 68 landmark vertex indices")
        rows = (3 * self.landmarks[:, None] + np.arange(3)).reshape(-1)
        self._landmark_mean = self.mean[self.landmarks]
        self._landmark_basis = None if self.basis is None else np.ascontiguousarray(self.basis[:, rows])

    @property
    def full(self) -> bool:
        return self.basis is not None

    @property
    def n_vertices(self) -> int:
        return len(self.mean)

    @classmethod
    def from_bfm(cls, bfm_pkl: str | Path, tri_pkl: str | Path) -> MorphableModel:
        """The full model from upstream's ``bfm_noneck_v3.pkl`` and ``tri.pkl``."""
        bfm = load_pkl(bfm_pkl)
        try:
            u, w_shp, w_exp, keypoints = (np.asarray(bfm[k]) for k in ("u", "w_shp", "w_exp", "keypoints"))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{bfm_pkl}: not a BFM file (missing {exc})") from None
        basis = np.concatenate([w_shp[:, :N_SHAPE], w_exp[:, :N_EXPR]], axis=1).T
        return cls(u.reshape(-1, 3), basis, _triangles(tri_pkl), keypoints.reshape(-1)[0::3] // 3)

    @classmethod
    def from_mean(cls, u_shp: str | Path, u_exp: str | Path, keypoints: str | Path, indices: str | Path, tri_pkl: str | Path) -> MorphableModel:
        """Mean-shape mode: the full BFM mean shape and expression, restricted to the no-neck vertices."""
        full = (np.load(u_shp, allow_pickle=False) + np.load(u_exp, allow_pickle=False)).reshape(-1, 3)
        idx = np.load(indices, allow_pickle=False).astype(np.intp)
        inverse = np.full(len(full), -1, np.intp)
        inverse[idx] = np.arange(len(idx))
        landmarks = inverse[np.load(keypoints, allow_pickle=False).astype(np.intp)[0::3] // 3]
        if (landmarks < 0).any():
            raise ValueError("a landmark vertex is missing from the no-neck model")
        return cls(full[idx], None, _triangles(tri_pkl), landmarks)

    def reduced(self, vertices: np.ndarray, triangles: np.ndarray) -> MorphableModel:
        """The model restricted to ``vertices`` (K,) with ``triangles`` over them; only those
        rows of the basis are kept, so decoding costs K/V of the full model. The landmark
        vertices must be among ``vertices``."""
        vertices = np.asarray(vertices, np.intp)
        index = np.full(self.n_vertices, -1, np.intp)
        index[vertices] = np.arange(len(vertices))
        if (index[self.landmarks] < 0).any():
            raise ValueError("a reduced model must keep the 68 landmark vertices")
        basis = None
        if self.basis is not None:
            basis = self.basis.reshape(len(self.basis), -1, 3)[:, vertices].reshape(len(self.basis), -1)
        return MorphableModel(self.mean[vertices], basis, triangles, index[self.landmarks])

    def _posed(self, params: np.ndarray, roi_box, mean: np.ndarray, basis: np.ndarray | None) -> np.ndarray:
        _, _, shp, exp = split_params(params)
        shape = mean
        if basis is not None:
            # One BLAS thread: this product takes ~2 ms, after which OpenBLAS's other threads
            # would spin idle for several more (measured: 13 ms of CPU per decode instead of 2.5).
            with _BLAS.limit(limits=1, user_api="blas"):
                shape = mean + (np.concatenate([shp, exp]) @ basis).reshape(-1, 3)
        # cv2.transform is ~10x faster than numpy's matmul plus broadcast add on (V, 3) float32.
        pts = cv2.transform(shape.reshape(-1, 1, 3), image_affine(params, roi_box)).reshape(-1, 3)
        pts[:, 2] -= pts[:, 2].min()
        return pts

    def landmarks_3d(self, params: np.ndarray, roi_box) -> np.ndarray:
        """The 68 landmarks (68, 3) float32 in image pixels."""
        return self._posed(params, roi_box, self._landmark_mean, self._landmark_basis)

    def vertices(self, params: np.ndarray, roi_box) -> np.ndarray:
        """The dense mesh (V, 3) float32 in image pixels."""
        return self._posed(params, roi_box, self.mean, self.basis)


def image_affine(params: np.ndarray, roi_box) -> np.ndarray:
    """The (3, 4) float32 affine map from model units to image pixels for ``params`` and ``roi_box``,
    before the shift that puts the minimum z at 0 (which depends on the decoded shape)."""
    rotation, offset, _, _ = split_params(params)
    # Pose and the crop->image map of similar_transform are both affine: compose them into one.
    sx, sy, ex, ey = (float(v) for v in roi_box[:4])
    scale = np.array([ex - sx, sy - ey, (ex - sx + ey - sy) / 2], np.float32) / CROP_SIZE
    linear = rotation * scale[:, None]
    shift = (offset - [1, CROP_SIZE, 1]) * scale + [sx, sy, 0]
    return np.hstack([linear, shift[:, None]]).astype(np.float32)


def _triangles(tri_pkl: str | Path) -> np.ndarray:
    tri = np.asarray(load_pkl(tri_pkl))
    # Upstream stores (3, T); take either orientation.
    return tri.T if tri.shape[0] == 3 and tri.shape[1] != 3 else tri
