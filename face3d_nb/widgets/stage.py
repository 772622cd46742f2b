"""The 3D view's stage: the pythreejs scene, its three lights, the view camera with orbit controls,
the renderer and the shared flat-shaded material the position transport draws with.

Flat shading: the GPU transport has no vertex normals, and both transports look the same.
"""

from __future__ import annotations

import math

import pythreejs as three

__all__ = ["Stage"]

# Camera distance and field of view for a fitted face (one view unit across) to fill ~3/4 of the view.
_CAMERA_POSITION = (0.0, 0.0, 2.2)
_FOV = 35.0


def _power(intensity: float) -> float:
    """A point light's ``power`` for ``intensity``: pythreejs syncs both, and the page applies the
    power after the intensity, so a default power would override the intensity."""
    return 4 * math.pi * intensity


def key_position(azimuth: float, elevation: float) -> tuple[float, float, float]:
    """Where the key light sits, 3 view units from the origin, for ``azimuth`` degrees around the
    vertical axis (0 = from the front) and ``elevation`` degrees above the horizon."""
    az, el = math.radians(azimuth), math.radians(elevation)
    return (3 * math.cos(el) * math.sin(az), 3 * math.sin(el), 3 * math.cos(el) * math.cos(az))


class Stage:
    """The widgets every face mesh is shown among.

    ``material`` the shared ``MeshPhongMaterial`` (``color`` ``#rrggbb``, ``wireframe``);
    ``ambient``, ``key_light`` (directional, fixed in the scene, aimed at the origin) and
    ``point_light`` (a child of ``view_camera``: a head lamp for orbiting); ``view_camera`` the
    perspective camera, ``orbit`` its orbit controls; ``scene``; ``renderer`` (``width`` x
    ``height`` CSS pixels, class ``face3d-viewer``). Face meshes are added to the scene after the
    lights and the camera.
    """

    def __init__(self, color: str, wireframe: bool, ambient: float, key: float, point: float,
                 key_at: tuple[float, float, float], width: int, height: int):
        self.material = three.MeshPhongMaterial(color=color, wireframe=wireframe, shininess=20, side="DoubleSide",
                                                flatShading=True)
        self.ambient = three.AmbientLight(color="#ffffff", intensity=ambient)
        # Explicit (unused) shadows: left to the front end, pythreejs fails to create them under ipywidgets 8.
        self.key_light = three.DirectionalLight(
            color="#ffffff", intensity=key, position=key_at,
            shadow=three.DirectionalLightShadow(camera=three.OrthographicCamera(-2, 2, 2, -2, 0.1, 20)))
        self.point_light = three.PointLight(
            color="#ffffff", intensity=point, power=_power(point), position=(0, 0.5, 0),
            shadow=three.LightShadow(camera=three.PerspectiveCamera(90, 1, 0.1, 20)))
        self.view_camera = three.PerspectiveCamera(fov=_FOV, aspect=width / height, near=0.01, far=100,
                                                   position=_CAMERA_POSITION, children=[self.point_light])
        self.orbit = three.OrbitControls(controlling=self.view_camera, target=(0, 0, 0))
        self.scene = three.Scene(children=[self.ambient, self.key_light, self.view_camera], background="#202028")
        self.renderer = three.Renderer(scene=self.scene, camera=self.view_camera, controls=[self.orbit],
                                       width=width, height=height)
        self.renderer.add_class("face3d-viewer")

    def set_intensity(self, light: str, intensity: float) -> None:
        """Set the ``"ambient"``, ``"key"`` or ``"point"`` light's intensity."""
        target = {"ambient": self.ambient, "key": self.key_light, "point": self.point_light}[light]
        target.intensity = intensity
        if target is self.point_light:
            target.power = _power(intensity)

    def resize(self, width: int, height: int) -> None:
        self.renderer.width, self.renderer.height = width, height
        self.view_camera.aspect = width / height

    def reset_view(self) -> None:
        """Put the camera back where it started (undo orbiting, panning and zooming)."""
        self.orbit.exec_three_obj_method("reset")

    def add(self, mesh: three.Mesh) -> None:
        self.scene.children = (*self.scene.children, mesh)

    def remove(self, meshes: set[three.Mesh]) -> None:
        self.scene.children = tuple(c for c in self.scene.children if c not in meshes)

    def close(self) -> None:
        for widget in (self.renderer, self.orbit, self.scene, self.view_camera, self.point_light, self.key_light,
                       self.ambient, self.material):
            widget.close()
