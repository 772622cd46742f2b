"""Decoding the face mesh on the GPU: the browser's share of the work, prepared (and emulated) in numpy.

The mesh is linear in the parameters, so the page can rebuild it from a few numbers per update if
it holds the model once::

    view = pose @ (mean + W a) + offset        (per vertex; pose (3, 3), offset (3,))

- Once per page: ``mean`` (K, 3) float32 model units as the geometry's ``position`` attribute, a
  float ``vertexIndex`` attribute (0..K-1), and ``W`` packed by :func:`pack_basis` into an RGBA
  texture. The mean shape stays out of the texture because rounding it (1/2048 of the face) would
  put visible noise on flat shading; the deformations ``W a``, normalised per coefficient, need
  about 12 bits. With 8 (steps of 1/127 of each coefficient's largest deformation) the
  flat-shaded normals of the real-sized synthetic basis turn by 4 degrees (median; 20 at the 99th
  percentile) and the face looks grainy (tests/browser/test_transport.py's comparison with the
  position transport: 1.55 levels mean difference, over its limit of 1); with 12 bits or half
  floats they turn by 0.25 or 0.2 degrees (0.15 or 0.14 levels).
- Per update (:func:`face_uniforms`): the pose and offset, already composed with the view
  transform, and the coefficients, scaled to undo the per-coefficient normalisation: 62 numbers in all.

Texture layout (:data:`BASIS_ENCODINGS`): coefficients are taken four at a time (``G = ceil(n / 4)``
groups, zero padded), and each vertex ``v`` has ``S`` slots of three texels, one per axis ``c``:
texel ``i = 3 S v + 3 s + c``, at column ``i % 2048`` and row ``i // 2048`` (WebGL 2 guarantees
textures 2048 texels wide and high).

- ``"half"`` (``S = G``, half floats, 8 bytes a texel): slot ``g`` holds
  ``W[4g:4g+4, 3v+c] / scale[4g:4g+4]``, within -1..1.
- ``"u12"`` (``S = G + ceil(G / 2)``, bytes, 4 a texel; 23 % smaller at the real model's size):
  each value is the integer ``u = 2048 + round(2047 W / peak)`` (1..4095), so ``W = (u - 2048) *
  scale`` with ``scale = peak / 2047``; slot ``g < G`` holds the high bytes ``u // 16`` of group
  ``g``, slot ``G + p`` the low four bits of groups ``2p`` (times 16) and ``2p + 1`` (added).

The vertex shader adds ``dot(values, coefficients[g])`` per group and axis; every index stays below
2**24, so its float arithmetic is exact. :func:`emulate` does exactly what the shader does, for tests.

The depth: ``MorphableModel`` shifts each decoded mesh so its minimum z is 0, which the page cannot
know without decoding; both transports draw in the frame of the face's 68 landmarks instead
(:func:`~face3d_nb.view.view_transform.landmark_frame_shift`), see :func:`face_affine`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.morphable import MorphableModel, image_affine, split_params
from .view_transform import ViewTransform, landmark_frame_shift

__all__ = ["BASIS_ENCODINGS", "TEXTURE_WIDTH", "BasisTexture", "FaceUniforms", "emulate", "face_affine",
           "face_uniforms", "pack_basis"]

TEXTURE_WIDTH = 2048
_MAX_ROWS = 2048
#: The texture encodings of the basis (layouts in the module docstring): bits per value.
BASIS_ENCODINGS = {"half": 16, "u12": 12}
_U12_ZERO, _U12_STEPS = 2048, 2047


@dataclass(frozen=True)
class BasisTexture:
    """A model's deformation basis as the page's texture.

    ``data`` (rows, 2048, 4) the texels: float16 (``"half"``) or uint8 (``"u12"``), layout in the
    module docstring; ``scale`` (4 * groups,) float32 what a coefficient's decoded texel values are
    multiplied by to give its deformation; ``n_vertices`` K; ``groups`` G, four coefficients each;
    ``encoding`` one of :data:`BASIS_ENCODINGS`.
    """

    data: np.ndarray
    scale: np.ndarray
    n_vertices: int
    groups: int
    encoding: str = "half"

    @property
    def nbytes(self) -> int:
        return self.data.nbytes

    @property
    def slots(self) -> int:
        """S, the texel slots per vertex and axis."""
        return _slots(self.groups, self.encoding)


def _slots(groups: int, encoding: str) -> int:
    return groups + (groups + 1) // 2 if encoding == "u12" else groups


def pack_basis(basis: np.ndarray, n_vertices: int, encoding: str = "half") -> BasisTexture:
    """Pack ``basis`` (n, 3K) float32 (``MorphableModel.basis``: one row per coefficient, x, y, z per
    vertex) into a :class:`BasisTexture` of ``encoding`` (one of :data:`BASIS_ENCODINGS`)."""
    if encoding not in BASIS_ENCODINGS:
        raise ValueError(f"encoding must be one of {', '.join(BASIS_ENCODINGS)}, got {encoding!r}")
    basis = np.asarray(basis, np.float32)
    if basis.ndim != 2 or basis.shape[1] != 3 * n_vertices or len(basis) == 0:
        raise ValueError(f"basis must be (n, {3 * n_vertices}), got {basis.shape}")
    if not np.isfinite(basis).all():
        raise ValueError("basis has non-finite values")
    groups = -(-len(basis) // 4)
    slots = _slots(groups, encoding)
    texels = 3 * slots * n_vertices
    rows = -(-texels // TEXTURE_WIDTH)
    if rows > _MAX_ROWS:
        raise ValueError(f"a basis of {n_vertices} vertices needs {rows} texture rows, more than {_MAX_ROWS}")
    padded = np.zeros((4 * groups, 3 * n_vertices), np.float32)
    padded[: len(basis)] = basis
    peak = np.abs(padded).max(axis=1)
    peak = np.where(peak > 0, peak, 1).astype(np.float32)
    # (4G, K, 3) -> (K, G, 3, 4): the values of group g for vertex v and axis c.
    normalised = (padded / peak[:, None]).reshape(groups, 4, n_vertices, 3).transpose(2, 0, 3, 1)
    data = np.zeros((rows * TEXTURE_WIDTH, 4), np.float16 if encoding == "half" else np.uint8)
    slot_view = data[:texels].reshape(n_vertices, slots, 3, 4)
    if encoding == "half":
        slot_view[:] = normalised
        return BasisTexture(data.reshape(rows, TEXTURE_WIDTH, 4), peak, n_vertices, groups, encoding)
    values = (np.rint(normalised * _U12_STEPS) + _U12_ZERO).astype(np.int16)
    slot_view[:, :groups] = values >> 4
    slot_view[:, groups:] = (values[:, 0::2] & 15) << 4
    slot_view[:, groups: groups + groups // 2] |= (values[:, 1::2] & 15).astype(np.uint8)
    return BasisTexture(data.reshape(rows, TEXTURE_WIDTH, 4), (peak / _U12_STEPS).astype(np.float32), n_vertices,
                        groups, encoding)


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
    ``model`` is the level's model the ``texture`` was packed from (``texture`` None: a model without basis)."""
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
    if texture is None:
        return shape @ uniforms.pose.T + uniforms.offset
    flat = texture.data.reshape(-1, 4).astype(np.float32)
    first = np.arange(texture.n_vertices, dtype=np.float32) * np.float32(3 * texture.slots)
    a = uniforms.coefficients

    def fetch(slot: int, axis: int) -> np.ndarray:
        index = first + np.float32(3 * slot + axis)
        row = np.floor(index / np.float32(TEXTURE_WIDTH))
        column = index - row * np.float32(TEXTURE_WIDTH)
        return flat[(row * TEXTURE_WIDTH + column).astype(np.int64)]

    for c in range(3):
        if texture.encoding == "half":
            for g in range(texture.groups):
                shape[:, c] += fetch(g, c) @ a[g]
            continue
        zero, sixteen = np.float32(_U12_ZERO), np.float32(16)
        for p in range(texture.slots - texture.groups):
            low = fetch(texture.groups + p, c)
            upper = np.floor(low / sixteen)
            shape[:, c] += (sixteen * fetch(2 * p, c) + upper - zero) @ a[2 * p]
            if 2 * p + 1 < texture.groups:
                shape[:, c] += (sixteen * fetch(2 * p + 1, c) + low - sixteen * upper - zero) @ a[2 * p + 1]
    return shape @ uniforms.pose.T + uniforms.offset
