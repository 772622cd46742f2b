"""The position transport: the kernel sends each face's vertices; pythreejs acknowledges them.

Each face mesh has the level's static uint32 ``index`` attribute and its own float32 ``position``
attribute, whose array is reassigned on every update (pythreejs syncs a reassigned array; it does
not notice in-place edits). A 38k-vertex update is 460 KB. When the page has applied an array,
pythreejs's front end bumps the attribute's ``version`` trait and syncs it back: the acknowledgement.
"""

from __future__ import annotations

import numpy as np
import pythreejs as three

from ..live.events import TrackedFace
from ..view.view_transform import ViewTransform, to_landmark_frame
from .transport import FaceMesh, MeshTransport

__all__ = ["PositionMesh", "PositionTransport"]


class PositionMesh(FaceMesh):
    """A face whose vertices the kernel sends: ``geometry`` and its ``position`` attribute (None
    until built)."""

    def __init__(self):
        super().__init__()
        self.geometry: three.BufferGeometry | None = None
        self.position: three.BufferAttribute | None = None


class PositionTransport(MeshTransport):
    """Payload: (K, 3) float32 view positions of the face's mesh in its landmark frame. Faces
    without vertices (the engine's ``dense`` off) cannot be shown. One update in flight per face:
    each is hundreds of KB, and its acknowledgement times the link's throughput."""

    name = "positions"
    window = 1

    def payload(self, face: TrackedFace, transform: ViewTransform, detail: str) -> np.ndarray | None:
        if face.vertices is None:
            return None
        model = self.levels.model(detail)
        return transform.apply(to_landmark_frame(face.vertices, model.landmarks, face.face.landmarks))

    def new_mesh(self) -> PositionMesh:
        return PositionMesh()

    def build(self, mesh: PositionMesh, detail: str, payload: np.ndarray, seq: float) -> int:
        # Another detail level has another vertex count: new geometry, created with this update.
        old = (mesh.geometry, mesh.position)
        mesh.detail, mesh.seq = detail, seq
        mesh.position = position = three.BufferAttribute(payload, normalized=False)
        mesh.geometry = three.BufferGeometry(attributes={"position": position}, index=self.indices(detail))
        # Only the current attribute's acknowledgements count (a replaced one may still answer).
        position.observe(lambda change: change["owner"] is mesh.position and self.on_applied(mesh.seq), "version")
        if mesh.mesh is None:
            mesh.mesh = three.Mesh(mesh.geometry, self.stage.material)
        else:
            mesh.mesh.geometry = mesh.geometry
            mesh.mesh.visible = True
        for widget in old:
            if widget is not None:
                widget.close()
        return payload.nbytes

    def send(self, mesh: PositionMesh, payload: np.ndarray, seq: float) -> int | None:
        # traitlets sends nothing for an equal array, so no acknowledgement would come back.
        if np.array_equal(payload, mesh.position.array):
            return None
        mesh.seq = seq
        mesh.position.array = payload
        return payload.nbytes

    def discard(self, mesh: PositionMesh) -> None:
        for widget in (mesh.mesh, mesh.geometry, mesh.position):
            if widget is not None:
                widget.close()
