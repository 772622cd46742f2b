"""The position transport: the kernel sends each face's vertices; pythreejs acknowledges them.

Each face mesh has the level's static uint32 ``index`` attribute and its own float32 ``position``
attribute, whose array is reassigned on every update (pythreejs syncs a reassigned array; it does
not notice in-place edits). A 38k-vertex update is 460 KB. When the page has applied an array,
pythreejs's front end bumps the attribute's ``version`` trait and syncs it back: the acknowledgement.

The default look (shaded, in 3D) draws with the stage's ``MeshPhongMaterial``. Every other look
(:mod:`~face3d_nb.view.view_modes`) draws with the face shaders (``DECODE 0``:
:mod:`~face3d_nb.widgets.face_material`) and needs the update's frame uniforms, which change with
every update; a separate uniforms message could be drawn with the other's vertices. So they travel
in the array itself: :data:`~face3d_nb.view.view_modes.HEADER_ROWS` rows after the vertices
(:meth:`~face3d_nb.view.view_modes.FaceFrame.header`), which the page copies into the material's
uniforms before the update is drawn (``static/page_link.js``), 60 bytes more per update. The PNCC
view adds the level's shared ``pncc`` attribute (460 KB once per page at full detail).
"""

from __future__ import annotations

import numpy as np
import pythreejs as three

from ..core.detail import DetailLevels
from ..live.events import TrackedFace
from ..view.view_modes import HEADER_ROWS, FaceFrame, Look
from ..view.view_transform import to_landmark_frame
from .face_material import appearance_uniforms, face_material, face_object, follow_stage
from .page_link import PageLink
from .stage import Stage
from .transport import Applied, FaceMesh, LevelAttributes, MeshTransport

__all__ = ["PositionMesh", "PositionTransport"]


class PositionMesh(FaceMesh):
    """A face whose vertices the kernel sends: ``geometry``, its ``position`` attribute and, for a
    look other than the default, its own ``material`` (None until built)."""

    def __init__(self):
        super().__init__()
        self.geometry: three.BufferGeometry | None = None
        self.position: three.BufferAttribute | None = None
        self.material: three.ShaderMaterial | None = None


class PositionTransport(MeshTransport):
    """Payload: (K, 3) float32 view positions of the face's mesh in its landmark frame, followed by
    the frame header for a look other than the default. Faces without vertices (the engine's
    ``dense`` off) cannot be shown. One update in flight per face: each is hundreds of KB, and its
    acknowledgement times the link's throughput. ``link`` is told which arrays carry a header."""

    name = "positions"
    window = 1

    def __init__(self, levels: DetailLevels, shared: LevelAttributes, stage: Stage, on_applied: Applied,
                 link: PageLink):
        super().__init__(levels, shared, stage, on_applied)
        self._link = link
        self._meshes: list[PositionMesh] = []

    def payload(self, face: TrackedFace, frame: FaceFrame, detail: str, look: Look) -> np.ndarray | None:
        if face.vertices is None:
            return None
        model = self.levels.model(detail)
        positions = frame.transform.apply(to_landmark_frame(face.vertices, model.landmarks, face.face.landmarks))
        return positions if look.plain else np.concatenate([positions, frame.header()])

    def new_mesh(self) -> PositionMesh:
        return PositionMesh()

    def build(self, mesh: PositionMesh, detail: str, look: Look, payload: np.ndarray, seq: float) -> int:
        # Another detail level has another vertex count: new geometry, created with this update. (A
        # mesh keeps its look: the pool builds new meshes for another.)
        old = (mesh.geometry, mesh.position, mesh.material)
        mesh.detail, mesh.look, mesh.seq = detail, look, seq
        mesh.position = position = three.BufferAttribute(payload, normalized=False)
        attributes = {"position": position}
        if look.view == "pncc":
            attributes["pncc"] = self.shared.pncc(detail)
        index = None if look.view == "points" else self.shared.index(detail)
        mesh.geometry = three.BufferGeometry(attributes=attributes, index=index)
        # Only the current attribute's acknowledgements count (a replaced one may still answer).
        position.observe(lambda change: change["owner"] is mesh.position and self.on_applied(mesh.seq), "version")
        mesh.material = None if look.plain else face_material(look, {"DECODE": "0"}, self._uniforms(payload),
                                                              self.stage.material)
        if mesh.mesh is None:
            mesh.mesh = (three.Mesh(mesh.geometry, self.stage.material) if look.plain
                         else face_object(look, mesh.geometry, mesh.material))
            self._meshes.append(mesh)
        else:
            mesh.mesh.geometry = mesh.geometry
            if mesh.material is not None:
                mesh.mesh.material = mesh.material
            mesh.mesh.visible = True
        self._watch()
        for widget in old:
            if widget is not None:
                widget.close()
        return payload.nbytes

    def _uniforms(self, payload: np.ndarray) -> dict[str, dict]:
        s = self.stage
        frame = FaceFrame.from_header(payload[-HEADER_ROWS:]).uniforms()
        values = {**appearance_uniforms(s.material, s.ambient, s.key_light, s.point_light), **frame}
        return {name: {"value": value} for name, value in values.items()}

    def send(self, mesh: PositionMesh, payload: np.ndarray, seq: float) -> int | None:
        # traitlets sends nothing for an equal array, so no acknowledgement would come back.
        if np.array_equal(payload, mesh.position.array):
            return None
        mesh.seq = seq
        mesh.position.array = payload
        return payload.nbytes

    def restyle(self, mesh: PositionMesh) -> bool:
        if mesh.material is not None and mesh.last is not None:
            follow_stage(mesh.material, self.stage.material)
            mesh.material.uniforms = self._uniforms(mesh.last)
        return False

    def discard(self, mesh: PositionMesh) -> None:
        if mesh in self._meshes:
            self._meshes.remove(mesh)
            self._watch()
        for widget in (mesh.mesh, mesh.geometry, mesh.position, mesh.material):
            if widget is not None:
                widget.close()

    def _watch(self) -> None:
        self._link.headers = [[m.position, m.material] for m in self._meshes if m.material is not None]
