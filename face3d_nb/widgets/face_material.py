"""The face shaders (``static/face.vert``, ``face.frag``) as pythreejs materials, for every view
(:mod:`~face3d_nb.view.view_modes`) and both mesh transports.

A material's ``uniforms`` are the appearance (:func:`appearance_uniforms`: colour, lights, opacity,
point size), the update's frame uniforms (:meth:`~face3d_nb.view.view_modes.FaceFrame.uniforms`)
and, last, the transport's own. ``frame``, the camera frame the texture view samples, is sent empty
(three.js then binds a blank texture): the page sets it to the frame the update names
(``static/frame_store.js``), as pythreejs 2.4.2 deserialises only one texture uniform, the last.
"""

from __future__ import annotations

import functools

import pythreejs as three

from ..view.view_modes import VIEWS, Look
from . import STATIC

__all__ = ["POINT_SIZE", "appearance_uniforms", "face_material", "face_object", "follow_stage", "shader"]

#: Pixels across one vertex of the points view.
POINT_SIZE = 1.0


@functools.cache
def _source(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


def shader(name: str, defines: dict[str, str]) -> str:
    """The source of ``static/name`` with ``defines`` prepended."""
    return "".join(f"#define {key} {value}\n" for key, value in defines.items()) + _source(name)


def appearance_uniforms(material: three.MeshPhongMaterial, ambient: three.AmbientLight,
                        key: three.DirectionalLight, point: three.PointLight) -> dict[str, object]:
    """The face shaders' appearance uniforms (values only) that make them shade like ``material``
    (its colour and opacity) lit by ``ambient``, ``key`` (aimed at the origin) and ``point`` (a child
    of the camera, so its position is in view space)."""
    return {
        "diffuse": material.color, "specular": material.specular, "shininess": float(material.shininess),
        "opacity": float(material.opacity), "pointSize": POINT_SIZE,
        "ambientColor": ambient.color, "ambientIntensity": float(ambient.intensity),
        "keyColor": key.color, "keyIntensity": float(key.intensity), "keyDirection": [float(v) for v in key.position],
        "pointColor": point.color, "pointIntensity": float(point.intensity),
        "pointPosition": [float(v) for v in point.position],
        "frame": None,
    }


def face_material(look: Look, vertex_defines: dict[str, str], uniforms: dict[str, dict],
                  stage_material: three.MeshPhongMaterial) -> three.ShaderMaterial:
    """A face's material for ``look``, created with its first update's ``uniforms`` (an update sent
    separately could reach the page before the mesh listens to it, and not be drawn);
    ``vertex_defines`` say how the vertex shader gets positions (``DECODE`` and the basis layout);
    wireframe and transparency follow ``stage_material``."""
    view = {"VIEW": str(VIEWS.index(look.view))}
    material = three.ShaderMaterial(vertexShader=shader("face.vert", {**vertex_defines, **view}),
                                    fragmentShader=shader("face.frag", view), uniforms=uniforms, side="DoubleSide",
                                    extensions={"derivatives": True})
    follow_stage(material, stage_material)
    return material


def follow_stage(material: three.ShaderMaterial, stage_material: three.MeshPhongMaterial) -> None:
    """Draw ``material`` as wireframe and transparent when the stage's material is."""
    material.wireframe, material.transparent = stage_material.wireframe, stage_material.transparent


def face_object(look: Look, geometry: three.BufferGeometry, material: three.ShaderMaterial) -> three.Object3D:
    """The scene object drawing ``geometry`` with ``material``: points for the points view (give it a
    geometry without index: each vertex once), else a mesh. Never culled: three.js knows only the
    bounds of what the kernel sent, not of what the shader draws."""
    kind = three.Points if look.view == "points" else three.Mesh
    return kind(geometry, material, frustumCulled=False)
