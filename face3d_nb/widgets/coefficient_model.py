"""The model the page's GPU decodes face meshes from, as widgets, for the coefficient transport
(:mod:`~face3d_nb.widgets.coefficient_transport`).

Per model (a mesh detail level), sent once per page: the mean shape as the float32 ``position``
attribute, a float ``vertexIndex`` attribute, the view's triangle index and, when the model has a
basis, the basis texture (:func:`~face3d_nb.view.gpu_packing.pack_basis`; at full detail 9.2 MB of
12-bit values, or 12.0 MB of half floats). Per face: one ``ShaderMaterial`` (``static/face.vert``
with ``DECODE 1``, and ``face.frag``: :mod:`~face3d_nb.widgets.face_material`) on the shared geometry
(the points view: the same attributes without the index). Per update: that material's ``uniforms``
(:func:`~face3d_nb.view.gpu_packing.face_uniforms`, the frame uniforms, colour, lights and a ``seq``
number the page acknowledges through :class:`~face3d_nb.widgets.page_link.PageLink`), about 1.4 KB
instead of the position transport's 460 KB.

Built around what pythreejs 2.4.2 (three.js r97) accepts: uniform values are plain lists and
numbers (numpy arrays are refused; lists of 2-4, 9 and 16 numbers arrive as vectors and matrices,
so the pose goes as 9 numbers, column-major); the whole uniforms dict is sent on every change; a
texture uniform only deserialises as the last key of the dict, so the basis comes last and is the
only texture; ``frustumCulled`` is off, as three.js knows only the undecoded mean shape's bounds.
"""

from __future__ import annotations

import numpy as np
import pythreejs as three

from ..core.morphable import MorphableModel
from ..view.gpu_packing import BASIS_ENCODINGS, BasisTexture, FaceUniforms, pack_basis
from ..view.view_modes import Look, pncc_range
from .face_material import face_material, face_object

__all__ = ["CoefficientModel"]


class CoefficientModel:
    """The shared widgets of one model's shader meshes, and a factory for the meshes.

    ``model`` the morphable model of the detail level shown (its mean shape and basis);
    ``index`` the view's triangle index attribute (shared with the position transport);
    ``encoding`` the basis texture's (:data:`~face3d_nb.view.gpu_packing.BASIS_ENCODINGS`).
    ``texture`` is the packed basis (None without a basis).
    """

    def __init__(self, model: MorphableModel, index: three.BufferAttribute, encoding: str = "u12"):
        self.model = model
        self.texture: BasisTexture | None = None
        self._basis: three.DataTexture | None = None
        self._defines = defines = {"DECODE": "1", "COEFFICIENT_GROUPS": "0"}
        if model.basis is not None:
            self.texture = texture = pack_basis(model.basis, model.n_vertices, encoding)
            if encoding == "half":
                # Half floats travel as their bits; three.js uploads them as such for HalfFloatType.
                self._basis = three.DataTexture(data=texture.data.view(np.uint16), format="RGBAFormat",
                                                type="HalfFloatType")
            else:
                self._basis = three.DataTexture(data=texture.data, format="RGBAFormat", type="UnsignedByteType")
            defines.update(COEFFICIENT_GROUPS=str(texture.groups), BASIS_ROWS=f"{len(texture.data)}.0",
                           BASIS_SLOTS=str(texture.slots), BASIS_BITS=str(BASIS_ENCODINGS[encoding]))
        low, span = pncc_range(model.mean)
        self._mean_range = {"meanLow": low.tolist(), "meanSpan": span.tolist()}
        self._points: three.BufferGeometry | None = None
        self.position = three.BufferAttribute(model.mean, normalized=False)
        self.vertex_index = three.BufferAttribute(np.arange(model.n_vertices, dtype=np.float32), normalized=False)
        self.geometry = three.BufferGeometry(attributes={"position": self.position, "vertexIndex": self.vertex_index},
                                             index=index)

    def material(self, uniforms: dict[str, dict], look: Look, stage_material: three.MeshPhongMaterial
                 ) -> three.ShaderMaterial:
        """A face's own material for ``look`` (:func:`~face3d_nb.widgets.face_material.face_material`)."""
        return face_material(look, self._defines, uniforms, stage_material)

    def mesh(self, material: three.ShaderMaterial, look: Look) -> three.Object3D:
        """The shared geometry drawn by ``material`` as ``look`` draws it."""
        return face_object(look, self.geometry_for(look), material)

    def geometry_for(self, look: Look) -> three.BufferGeometry:
        """The geometry ``look`` draws: the points view's has no index (each vertex drawn once)."""
        if look.view != "points":
            return self.geometry
        if self._points is None:
            self._points = three.BufferGeometry(attributes=dict(self.geometry.attributes))
        return self._points

    def uniforms(self, face: FaceUniforms, appearance: dict[str, object], frame: dict[str, object],
                 seq: float) -> dict[str, dict]:
        """The ``uniforms`` value for a material: ``appearance``, the ``frame`` uniforms, then ``face``,
        the PNCC view's mean-shape range, ``seq`` and the basis last."""
        values = {**appearance, **frame, **face.as_lists(), **self._mean_range, "seq": float(seq)}
        if self._basis is not None:
            values["basis"] = self._basis
        return {name: {"value": value} for name, value in values.items()}

    def close(self) -> None:
        for widget in (self._points, self.geometry, self.position, self.vertex_index, self._basis):
            if widget is not None:
                widget.close()
