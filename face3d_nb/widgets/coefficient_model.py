"""The model the page's GPU decodes face meshes from, as widgets, for the coefficient transport
(:mod:`~face3d_nb.widgets.coefficient_transport`).

Per model (a mesh detail level), sent once per page: the mean shape as the float32 ``position``
attribute, a float ``vertexIndex`` attribute, the view's triangle index and, when the model has a
basis, the basis texture (:func:`~face3d_nb.view.gpu_packing.pack_basis`; at full detail 9.2 MB of
12-bit values, or 12.0 MB of half floats). Per face: one ``ShaderMaterial`` (``static/decode.vert``
and ``decode.frag``) on the shared geometry. Per update: that material's ``uniforms``
(:func:`~face3d_nb.view.gpu_packing.face_uniforms` plus colour, lights and a ``seq`` number the page
acknowledges through :class:`~face3d_nb.widgets.page_link.PageLink`), about 1.4 KB instead of the
position transport's 460 KB.

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
from . import STATIC

__all__ = ["CoefficientModel", "appearance_uniforms"]


def _shader(name: str, defines: dict[str, str]) -> str:
    source = (STATIC / name).read_text(encoding="utf-8")
    return "".join(f"#define {key} {value}\n" for key, value in defines.items()) + source


def appearance_uniforms(material: three.MeshPhongMaterial, ambient: three.AmbientLight,
                        key: three.DirectionalLight, point: three.PointLight) -> dict[str, object]:
    """The decode shader's colour and light uniforms (values only) that make it shade like
    ``material`` lit by ``ambient``, ``key`` (aimed at the origin) and ``point`` (a child of the
    camera, so its position is in view space)."""
    return {
        "diffuse": material.color, "specular": material.specular, "shininess": float(material.shininess),
        "ambientColor": ambient.color, "ambientIntensity": float(ambient.intensity),
        "keyColor": key.color, "keyIntensity": float(key.intensity), "keyDirection": [float(v) for v in key.position],
        "pointColor": point.color, "pointIntensity": float(point.intensity),
        "pointPosition": [float(v) for v in point.position],
    }


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
        defines = {"COEFFICIENT_GROUPS": "0"}
        if model.basis is not None:
            self.texture = texture = pack_basis(model.basis, model.n_vertices, encoding)
            if encoding == "half":
                # Half floats travel as their bits; three.js uploads them as such for HalfFloatType.
                self._basis = three.DataTexture(data=texture.data.view(np.uint16), format="RGBAFormat",
                                                type="HalfFloatType")
            else:
                self._basis = three.DataTexture(data=texture.data, format="RGBAFormat", type="UnsignedByteType")
            defines = {"COEFFICIENT_GROUPS": str(texture.groups), "BASIS_ROWS": f"{len(texture.data)}.0",
                       "BASIS_SLOTS": str(texture.slots), "BASIS_BITS": str(BASIS_ENCODINGS[encoding])}
        self._vertex_shader = _shader("decode.vert", defines)
        self._fragment_shader = _shader("decode.frag", {})
        self.position = three.BufferAttribute(model.mean, normalized=False)
        self.vertex_index = three.BufferAttribute(np.arange(model.n_vertices, dtype=np.float32), normalized=False)
        self.geometry = three.BufferGeometry(attributes={"position": self.position, "vertexIndex": self.vertex_index},
                                             index=index)

    def material(self, uniforms: dict[str, dict], wireframe: bool) -> three.ShaderMaterial:
        """A face's own material, created with its first update's :meth:`uniforms` (an update sent
        separately could reach the page before the mesh listens to it, and not be drawn)."""
        return three.ShaderMaterial(vertexShader=self._vertex_shader, fragmentShader=self._fragment_shader,
                                    uniforms=uniforms, side="DoubleSide", wireframe=wireframe,
                                    extensions={"derivatives": True})

    def mesh(self, material: three.ShaderMaterial) -> three.Mesh:
        """A mesh of the shared geometry drawn by ``material``."""
        return three.Mesh(self.geometry, material, frustumCulled=False)

    def uniforms(self, face: FaceUniforms, appearance: dict[str, object], seq: float) -> dict[str, dict]:
        """The ``uniforms`` value for a material: ``appearance``, then ``face``, ``seq`` and the basis last."""
        values = {**appearance, **face.as_lists(), "seq": float(seq)}
        if self._basis is not None:
            values["basis"] = self._basis
        return {name: {"value": value} for name, value in values.items()}

    def close(self) -> None:
        for widget in (self.geometry, self.position, self.vertex_index, self._basis):
            if widget is not None:
                widget.close()
