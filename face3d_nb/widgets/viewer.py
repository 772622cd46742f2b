"""The 3D view: a pythreejs scene with one mesh per tracked face, updated in place.

Flow control, in brief (the messages are in :mod:`~face3d_nb.widgets.page_link`'s protocol table):

- every mesh update has a ``seq`` and is in flight until the page acknowledges it as applied;
- per face mesh, at most the transport's ``window`` updates are in flight (positions 1, coefficients 3);
- updates produced meanwhile wait in a one-deep slot, newest wins, sent on the next acknowledgement;
- an update unacknowledged after ``ack_timeout`` s counts as lost and makes room for the next one.

The parts: :class:`~face3d_nb.widgets.stage.Stage` (scene, lights, camera),
:class:`~face3d_nb.widgets.mesh_pool.MeshPool` (a mesh per face, pacing, statistics) and the two
:class:`~face3d_nb.widgets.transport.MeshTransport` s, which draw the same picture (flat-shaded, in
each face's landmark frame, :mod:`~face3d_nb.view.view_transform`):
:mod:`~face3d_nb.widgets.position_transport` and :mod:`~face3d_nb.widgets.coefficient_transport`.
``transport`` "auto" times the page (:class:`~face3d_nb.widgets.page_link.PageLink`) and picks
(:func:`~face3d_nb.view.transport_choice.choose_transport`); a page that cannot decode on its GPU
gets positions.

What is drawn (``view``, ``over_frame``: :mod:`~face3d_nb.view.view_modes`): the shaded mesh, or the
mesh coloured by the camera frame, depth or PNCC, or its vertices as points, in the free-orbit 3D
view or over the frame in its pixel space. The frame drawn with an update is always the one its
parameters came from: every update names its frame (:class:`~face3d_nb.view.view_modes.FaceFrame`),
and the page keeps its camera's last frames by name; a frame the page does not have (a notebook
showing results of images or files) is sent to it by the kernel first (:meth:`PageLink.send_frame`).
"""

from __future__ import annotations

import logging
import math
import time

import cv2
import numpy as np
import traitlets

from ..core.detail import DetailLevels
from ..live.events import FrameResult
from ..view.transport_choice import TRANSPORTS, choose_transport
from ..view.view_modes import VIEWS, FaceFrame, Look, depth_range, frame_transform, pose_box
from ..view.view_transform import fit_faces
from .coefficient_transport import CoefficientTransport
from .mesh_pool import MeshPool, MeshStats
from .page_link import ACK_TIMEOUT, PageLink
from .position_transport import PositionTransport
from .stage import Stage, key_position
from .transport import LevelAttributes, MeshTransport

__all__ = ["FaceViewer", "MeshStats"]

log = logging.getLogger(__name__)

# How often "auto" reconsiders the transport, and measures the link again, while frames arrive (s).
_CHOOSE_INTERVAL, _MEASURE_INTERVAL = 1.0, 20.0
_REMEASURE_PINGS = (0, 0, 65_536)
# Frames the kernel sends the page (when it has none of its own): good enough to look at, and small.
_FRAME_QUALITY = 90


class FaceViewer(traitlets.HasTraits):
    """A 3D scene showing the dense mesh of every tracked face, with orbit controls and three lights.

    ``levels``: the morphable model's mesh detail levels (``reconstructor.levels``), whose
    triangles go with each result's ``detail``; ``max_faces``: the most meshes shown at once.
    Display it with ``display(viewer.renderer)`` (or just ``viewer`` as a cell's last line). Feed it
    with :meth:`show`. ``viewer.link`` is the :class:`~face3d_nb.widgets.page_link.PageLink` to the
    page; displayed, it shows ``transport_message``. The stage's widgets are attributes too:
    ``scene``, ``renderer``, ``material``, ``ambient``, ``key_light``, ``point_light``,
    ``view_camera`` (the 3D camera) and ``orbit`` (its orbit controls).

    Traits:

    - ``transport`` ("auto"): how meshes reach the page. ``"positions"``: the kernel decodes each
      mesh and sends its vertices (460 KB per update at full detail). ``"coefficients"``: the page's
      GPU decodes it from the pose and coefficients (1.4 KB per update, plus the model once: 10.7 MB
      at full detail with a basis, 13.5 MB for a page that draws without a GPU). ``"auto"``:
      positions while the measured link sustains them
      (:data:`~face3d_nb.view.transport_choice.FAST_RATE` updates/s), coefficients when it cannot
      (:data:`~face3d_nb.view.transport_choice.SLOW_RATE`), as on a slow or distant link.
    - ``active_transport`` ("positions", read-only): the transport in use. A page that cannot decode
      on its GPU (no vertex texture fetch or half-float textures) always gets positions.
    - ``transport_message`` ("", read-only): why the transport is not what was asked for, if so.
    - ``color`` ("#d9a88f"): mesh colour, ``#rrggbb``.
    - ``wireframe`` (False): draw triangle edges only.
    - ``view`` ("shaded"): what is drawn of each face, one of
      :data:`~face3d_nb.view.view_modes.VIEWS`: ``shaded`` mesh, ``texture`` (coloured by the camera
      frame), ``depth``, ``pncc`` or ``points`` (the dense vertices).
    - ``over_frame`` (False): draw over the camera frame the faces came from, in its pixel space (an
      orthographic camera, no orbiting; the view takes the frame's shape), instead of in 3D.
    - ``opacity`` (1.0): the faces' opacity, 0..1 (see the frame through them).
    - ``pose_box`` (False): draw a head-pose cube on each face.
    - ``ambient_intensity`` (0.25): ambient light, lights every side evenly.
    - ``key_intensity`` (0.55): directional key light, fixed in the scene.
    - ``point_intensity`` (0.25): point light riding on the camera (a head lamp for orbiting).
    - ``light_azimuth`` (30.0): key light direction in degrees around the vertical axis, 0 = from
      the front (the camera's starting side), positive = from the viewer's right.
    - ``light_elevation`` (30.0): key light degrees above the horizon, -90..90.
    - ``ack_timeout`` (:data:`~face3d_nb.widgets.page_link.ACK_TIMEOUT`, 5.0): seconds after which
      an unacknowledged update is given up (counted in ``stats().lost``).
    - ``width``, ``height`` (480, 480): size of the view in CSS pixels.
    """

    transport = traitlets.Enum(TRANSPORTS, "auto")
    active_transport = traitlets.Unicode("positions", read_only=True)
    transport_message = traitlets.Unicode("", read_only=True)
    color = traitlets.Unicode("#d9a88f")
    wireframe = traitlets.Bool(False)
    view = traitlets.Enum(VIEWS, "shaded")
    over_frame = traitlets.Bool(False)
    opacity = traitlets.Float(1.0)
    pose_box = traitlets.Bool(False)
    ambient_intensity = traitlets.Float(0.25)
    key_intensity = traitlets.Float(0.55)
    point_intensity = traitlets.Float(0.25)
    light_azimuth = traitlets.Float(30.0)
    light_elevation = traitlets.Float(30.0)
    ack_timeout = traitlets.Float(ACK_TIMEOUT)
    width = traitlets.Int(480)
    height = traitlets.Int(480)

    def __init__(self, levels: DetailLevels, max_faces: int = 4, **traits):
        super().__init__()
        if max_faces < 1:
            raise ValueError(f"max_faces must be at least 1, got {max_faces}")
        unknown = set(traits) - set(self.trait_names())
        if unknown:
            raise TypeError(f"FaceViewer got unexpected arguments: {', '.join(sorted(unknown))}")
        self.levels = levels
        self.max_faces = max_faces
        self._detail = "full"
        self._look = Look()
        self._sent_frames = 0
        self._chosen_at = self._measured_at = -math.inf

        self.stage = stage = Stage(self.color, self.wireframe, self.ambient_intensity, self.key_intensity,
                                   self.point_intensity, key_position(self.light_azimuth, self.light_elevation),
                                   self.width, self.height)
        self.scene, self.renderer, self.material = stage.scene, stage.renderer, stage.material
        self.ambient, self.key_light, self.point_light = stage.ambient, stage.key_light, stage.point_light
        self.view_camera, self.orbit = stage.view_camera, stage.orbit
        self.link = PageLink()
        self._pool = MeshPool(stage, max_faces, lambda: self.ack_timeout, self.link.round_trips)
        self._shared = LevelAttributes(levels)
        self._transports: dict[str, MeshTransport] = {
            "positions": PositionTransport(levels, self._shared, stage, self._pool.applied, self.link),
            "coefficients": CoefficientTransport(levels, self._shared, stage, self._pool.applied, self.link),
        }
        self.link.frame_texture = stage.frame_texture
        self._pool.use(self._transports["positions"])
        self.link.observe(self._page_answered, ["gpu_decode", "pages"])
        self.link.on_applied(self._pool.applied)
        # Traits given as arguments, now that their observers have a scene to update.
        with self.hold_trait_notifications():
            for name, value in traits.items():
                setattr(self, name, value)

    # -- appearance ------------------------------------------------------------------------
    @traitlets.validate("color")
    def _check_color(self, proposal):
        value = proposal["value"]
        if not (isinstance(value, str) and len(value) == 7 and value[0] == "#"
                and all(c in "0123456789abcdefABCDEF" for c in value[1:])):
            raise traitlets.TraitError(f"color must be '#rrggbb', got {value!r}")
        return value.lower()

    @traitlets.validate("light_elevation")
    def _check_elevation(self, proposal):
        if not -90.0 <= proposal["value"] <= 90.0:
            raise traitlets.TraitError(f"light_elevation must be within -90..90 degrees, got {proposal['value']}")
        return proposal["value"]

    @traitlets.validate("opacity")
    def _check_opacity(self, proposal):
        if not 0.0 <= proposal["value"] <= 1.0:
            raise traitlets.TraitError(f"opacity must be within 0..1, got {proposal['value']}")
        return proposal["value"]

    @traitlets.validate("ambient_intensity", "key_intensity", "point_intensity")
    def _check_intensity(self, proposal):
        if not (math.isfinite(proposal["value"]) and proposal["value"] >= 0):
            raise traitlets.TraitError(f"{proposal['trait'].name} must be >= 0, got {proposal['value']}")
        return proposal["value"]

    @traitlets.observe("color", "wireframe")
    def _material_changed(self, change):
        setattr(self.material, change["name"], change["new"])
        self._pool.restyle()

    @traitlets.observe("ambient_intensity", "key_intensity", "point_intensity")
    def _intensity_changed(self, change):
        self.stage.set_intensity(change["name"].removesuffix("_intensity"), change["new"])
        self._pool.restyle()

    @traitlets.observe("light_azimuth", "light_elevation")
    def _direction_changed(self, _change):
        self.key_light.position = key_position(self.light_azimuth, self.light_elevation)
        self._pool.restyle()

    @traitlets.observe("opacity")
    def _opacity_changed(self, change):
        self.stage.set_opacity(change["new"])
        self._pool.restyle()

    @traitlets.observe("view", "over_frame")
    def _look_changed(self, _change):
        # The meshes are built afresh for the new look by the next update.
        self._look = look = Look(self.view, self.over_frame)
        self.stage.use_frame(look.over_frame)
        self.link.keep_frames = not look.plain
        self._pool.use(self._pool.transport, look)

    @traitlets.observe("pose_box")
    def _pose_box_changed(self, change):
        if not change["new"]:
            self.stage.show_boxes([])

    @traitlets.observe("width", "height")
    def _size_changed(self, _change):
        self.stage.resize(self.width, self.height)

    def reset_view(self) -> None:
        """Put the camera back where it started (undo orbiting, panning and zooming)."""
        self.stage.reset_view()

    # -- meshes ----------------------------------------------------------------------------
    def show(self, result: FrameResult, frame_name: str = "") -> None:
        """Show the faces of ``result`` (any thread): each tracked face's mesh is updated, faces no
        longer tracked are hidden. Faces the transport cannot show (positions without vertices:
        engine ``dense`` off) are skipped. ``frame_name``: the name of ``result``'s frame in the page
        (``"tag:seq"``, the camera's: :meth:`~face3d_nb.widgets.camera.FrameGrabber.frame_name`); without
        one, a look that draws the frame gets ``result.frame`` sent to the page, if it has one."""
        look = self._look
        self._detail = result.detail
        self._choose_periodically()
        transport = self._pool.transport
        height, width = result.frame_shape
        if look.over_frame:
            self.stage.fit_frame(height, width)
            transform = frame_transform(height, width)
        else:
            transform = fit_faces([f.face.landmarks for f in result.faces]) if result.faces else None
        if not (look.plain or frame_name) and result.frame is not None and result.faces:
            frame_name = self._send_frame(result.frame)
        updates = []
        for face in result.faces:
            frame = FaceFrame(frame_name, (width, height), transform, depth_range(face.face.landmarks))
            payload = transport.payload(face, frame, result.detail, look)
            if payload is not None:
                updates.append((face.track_id, payload))
        self._pool.show(transport, look, result.detail, updates, result.captured_at)
        if self.pose_box:
            model = self.levels.model(result.detail)
            self.stage.show_boxes([transform.apply(pose_box(model, f.face.params, f.face.roi_box, f.face.landmarks))
                                   for f in result.faces])

    def _send_frame(self, frame: np.ndarray) -> str:
        self._sent_frames += 1
        name = f"0:{self._sent_frames}"
        ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, _FRAME_QUALITY])
        if ok:
            self.link.send_frame(name, jpeg.tobytes())
        return name

    def stats(self) -> MeshStats:
        return self._pool.stats()

    # -- choosing the transport --------------------------------------------------------------
    @traitlets.observe("transport")
    def _transport_requested(self, _change) -> None:
        self._choose()

    def _page_answered(self, _change) -> None:
        # A page (re)loaded (the link times itself to it) or said what it can do.
        self._measured_at = time.monotonic()
        self._choose()

    def _choose_periodically(self) -> None:
        now = time.monotonic()
        if now - self._chosen_at >= _CHOOSE_INTERVAL:
            self._chosen_at = now
            measure = self.transport == "auto" and self.link.gpu_decode and not self.link.measuring
            if measure and now - self._measured_at >= _MEASURE_INTERVAL:
                self._measured_at = now
                self.link.measure(_REMEASURE_PINGS)
            self._choose()

    def _choose(self) -> None:
        if self.transport == "auto" and self.link.gpu_decode == "ok":
            # Give the page what each transport needs now, while the link is good: on a link slow
            # enough to need coefficients, loading megabytes would stall the switch for minutes.
            for transport in self._transports.values():
                transport.prepare(self._detail)
        position_bytes = 12 * len(self.levels.detail(self._detail).vertices)
        name, message = choose_transport(self.transport, self.link.gpu_decode, self.link.round_trips, position_bytes,
                                         self._pool.transport.name)
        self.set_trait("transport_message", message)
        self.link.message = message
        if not self._pool.use(self._transports[name]):
            return
        log.info("mesh transport: %s (%s)", name, message or f"{self.transport} requested")
        self.set_trait("active_transport", name)

    def close(self) -> None:
        """Close every widget of the view; the viewer cannot be used afterwards."""
        self._pool.close()
        for transport in self._transports.values():
            transport.close()
        self._shared.close()
        self.stage.close()
        self.link.close()

    def _repr_mimebundle_(self, **kwargs):
        return self.renderer._repr_mimebundle_(**kwargs)
