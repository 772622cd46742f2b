"""The 3D view: a pythreejs scene with one mesh per tracked face, updated in place.

Two transports carry the meshes to the page, and draw the same picture (flat-shaded, in the frame
of each face's landmarks, :mod:`~face3d_nb.view.framing`):

- ``positions``: each face mesh has a static uint32 ``index`` attribute and a float32 ``position``
  attribute whose array is reassigned on every update (pythreejs syncs a reassigned array; it does
  not notice in-place edits). A 38k-vertex update is 460 KB.
- ``coefficients``: the page's GPU decodes the mesh from the model, sent once, and per update the
  pose and 50 coefficients in a ``ShaderMaterial``'s uniforms, about 1.4 KB
  (:mod:`~face3d_nb.widgets.coefficient_model`). For slow links and remote kernels.

``transport`` "auto" measures the link (:class:`~face3d_nb.widgets.page_link.TransportLink`) and picks
(:func:`~face3d_nb.view.transport_choice.choose_transport`); a page that cannot decode on its GPU gets positions.

Flow control (the protocol)
---------------------------
The kernel can produce meshes faster than the browser applies them; unpaced, the backlog grows
without bound (seconds of lag, gigabytes in the server). So, per mesh:

- After the kernel assigns a new ``position`` array or ``uniforms``, that mesh is *in flight*.
- When the page has applied the array, pythreejs's front end bumps the attribute's ``version``
  trait and syncs it back; when three.js has the new uniforms, the transport link reports their
  ``seq``. That acknowledgement ends the flight (both mean "applied": drawn at the next frame).
- Meshes produced meanwhile wait in a one-deep slot, each replacing the last (newest wins); on the
  acknowledgement the waiting mesh, if any, is sent. Never more than one position update in flight
  per mesh; coefficient updates, a few hundred times smaller, may be three (so a distant page is
  not held to one update per round trip).
- An update not acknowledged within ``ack_timeout`` seconds (no page open, kernel restarted page)
  counts as lost: the next mesh is sent anyway, so a page that comes back is served again, and one
  that is gone costs one update per ``ack_timeout``.

:meth:`FaceViewer.show` is called on the engine's worker thread; acknowledgements arrive on the
kernel's main thread; a lock serialises the two.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
import pythreejs as three
import traitlets

from ..core.detail import DetailLevels
from ..live.engine import FrameResult, TrackedFace
from ..live.stats import RateMeter
from ..view.framing import Framing, MeshTopology, frame_faces, to_landmark_frame
from ..view.gpu_packing import FrameUniforms, frame_uniforms
from ..view.transport_choice import TRANSPORTS, choose_transport
from .coefficient_model import CoefficientMeshes, appearance_uniforms
from .meshes import CoefficientMesh, FaceMesh, PositionMesh
from .page_link import TransportLink

__all__ = ["FaceViewer", "MeshStats"]

log = logging.getLogger(__name__)

# Camera distance and field of view for a framed face (one view unit across) to fill ~3/4 of the view.
_CAMERA_POSITION = (0.0, 0.0, 2.2)
_FOV = 35.0
# How often "auto" reconsiders the transport, and measures the link again, while frames arrive (s).
_CHOOSE_INTERVAL, _MEASURE_INTERVAL = 1.0, 20.0
_REMEASURE_PINGS = (0, 0, 65_536)


@dataclass(frozen=True)
class MeshStats:
    """Mesh updates as acknowledged by the page.

    ``applied`` updates acknowledged since start; ``applied_fps`` per second over the last 2 s;
    ``latency_p50``/``latency_p95`` milliseconds from frame capture (page clock) to acknowledgement
    (kernel clock, same machine) over the last 300 updates, NaN before the first;
    ``flight_p50``/``flight_p95`` the same from sending the update; ``lost`` updates given up
    after ``ack_timeout``; ``meshes`` face meshes currently shown; ``transport`` the one in use.
    """

    applied: int
    applied_fps: float
    latency_p50: float
    latency_p95: float
    flight_p50: float
    flight_p95: float
    lost: int
    meshes: int
    transport: str


def _power(intensity: float) -> float:
    """A point light's ``power`` for ``intensity``: pythreejs syncs both, and the page applies the
    power after the intensity, so a default power would override the intensity."""
    return 4 * math.pi * intensity


class FaceViewer(traitlets.HasTraits):
    """A 3D scene showing the dense mesh of every tracked face, with orbit controls and three lights.

    ``levels``: the morphable model's mesh detail levels (``reconstructor.levels``), whose
    triangles go with each result's ``detail``; ``max_faces``: the most meshes shown at once. Display it with ``display(viewer.renderer)``
    (or just ``viewer`` as a cell's last line). Feed it with :meth:`show`. ``viewer.link`` is the
    transport's line to the page; displayed, it shows ``transport_message``.

    Traits:

    - ``transport`` ("auto"): how meshes reach the page. ``"positions"``: the kernel decodes each
      mesh and sends its vertices (460 KB per update at full detail). ``"coefficients"``: the page's
      GPU decodes it from the pose and coefficients (1.4 KB per update, plus the model once: 12 MB
      at full detail with a basis). ``"auto"``: positions while the measured link sustains them
      (:data:`~face3d_nb.view.transport_choice.FAST_RATE` updates/s), coefficients when it cannot
      (:data:`~face3d_nb.view.transport_choice.SLOW_RATE`), as on a slow or distant link.
    - ``active_transport`` ("positions", read-only): the transport in use. A page that cannot decode
      on its GPU (no vertex texture fetch or half-float textures) always gets positions.
    - ``transport_message`` ("", read-only): why the transport is not what was asked for, if so.
    - ``color`` ("#d9a88f"): mesh colour, ``#rrggbb``.
    - ``wireframe`` (False): draw triangle edges only.
    - ``ambient_intensity`` (0.25): ambient light, lights every side evenly.
    - ``key_intensity`` (0.55): directional key light, fixed in the scene.
    - ``point_intensity`` (0.25): point light riding on the camera (a head lamp for orbiting).
    - ``light_azimuth`` (30.0): key light direction in degrees around the vertical axis, 0 = from
      the front (the camera's starting side), positive = from the viewer's right.
    - ``light_elevation`` (30.0): key light degrees above the horizon, -90..90.
    - ``ack_timeout`` (5.0): seconds after which an unacknowledged update is given up.
    - ``width``, ``height`` (480, 480): size of the view in CSS pixels.
    """

    transport = traitlets.Enum(TRANSPORTS, "auto")
    active_transport = traitlets.Unicode("positions", read_only=True)
    transport_message = traitlets.Unicode("", read_only=True)
    color = traitlets.Unicode("#d9a88f")
    wireframe = traitlets.Bool(False)
    ambient_intensity = traitlets.Float(0.25)
    key_intensity = traitlets.Float(0.55)
    point_intensity = traitlets.Float(0.25)
    light_azimuth = traitlets.Float(30.0)
    light_elevation = traitlets.Float(30.0)
    ack_timeout = traitlets.Float(5.0)
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
        self._topologies: dict[str, tuple[MeshTopology, three.BufferAttribute]] = {}
        self._lock = threading.Lock()
        self._meshes: list[FaceMesh] = []
        self._shaders: dict[str, CoefficientMeshes] = {}
        self._shaders_lock = threading.Lock()
        self._rate = RateMeter(2.0)
        self._latency: deque[float] = deque(maxlen=300)
        self._flight: deque[float] = deque(maxlen=300)
        self._applied = 0
        self._lost = 0
        self._seq = 0
        # The transport in use, guarded by the lock (``active_transport`` follows it for observers).
        self._transport = "positions"
        self._detail = "full"
        self._chosen_at = self._measured_at = -math.inf

        # Flat shading: the GPU transport has no vertex normals, and both transports look the same.
        self.material = three.MeshPhongMaterial(color=self.color, wireframe=self.wireframe, shininess=20,
                                                side="DoubleSide", flatShading=True)
        self.ambient = three.AmbientLight(color="#ffffff", intensity=self.ambient_intensity)
        # Explicit (unused) shadows: left to the front end, pythreejs fails to create them under ipywidgets 8.
        self.key_light = three.DirectionalLight(
            color="#ffffff", intensity=self.key_intensity, position=self._key_position(),
            shadow=three.DirectionalLightShadow(camera=three.OrthographicCamera(-2, 2, 2, -2, 0.1, 20)))
        self.point_light = three.PointLight(
            color="#ffffff", intensity=self.point_intensity, power=_power(self.point_intensity), position=(0, 0.5, 0),
            shadow=three.LightShadow(camera=three.PerspectiveCamera(90, 1, 0.1, 20)))
        self.camera = three.PerspectiveCamera(fov=_FOV, aspect=self.width / self.height, near=0.01, far=100,
                                              position=_CAMERA_POSITION, children=[self.point_light])
        self.controls = three.OrbitControls(controlling=self.camera, target=(0, 0, 0))
        self.scene = three.Scene(children=[self.ambient, self.key_light, self.camera], background="#202028")
        self.renderer = three.Renderer(scene=self.scene, camera=self.camera, controls=[self.controls],
                                       width=self.width, height=self.height)
        self.renderer.add_class("face3d-viewer")
        self.link = TransportLink()
        self.link.observe(self._page_answered, ["gpu_decode", "pages"])
        self.link.on_applied(self._coefficients_applied)
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

    @traitlets.validate("ambient_intensity", "key_intensity", "point_intensity")
    def _check_intensity(self, proposal):
        if not (math.isfinite(proposal["value"]) and proposal["value"] >= 0):
            raise traitlets.TraitError(f"{proposal['trait'].name} must be >= 0, got {proposal['value']}")
        return proposal["value"]

    @traitlets.observe("color", "wireframe")
    def _material_changed(self, change):
        setattr(self.material, change["name"], change["new"])
        if change["name"] == "wireframe":
            with self._lock:
                for mesh in self._meshes:
                    if isinstance(mesh, CoefficientMesh):
                        mesh.material.wireframe = change["new"]
        self._appearance_changed()

    @traitlets.observe("ambient_intensity", "key_intensity", "point_intensity")
    def _intensity_changed(self, change):
        light = {"ambient_intensity": self.ambient, "key_intensity": self.key_light,
                 "point_intensity": self.point_light}[change["name"]]
        light.intensity = change["new"]
        if light is self.point_light:
            light.power = _power(change["new"])
        self._appearance_changed()

    @traitlets.observe("light_azimuth", "light_elevation")
    def _direction_changed(self, _change):
        self.key_light.position = self._key_position()
        self._appearance_changed()

    def _appearance_changed(self) -> None:
        """The GPU transport shades in its own shader: send its meshes' last frame again with the new
        colour and lights (after any update in flight)."""
        with self._lock:
            for mesh in self._meshes:
                if isinstance(mesh, CoefficientMesh) and mesh.last is not None and mesh.pending is None:
                    mesh.pending = (mesh.last, mesh.last_captured_at)
                    self._send_if_idle(mesh)

    @traitlets.observe("width", "height")
    def _size_changed(self, _change):
        self.renderer.width, self.renderer.height = self.width, self.height
        self.camera.aspect = self.width / self.height

    def _key_position(self) -> tuple[float, float, float]:
        az, el = math.radians(self.light_azimuth), math.radians(self.light_elevation)
        return (3 * math.cos(el) * math.sin(az), 3 * math.sin(el), 3 * math.cos(el) * math.cos(az))

    def reset_view(self) -> None:
        """Put the camera back where it started (undo orbiting, panning and zooming)."""
        self.controls.exec_three_obj_method("reset")

    # -- meshes ----------------------------------------------------------------------------
    def show(self, result: FrameResult) -> None:
        """Show the faces of ``result`` (any thread): each tracked face's mesh is updated, faces no
        longer tracked are hidden. Sending positions, faces without vertices (engine ``dense``
        off) are skipped."""
        self._detail = result.detail
        self._choose_periodically()
        transport = self._transport
        faces = [f for f in result.faces if f.vertices is not None or transport == "coefficients"]
        framing = frame_faces([f.face.landmarks for f in faces]) if faces else None
        payloads = [self._payload(transport, face, framing, result.detail) for face in faces]
        with self._lock:
            if transport != self._transport:
                return  # switched meanwhile: the next frame goes the new way
            live = {f.track_id for f in faces}
            for mesh in self._meshes:
                if mesh.track_id is not None and mesh.track_id not in live:
                    mesh.track_id, mesh.pending = None, None
                    mesh.mesh.visible = False
            for face, payload in zip(faces, payloads):
                mesh = self._mesh_for(face.track_id)
                if mesh is None:
                    continue
                if mesh.detail != result.detail:
                    self._rebuild(mesh, result.detail, payload, result.captured_at)
                else:
                    mesh.pending = (payload, result.captured_at)
                    self._send_if_idle(mesh)

    def _payload(self, transport: str, face: TrackedFace, framing: Framing, detail: str) -> np.ndarray | FrameUniforms:
        """What one update of ``face`` carries: view positions, or the shader's frame uniforms."""
        model = self.levels.model(detail)
        if transport == "positions":
            return framing.apply(to_landmark_frame(face.vertices, model.landmarks, face.face.landmarks))
        return frame_uniforms(model, face.face.params, face.face.roi_box, framing, self._shaders_for(detail).texture)

    def _rebuild(self, mesh: FaceMesh, detail: str, payload, captured_at: float) -> None:
        """New widgets for ``mesh`` at ``detail``, created with ``payload`` (its first update)."""
        new = mesh.mesh is None
        if isinstance(mesh, PositionMesh):
            mesh.rebuild(detail, self._topology(detail)[1], payload, captured_at)
        else:
            shaders = self._shaders_for(detail)
            mesh.rebuild(detail, shaders, self.wireframe, self._uniforms(shaders, payload), self._seq, payload,
                         captured_at)
            self.link.materials = [m.material for m in self._meshes if isinstance(m, CoefficientMesh) and m.material]
        if new:
            self.scene.children = (*self.scene.children, mesh.mesh)

    def _uniforms(self, shaders: CoefficientMeshes, frame: FrameUniforms) -> dict:
        """A coefficient update: ``frame`` with the current colour and lights, under a new ``seq``."""
        self._seq += 1
        appearance = appearance_uniforms(self.material, self.ambient, self.key_light, self.point_light)
        return shaders.uniforms(frame, appearance, self._seq)

    def _topology(self, detail: str) -> tuple[MeshTopology, three.BufferAttribute]:
        if detail not in self._topologies:
            level = self.levels.detail(detail)
            topology = MeshTopology(level.triangles, len(level.vertices))
            self._topologies[detail] = (topology, three.BufferAttribute(topology.index, normalized=False))
        return self._topologies[detail]

    def _shaders_for(self, detail: str) -> CoefficientMeshes:
        """The level's shared GPU-transport widgets, built on first use (the page loads them once)."""
        with self._shaders_lock:
            if detail not in self._shaders:
                self._shaders[detail] = CoefficientMeshes(self.levels.model(detail), self._topology(detail)[1])
            return self._shaders[detail]

    def _mesh_for(self, track_id: int) -> FaceMesh | None:
        """The mesh showing ``track_id``, else a free one claimed for it (or a new one), else None."""
        for mesh in self._meshes:
            if mesh.track_id == track_id:
                return mesh
        free = next((m for m in self._meshes if m.track_id is None), None)
        if free is None and len(self._meshes) < self.max_faces:
            if self._transport == "positions":
                free = PositionMesh(self.material, self._acknowledged)
            else:
                free = CoefficientMesh()
            self._meshes.append(free)
        if free is not None:
            free.track_id = track_id
        return free

    def _send_if_idle(self, mesh: FaceMesh) -> None:
        if mesh.pending is None:
            return
        while mesh.flights and time.monotonic() - mesh.flights[0].sent_at >= self.ack_timeout:
            mesh.flights.popleft()
            self._lost += 1
        if len(mesh.flights) >= mesh.window:
            return
        payload, captured_at = mesh.pending
        mesh.pending = None
        mesh.mesh.visible = True
        if isinstance(mesh, PositionMesh):
            mesh.send(payload, captured_at)
        else:
            mesh.send(self._uniforms(self._shaders[mesh.detail], payload), self._seq, payload, captured_at)

    def _acknowledged(self, mesh: FaceMesh, seq: float | None = None) -> None:
        with self._lock:
            now, monotonic = time.time(), time.monotonic()
            for flight in mesh.landed(seq):
                self._applied += 1
                self._rate.tick(monotonic)
                self._flight.append((monotonic - flight.sent_at) * 1000)
                self.link.meter.add(flight.nbytes, monotonic - flight.sent_at)
                if math.isfinite(flight.captured_at):
                    self._latency.append((now - flight.captured_at) * 1000)
            self._send_if_idle(mesh)

    def _coefficients_applied(self, seq: float) -> None:
        with self._lock:
            mesh = next((m for m in self._meshes if any(f.seq == seq for f in m.flights)), None)
        if mesh is not None:
            self._acknowledged(mesh, seq)

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
            # Send the page the model for its GPU now, while the link is good: on a link slow
            # enough to need coefficients, loading megabytes would stall the switch for minutes.
            self._shaders_for(self._detail)
        position_bytes = 12 * len(self.levels.detail(self._detail).vertices)
        transport, message = choose_transport(self.transport, self.link.gpu_decode, self.link.meter, position_bytes,
                                              self._transport)
        self.set_trait("transport_message", message)
        self.link.message = message
        with self._lock:
            if transport == self._transport:
                return
            # The other transport's meshes are built afresh, by the next frame.
            self._transport = transport
            meshes, self._meshes = self._meshes, []
            gone = {m.mesh for m in meshes}
            self.scene.children = tuple(c for c in self.scene.children if c not in gone)
            self.link.materials = []
        log.info("mesh transport: %s (%s)", transport, message or f"{self.transport} requested")
        self.set_trait("active_transport", transport)
        for mesh in meshes:
            mesh.close()

    def stats(self) -> MeshStats:
        with self._lock:
            p50, p95 = (np.percentile(self._latency, [50, 95]) if self._latency else (math.nan, math.nan))
            f50, f95 = (np.percentile(self._flight, [50, 95]) if self._flight else (math.nan, math.nan))
            return MeshStats(applied=self._applied, applied_fps=self._rate.rate(time.monotonic()),
                             latency_p50=float(p50), latency_p95=float(p95), flight_p50=float(f50),
                             flight_p95=float(f95), lost=self._lost,
                             meshes=sum(m.track_id is not None for m in self._meshes), transport=self._transport)

    def close(self) -> None:
        """Close every widget of the view; the viewer cannot be used afterwards."""
        with self._lock:
            meshes, self._meshes = self._meshes, []
        for mesh in meshes:
            mesh.close()
        for shaders in self._shaders.values():
            shaders.close()
        for _, index in self._topologies.values():
            index.close()
        for widget in (self.renderer, self.controls, self.scene, self.camera, self.point_light, self.key_light,
                       self.ambient, self.material, self.link):
            widget.close()

    def _repr_mimebundle_(self, **kwargs):
        return self.renderer._repr_mimebundle_(**kwargs)
