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
from math import pi
from pathlib import Path

import cv2
import numpy as np
from threadpoolctl import ThreadpoolController

from ..models.safe_pickle import load_pkl

__all__ = ["MorphableModel", "Pose", "image_affine", "image_affines", "pose_from_params", "poses_from_params",
           "similar_transform", "split_params"]

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
    """Scale, rotation and Euler angles from the camera part of ``params`` (62,)."""
    return poses_from_params(np.asarray(params).reshape(1, -1))[0]


def poses_from_params(params: np.ndarray) -> list[Pose]:
    """One :class:`Pose` per row of ``params`` (N, 62), computed for all rows at once."""
    camera = np.asarray(params, dtype=np.float64)[:, :12].reshape(-1, 3, 4)
    rotation = camera[:, :, :3].copy()
    rows = rotation[:, :2]
    norms = np.sqrt(np.add.reduce(rows * rows, axis=2))
    rows /= norms[:, :, None]
    # The third row, r1 x r2, from the rows' components turned by one and by two places: np.cross
    # costs more than the rest of the pose together at this size.
    turned = rows[:, :, _TURNED]
    rotation[:, 2] = turned[:, 0, :3] * turned[:, 1, 1:] - turned[:, 0, 1:] * turned[:, 1, :3]
    angles = np.degrees(_euler(rotation.reshape(-1, 9))).tolist()
    scales = (np.add.reduce(norms, axis=1) * 0.5).tolist()
    t3d = camera[:, :, 3].copy()
    return [Pose(yaw, pitch, roll, scale, r, t)
            for (yaw, pitch, roll), scale, r, t in zip(angles, scales, rotation, t3d)]


_TURNED = [1, 2, 0, 1]
# Flat indices of r21, r10 and of r22, r00 in a row-major 3x3 rotation.
_SINES, _COSINES = [7, 3], [8, 0]


def _euler(flat: np.ndarray) -> np.ndarray:
    """(N, 3) yaw, pitch, roll in radians of rotations ``flat`` (N, 9), row-major."""
    angles = np.empty((len(flat), 3))
    angles[:, 0] = np.arcsin(np.minimum(np.maximum(flat[:, 6], -1.0), 1.0))
    # Upstream divides both arguments of each atan2 by cos(yaw), which is positive here: the same angle.
    angles[:, 1:] = np.arctan2(flat[:, _SINES], flat[:, _COSINES])
    # Near +-90 degrees of yaw the decomposition is degenerate; fix roll at 0 as upstream does. Per
    # face: a non-finite face in the batch must not change the others.
    degenerate = np.abs(flat[:, 6]) > 0.998
    if degenerate.any():
        sign = np.sign(flat[degenerate, 6])
        rows = flat[degenerate]
        angles[degenerate] = np.stack([sign * (pi / 2), np.arctan2(-sign * rows[:, 1], -sign * rows[:, 2]),
                                       np.zeros(len(rows))], axis=1)
    return angles


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
        # Homogeneous (x, y, z, 1) landmark shapes, so that posing them is one product with an affine map.
        ones = np.ones((68, 1), np.float32)
        self._landmark_mean = np.concatenate([self.mean[self.landmarks], ones], axis=1)
        self._landmark_basis = None
        if self.basis is not None:
            rows = self.basis.reshape(len(self.basis), -1, 3)[:, self.landmarks]
            zeros = np.zeros((len(rows), 68, 1), np.float32)
            self._landmark_basis = np.concatenate([rows, zeros], axis=2).reshape(len(rows), -1)

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

    def vertices(self, params: np.ndarray, roi_box) -> np.ndarray:
        """The dense mesh (V, 3) float32 in image pixels."""
        _, _, shp, exp = split_params(params)
        shape = self.mean
        if self.basis is not None:
            # One BLAS thread: this product takes ~2 ms, after which OpenBLAS's other threads
            # would spin idle for several more (measured: 13 ms of CPU per decode instead of 2.5).
            with _BLAS.limit(limits=1, user_api="blas"):
                shape = self.mean + (np.concatenate([shp, exp]) @ self.basis).reshape(-1, 3)
        # cv2.transform is ~10x faster than numpy's matmul plus broadcast add on (V, 3) float32.
        pts = cv2.transform(shape.reshape(-1, 1, 3), image_affine(params, roi_box)).reshape(-1, 3)
        pts[:, 2] -= pts[:, 2].min()
        return pts

    def landmarks_3d(self, params: np.ndarray, roi_box) -> np.ndarray:
        """The 68 landmarks (68, 3) float32 in image pixels of one face; see :meth:`landmarks_batch`."""
        return self.landmarks_batch(np.asarray(params).reshape(1, -1), np.asarray(roi_box).reshape(1, -1))[0]

    def landmarks_batch(self, params: np.ndarray, roi_boxes: np.ndarray) -> np.ndarray:
        """The 68 landmarks (N, 68, 3) float32 in image pixels of the faces ``params`` (N, 62) in
        ``roi_boxes`` (N, 4+), all at once: (N, 50) x (50, 68 x 4) coefficients to homogeneous shapes, then one
        batched product with each face's affine map. Each face's minimum z is 0."""
        params = _as_params(params)
        shape = self._landmark_mean
        if self._landmark_basis is not None:
            # A product this small runs on one BLAS thread anyway: no thread limit needed.
            shape = shape + (params[:, 12:] @ self._landmark_basis).reshape(len(params), len(self.landmarks), 4)
        pts = np.matmul(shape, image_affines(params, roi_boxes).transpose(0, 2, 1))
        pts[:, :, 2] -= np.minimum.reduce(pts[:, :, 2], axis=1, keepdims=True)
        return pts


def image_affine(params: np.ndarray, roi_box) -> np.ndarray:
    """The (3, 4) float32 affine map from model units to image pixels for ``params`` and ``roi_box``,
    before the shift that puts the minimum z at 0 (which depends on the decoded shape)."""
    return image_affines(np.asarray(params).reshape(1, -1), np.asarray(roi_box).reshape(1, -1))[0]


# Crop size (w, h) -> the crop->image scale of x, y (flipped: the crop frame's y points up) and z.
_CROP_SCALE = np.array([[1.0, 0.0, 0.5], [0.0, -1.0, 0.5]])
# The camera's offset in crop pixels, 1-based, y up: subtracted before scaling (see similar_transform).
_CROP_ORIGIN = np.array([[0, 0, 0, 1], [0, 0, 0, CROP_SIZE], [0, 0, 0, 1]], np.float64)
# The roi's corner (x1, y1) -> the translation column of a flattened (3, 4) affine.
_CORNER = np.zeros((2, 12))
_CORNER[0, 3] = _CORNER[1, 7] = 1.0


def image_affines(params: np.ndarray, roi_boxes: np.ndarray) -> np.ndarray:
    """:func:`image_affine` of each face: (N, 3, 4) float32 for ``params`` (N, 62) and ``roi_boxes`` (N, 4+)."""
    camera = _as_params(params)[:, :12].astype(np.float64).reshape(-1, 3, 4)
    rois = np.asarray(roi_boxes, dtype=np.float64)
    corner = rois[:, :2]
    # Pose and the crop->image map of similar_transform are both affine: compose them into one. The
    # scale is rounded to float32 first, as the crop maths of upstream's float32 arrays does.
    scale = ((rois[:, 2:4] - corner) @ _CROP_SCALE).astype(np.float32) / np.float32(CROP_SIZE)
    affine = (camera - _CROP_ORIGIN) * scale[:, :, None] + (corner @ _CORNER).reshape(-1, 3, 4)
    return affine.astype(np.float32)


def _as_params(params: np.ndarray) -> np.ndarray:
    params = np.asarray(params, dtype=np.float32)
    if params.ndim != 2 or params.shape[1] != 12 + N_SHAPE + N_EXPR:
        raise ValueError(f"expected parameters of shape (N, 62), got {params.shape}")
    return params


def _triangles(tri_pkl: str | Path) -> np.ndarray:
    tri = np.asarray(load_pkl(tri_pkl))
    # Upstream stores (3, T); take either orientation.
    return tri.T if tri.shape[0] == 3 and tri.shape[1] != 3 else tri
