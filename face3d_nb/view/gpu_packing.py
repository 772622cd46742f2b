"""Decoding the face mesh on the GPU: the browser's share of the work, prepared (and emulated) in numpy.

The mesh is linear in the parameters, so the page can rebuild it from a few numbers per update if
it holds the model once::

    view = pose @ (mean + W a) + offset        (per vertex; pose (3, 3), offset (3,))

- Once per page: ``mean`` (K, 3) float32 model units as the geometry's ``position`` attribute, a
  float ``vertexIndex`` attribute (0..K-1), and ``W`` packed by :func:`pack_basis` into an RGBA
  half-float texture. Half floats halve the load; the mean shape stays out of the texture because
  its rounding (1/2048 of the face) would put visible noise on flat shading, while the deformations
  W a, normalised per coefficient, lose about 1/4000 of their own much smaller size.
- Per update (:func:`face_uniforms`): the pose and offset, already composed with the view
  transform, and the coefficients, scaled to undo the per-coefficient normalisation: 62 numbers in all.

Texture layout: coefficients are taken four at a time (``G = ceil(n / 4)`` groups, zero padded);
texel ``i = (3 G v + 3 g + c)`` holds ``W[4g:4g+4, 3v+c] / scale[4g:4g+4]`` for vertex ``v``, group
``g`` and axis ``c``, at column ``i % 2048`` and row ``i // 2048`` (WebGL 2 guarantees textures
2048 texels wide and high). The vertex shader adds ``dot(texel, coefficients[g])`` per group and
axis; every index stays below 2**24, so its float arithmetic is exact. :func:`emulate` does exactly
what the shader does, for tests.

The depth: ``MorphableModel`` shifts each decoded mesh so its minimum z is 0, which the page cannot
know without decoding; both transports draw in the frame of the face's 68 landmarks instead
(:func:`~face3d_nb.view.view_transform.landmark_frame_shift`), see :func:`face_affine`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.morphable import MorphableModel, image_affine, split_params
from .view_transform import ViewTransform, landmark_frame_shift

__all__ = ["TEXTURE_WIDTH", "BasisTexture", "FaceUniforms", "emulate", "face_affine", "face_uniforms", "pack_basis"]

TEXTURE_WIDTH = 2048
_MAX_ROWS = 2048


@dataclass(frozen=True)
class BasisTexture:
    """A model's deformation basis as the page's texture.

    ``data`` (rows, 2048, 4) float16 normalised basis (layout in the module docstring);
    ``scale`` (4 * groups,) float32 what each coefficient's texels were divided by;
    ``n_vertices`` K; ``groups`` G, four coefficients each.
    """

    data: np.ndarray
    scale: np.ndarray
    n_vertices: int
    groups: int

    @property
    def nbytes(self) -> int:
        return self.data.nbytes


def pack_basis(basis: np.ndarray, n_vertices: int) -> BasisTexture:
    """Pack ``basis`` (n, 3K) float32 (``MorphableModel.basis``: one row per coefficient, x, y, z per
    vertex) into a :class:`BasisTexture`."""
    basis = np.asarray(basis, np.float32)
    if basis.ndim != 2 or basis.shape[1] != 3 * n_vertices or len(basis) == 0:
        raise ValueError(f"basis must be (n, {3 * n_vertices}), got {basis.shape}")
    if not np.isfinite(basis).all():
        raise ValueError("basis has non-finite values")
    groups = -(-len(basis) // 4)
    texels = 3 * groups * n_vertices
    rows = -(-texels // TEXTURE_WIDTH)
    if rows > _MAX_ROWS:
        raise ValueError(f"a basis of {n_vertices} vertices needs {rows} texture rows, more than {_MAX_ROWS}")
    padded = np.zeros((4 * groups, 3 * n_vertices), np.float32)
    padded[: len(basis)] = basis
    peak = np.abs(padded).max(axis=1)
    scale = np.where(peak > 0, peak, 1).astype(np.float32)
    # (4G, K, 3) -> (K, G, 3, 4): texel (v, g, c) holds the four coefficients of group g.
    texel_values = (padded / scale[:, None]).reshape(groups, 4, n_vertices, 3).transpose(2, 0, 3, 1)
    data = np.zeros((rows * TEXTURE_WIDTH, 4), np.float16)
    data[:texels] = texel_values.reshape(texels, 4)
    return BasisTexture(data.reshape(rows, TEXTURE_WIDTH, 4), scale, n_vertices, groups)


@dataclass(frozen=True)
class FaceUniforms:
    """One face's numbers for the shader in one update, in view coordinates.

    ``pose`` (3, 3) and ``offset`` (3,) float32 map model units to view units (view transform included);
    ``coefficients`` (G, 4) float32 scaled to the texture's normalisation (G = 0 without a basis).
    """

    pose: np.ndarray
    offset: np.ndarray
    coefficients: np.ndarray

    def as_lists(self) -> dict[str, list[float]]:
        """Plain lists for the material's uniforms: ``pose`` column-major (9), ``offset`` (3) and,
        with a basis, ``coefficients`` flat (4G)."""
        out = {"pose": self.pose.T.reshape(-1).tolist(), "offset": self.offset.tolist()}
        if len(self.coefficients):
            out["coefficients"] = self.coefficients.reshape(-1).tolist()
        return out


def face_affine(model: MorphableModel, params: np.ndarray, roi_box, landmarks: np.ndarray) -> np.ndarray:
    """(3, 4) float64 affine from model units to image pixels in the frame of the face's
    ``landmarks`` (68, 3) image pixels, as ``model.landmarks_3d(params, roi_box)`` returns them."""
    affine = image_affine(params, roi_box).astype(np.float64)
    _, _, shp, exp = split_params(params)
    shape = model.mean[model.landmarks].astype(np.float64)
    if model.basis is not None:
        rows = model.basis.reshape(len(model.basis), -1, 3)[:, model.landmarks]
        shape += np.tensordot(np.concatenate([shp, exp]), rows, axes=1)
    affine[2, 3] -= landmark_frame_shift(shape @ affine[2, :3] + affine[2, 3], landmarks)
    return affine


def face_uniforms(model: MorphableModel, params: np.ndarray, roi_box, landmarks: np.ndarray,
                  transform: ViewTransform, texture: BasisTexture | None) -> FaceUniforms:
    """The uniforms that make the shader draw the face of ``params`` / ``roi_box`` / ``landmarks``
    as the position transport draws ``transform.apply`` of its mesh in the landmark frame.
    ``model`` is the level's model the ``texture`` was packed from (None for a model without basis)."""
    params = np.asarray(params, np.float32).reshape(-1)
    if not np.isfinite(params).all():
        raise ValueError("params must be finite")
    affine = face_affine(model, params, roi_box, landmarks)
    flip = np.array([1.0, -1.0, 1.0]) * transform.scale
    pose = (affine[:, :3] * flip[:, None]).astype(np.float32)
    offset = ((affine[:, 3] - transform.center) * flip).astype(np.float32)
    if texture is None:
        return FaceUniforms(pose, offset, np.zeros((0, 4), np.float32))
    _, _, shp, exp = split_params(params)
    coefficients = np.zeros(4 * texture.groups, np.float32)
    coefficients[: len(shp) + len(exp)] = np.concatenate([shp, exp])
    return FaceUniforms(pose, offset, (coefficients * texture.scale).reshape(-1, 4))


def emulate(mean: np.ndarray, texture: BasisTexture | None, uniforms: FaceUniforms) -> np.ndarray:
    """(K, 3) float32 view positions, computed the way ``static/decode.vert`` does (texel addresses
    in float32 included), so tests can check the layout and the uniforms without a browser."""
    shape = np.array(mean, np.float32)
    if texture is not None:
        flat = texture.data.reshape(-1, 4).astype(np.float32)
        first = np.arange(texture.n_vertices, dtype=np.float32) * np.float32(3 * texture.groups)
        for g in range(texture.groups):
            for c in range(3):
                index = first + np.float32(3 * g + c)
                row = np.floor(index / np.float32(TEXTURE_WIDTH))
                column = index - row * np.float32(TEXTURE_WIDTH)
                texel = flat[(row * TEXTURE_WIDTH + column).astype(np.int64)]
                shape[:, c] += texel @ uniforms.coefficients[g]
    return shape @ uniforms.pose.T + uniforms.offset
