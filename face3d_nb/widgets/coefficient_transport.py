"""The coefficient transport: the page's GPU decodes each face's mesh from its pose and coefficients.

Per detail level, once per page: the model (:class:`~face3d_nb.widgets.coefficient_model.CoefficientModel`,
at full detail with a basis 10.7 MB, 9.2 MB of it the basis texture, or 13.5 MB with the texture in
half floats: see ``encoding``). Per face: a ``ShaderMaterial`` on the level's shared geometry.
Per update: that material's ``uniforms``, about 1.4 KB, whose ``seq`` the page link reports applied
(:mod:`~face3d_nb.widgets.page_link`); they carry the update's frame uniforms too, so every look
(:mod:`~face3d_nb.view.view_modes`) needs nothing more per update. The shaders shade with the
stage's colour, lights and opacity themselves, so a change of those sends the last update again.

The model is built, and so sent, only once a page has said hello on the link: widgets created before
(a notebook still running in Voila, before its page connects) would go out once to nobody (Voila's
executor) and again to the page when it asks for every widget's state, twice the megabytes.
Until then faces are not shown: no page could draw them.
"""

from __future__ import annotations

import threading

import pythreejs as three

from ..core.detail import DetailLevels
from ..live.events import TrackedFace
from ..view.gpu_packing import FaceUniforms, face_uniforms
from ..view.view_modes import FaceFrame, Look
from .coefficient_model import CoefficientModel
from .face_material import appearance_uniforms, follow_stage
from .page_link import PageLink
from .stage import Stage
from .transport import Applied, FaceMesh, LevelAttributes, MeshTransport

__all__ = ["CoefficientMesh", "CoefficientTransport"]


class CoefficientMesh(FaceMesh):
    """A face the page's GPU decodes: its own ``material`` (None until built)."""

    def __init__(self):
        super().__init__()
        self.material: three.ShaderMaterial | None = None


class CoefficientTransport(MeshTransport):
    """Payload: the face's :class:`~face3d_nb.view.gpu_packing.FaceUniforms` and its frame uniforms
    (:meth:`~face3d_nb.view.view_modes.FaceFrame.uniforms`); every face can be shown. ``link`` is told which materials to acknowledge. Three updates in flight per face: at
    ~1.4 KB they cost nothing to buffer, and with one at a time a distant page (100 ms round trip)
    could never get more than 10 a second.

    ``encoding``, for models built from then on: the basis texture's
    (:data:`~face3d_nb.view.gpu_packing.BASIS_ENCODINGS`), or "auto": 12-bit values (23 % fewer
    bytes) for a page that draws on a GPU, half floats for one that draws on the CPU, where the
    12-bit decode's extra texture reads cost frames (SwiftShader, full detail: 2.8 instead of 4.7
    frames/s). The page's renderer is known by then: models are built after its hello."""

    name = "coefficients"
    window = 3
    encoding = "auto"

    def __init__(self, levels: DetailLevels, shared: LevelAttributes, stage: Stage, on_applied: Applied,
                 link: PageLink):
        super().__init__(levels, shared, stage, on_applied)
        self._link = link
        self._models: dict[str, CoefficientModel] = {}
        self._models_lock = threading.Lock()
        self._meshes: list[CoefficientMesh] = []

    def model(self, detail: str) -> CoefficientModel:
        """The level's shared widgets, built on first use (any thread)."""
        with self._models_lock:
            if detail not in self._models:
                encoding = self.encoding if self.encoding != "auto" else "half" if self._link.software else "u12"
                self._models[detail] = CoefficientModel(self.levels.model(detail), self.shared.index(detail),
                                                         encoding)
            return self._models[detail]

    def prepare(self, detail: str) -> None:
        if self._link.pages:
            self.model(detail)

    def payload(self, face: TrackedFace, frame: FaceFrame, detail: str, look: Look
                ) -> tuple[FaceUniforms, dict[str, object]] | None:
        if not self._link.pages:
            return None
        f = face.face
        return face_uniforms(self.levels.model(detail), f.params, f.roi_box, f.landmarks, frame.transform,
                             self.model(detail).texture), frame.uniforms()

    def new_mesh(self) -> CoefficientMesh:
        return CoefficientMesh()

    def _uniforms(self, detail: str, payload: tuple[FaceUniforms, dict[str, object]], seq: float) -> dict:
        s = self.stage
        appearance = appearance_uniforms(s.material, s.ambient, s.key_light, s.point_light)
        return self.model(detail).uniforms(payload[0], appearance, payload[1], seq)

    def build(self, mesh: CoefficientMesh, detail: str, look: Look, payload: tuple[FaceUniforms, dict[str, object]],
              seq: float) -> int:
        # The level's shared geometry with a new material (another level has other shaders). A mesh
        # keeps its look: the pool builds new meshes for another.
        old = mesh.material
        model = self.model(detail)
        mesh.detail, mesh.look, mesh.seq = detail, look, seq
        mesh.material = model.material(self._uniforms(detail, payload, seq), look, self.stage.material)
        if mesh.mesh is None:
            mesh.mesh = model.mesh(mesh.material, look)
            self._meshes.append(mesh)
        else:
            mesh.mesh.geometry, mesh.mesh.material = model.geometry_for(look), mesh.material
            mesh.mesh.visible = True
        self._watch()
        if old is not None:
            old.close()
        # A small message: its acknowledgement times the round trip.
        return 0

    def send(self, mesh: CoefficientMesh, payload: tuple[FaceUniforms, dict[str, object]], seq: float) -> int:
        mesh.seq = seq
        mesh.material.uniforms = self._uniforms(mesh.detail, payload, seq)
        return 0

    def restyle(self, mesh: CoefficientMesh) -> bool:
        if mesh.material is not None:
            follow_stage(mesh.material, self.stage.material)
        return True

    def discard(self, mesh: CoefficientMesh) -> None:
        if mesh in self._meshes:
            self._meshes.remove(mesh)
            self._watch()
        for widget in (mesh.mesh, mesh.material):
            if widget is not None:
                widget.close()

    def _watch(self) -> None:
        self._link.materials = [m.material for m in self._meshes if m.material is not None]

    def close(self) -> None:
        with self._models_lock:
            for model in self._models.values():
                model.close()
