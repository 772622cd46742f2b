"""The 3D view's stage: the pythreejs scene, its three lights, the view camera with orbit controls,
the renderer and the shared flat-shaded material the position transport draws with; for drawing
over the camera frame, an orthographic camera on the frame's pixel space and the frame itself on a
quad behind the faces; the head-pose cubes.

Flat shading: the GPU transport has no vertex normals, and both transports look the same.
"""

from __future__ import annotations

import math

import numpy as np
import pythreejs as three

from ..view.view_modes import BOX_EDGES, frame_extent

__all__ = ["Stage"]

# Camera distance and field of view for a fitted face (one view unit across) to fill ~3/4 of the view.
_CAMERA_POSITION = (0.0, 0.0, 2.2)
_FOV = 35.0
# The orthographic camera looks down -z from here; the frame quad lies far behind every face.
_IMAGE_CAMERA_Z, _FRAME_Z = 10.0, -50.0
# A 1x1 black PNG: the frame texture's picture until the page puts a camera frame in it.
_BLANK = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
          "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
_BOX_COLOR = "#3cdc64"


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

    Over the frame (:meth:`use_frame`): ``image_camera`` (orthographic, no orbiting) spans the frame
    fitted by :meth:`fit_frame`; ``frame_quad`` shows ``frame_texture``, whose picture the page sets to
    the frame the faces came from (``static/frame_store.js``; rows top first, so ``flipY`` is off).
    ``pose_lines`` draws the head-pose cubes (:meth:`show_boxes`).
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
        self.width, self.height = width, height
        self.frame_size = (0, 0)
        self.image_camera = three.OrthographicCamera(-0.5, 0.5, 0.5, -0.5, 0.1, 100.0,
                                                     position=(0.0, 0.0, _IMAGE_CAMERA_Z))
        # Linear filters, no mipmaps and clamped edges: three.js leaves a frame of any size as it is.
        self.frame_texture = three.ImageTexture(imageUri=_BLANK, flipY=False, minFilter="LinearFilter",
                                                magFilter="LinearFilter", generateMipmaps=False,
                                                wrapS="ClampToEdgeWrapping", wrapT="ClampToEdgeWrapping")
        self._quad_position = three.BufferAttribute(np.zeros((4, 3), np.float32), normalized=False)
        self._quad_uv = three.BufferAttribute(np.array([[0, 0], [1, 0], [0, 1], [1, 1]], np.float32), normalized=False)
        self._quad_index = three.BufferAttribute(np.array([0, 2, 1, 1, 2, 3], np.uint32), normalized=False)
        self._quad_geometry = three.BufferGeometry(attributes={"position": self._quad_position, "uv": self._quad_uv},
                                                   index=self._quad_index)
        self._quad_material = three.MeshBasicMaterial(map=self.frame_texture, depthWrite=False)
        self.frame_quad = three.Mesh(self._quad_geometry, self._quad_material, visible=False, frustumCulled=False)
        self._box_position = three.BufferAttribute(np.zeros((2, 3), np.float32), normalized=False)
        self._box_geometry = three.BufferGeometry(attributes={"position": self._box_position})
        self._box_material = three.LineBasicMaterial(color=_BOX_COLOR, linewidth=2)
        self.pose_lines = three.LineSegments(self._box_geometry, self._box_material, visible=False,
                                             frustumCulled=False)
        self.scene.children = (*self.scene.children, self.frame_quad, self.pose_lines)

    def set_intensity(self, light: str, intensity: float) -> None:
        """Set the ``"ambient"``, ``"key"`` or ``"point"`` light's intensity."""
        target = {"ambient": self.ambient, "key": self.key_light, "point": self.point_light}[light]
        target.intensity = intensity
        if target is self.point_light:
            target.power = _power(intensity)

    def resize(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.view_camera.aspect = width / height
        self._fit_renderer()

    def use_frame(self, over: bool) -> None:
        """Draw over the camera frame in its pixel space (True), or in the free-orbit 3D view."""
        self.frame_quad.visible = over
        self.renderer.camera = self.image_camera if over else self.view_camera
        self.renderer.controls = [] if over else [self.orbit]
        self._fit_renderer()

    def fit_frame(self, height: int, width: int) -> None:
        """Span the orthographic camera and the frame quad over a ``height`` x ``width`` frame
        (:func:`~face3d_nb.view.view_modes.frame_transform` places faces on it)."""
        if (width, height) == self.frame_size:
            return
        self.frame_size = (width, height)
        right, top = frame_extent(height, width)
        cam = self.image_camera
        cam.left, cam.right, cam.top, cam.bottom = -right, right, top, -top
        self._quad_position.array = np.array([[-right, top, _FRAME_Z], [right, top, _FRAME_Z],
                                              [-right, -top, _FRAME_Z], [right, -top, _FRAME_Z]], np.float32)
        self._fit_renderer()

    def _fit_renderer(self) -> None:
        # Over the frame the view keeps its width and takes the frame's shape: one frame pixel per
        # view pixel when the widths match.
        width, height = self.frame_size
        over = self.renderer.camera is self.image_camera and width > 0
        self.renderer.width = self.width
        self.renderer.height = max(1, round(self.width * height / width)) if over else self.height

    def set_opacity(self, opacity: float) -> None:
        self.material.opacity = opacity
        self.material.transparent = opacity < 1

    def show_boxes(self, corners: list[np.ndarray]) -> None:
        """Draw a head-pose cube for each of ``corners`` ((8, 3) view positions each; none: hide)."""
        if corners:
            self._box_position.array = np.concatenate([c[BOX_EDGES].reshape(-1, 3) for c in corners])
        self.pose_lines.visible = bool(corners)

    def reset_view(self) -> None:
        """Put the camera back where it started (undo orbiting, panning and zooming)."""
        self.orbit.exec_three_obj_method("reset")

    def add(self, mesh: three.Mesh) -> None:
        self.scene.children = (*self.scene.children, mesh)

    def remove(self, meshes: set[three.Mesh]) -> None:
        self.scene.children = tuple(c for c in self.scene.children if c not in meshes)

    def close(self) -> None:
        for widget in (self.renderer, self.orbit, self.scene, self.view_camera, self.point_light, self.key_light,
                       self.ambient, self.material, self.image_camera, self.frame_quad, self._quad_geometry,
                       self._quad_position, self._quad_uv, self._quad_index, self._quad_material, self.frame_texture,
                       self.pose_lines, self._box_geometry, self._box_position, self._box_material):
            widget.close()
