"""One face's mesh in the 3D view, per transport, with its flight state (see :mod:`~face3d_nb.widgets.viewer`
for the pacing protocol that uses it).

- :class:`PositionMesh`: the kernel sends the positions; pythreejs's ``version`` acknowledges them.
- :class:`CoefficientMesh`: the page's GPU decodes the mesh (:mod:`~face3d_nb.widgets.coefficient_model`); the
  transport link acknowledges each update's ``seq``.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np
import pythreejs as three

from ..view.gpu_packing import FrameUniforms
from .coefficient_model import CoefficientMeshes

__all__ = ["CoefficientMesh", "FaceMesh", "Flight", "PositionMesh"]


@dataclass(frozen=True)
class Flight:
    """An update sent and not yet acknowledged: ``seq`` (0 where acknowledgements carry none),
    ``sent_at`` monotonic seconds, ``captured_at`` the frame's capture time, ``nbytes`` its size."""

    seq: float
    sent_at: float
    captured_at: float
    nbytes: int


class FaceMesh:
    """One face's mesh and its flight state (guarded by the viewer's lock): ``pending`` the update
    waiting to be sent (payload, captured_at), ``last`` the payload last sent with its
    ``last_captured_at``, ``flights`` the updates in flight, oldest first, at most ``window``."""

    window = 1

    def __init__(self):
        self.mesh: three.Mesh | None = None
        self.detail = ""
        self.track_id: int | None = None
        self.pending: tuple[object, float] | None = None
        self.last: object = None
        self.last_captured_at = 0.0
        self.flights: deque[Flight] = deque()

    @property
    def sent_at(self) -> float | None:
        """When the oldest update in flight was sent, None when none is."""
        return self.flights[0].sent_at if self.flights else None

    def in_flight(self, payload: object, captured_at: float, nbytes: int, seq: float = 0.0) -> None:
        self.last, self.last_captured_at = payload, captured_at
        self.flights.append(Flight(seq, time.monotonic(), captured_at, nbytes))

    def landed(self, seq: float | None = None) -> list[Flight]:
        """The flights an acknowledgement ends: the oldest, or (``seq``) every one up to that seq
        (acknowledgements come in order); empty when it matches none."""
        if seq is None:
            return [self.flights.popleft()] if self.flights else []
        if all(f.seq != seq for f in self.flights):
            return []
        done = []
        while self.flights and (not done or done[-1].seq != seq):
            done.append(self.flights.popleft())
        return done


class PositionMesh(FaceMesh):
    """A face whose positions the kernel sends; the page acknowledges with the ``version`` trait."""

    def __init__(self, material: three.Material, on_version):
        super().__init__()
        self._material = material
        self._on_version = on_version
        self.geometry = self.position = None

    def rebuild(self, detail: str, index: three.BufferAttribute, positions: np.ndarray, captured_at: float) -> None:
        """New geometry (another detail level has another vertex count), created with this mesh."""
        old = (self.geometry, self.position)
        self.detail = detail
        self.position = three.BufferAttribute(positions, normalized=False)
        self.geometry = three.BufferGeometry(attributes={"position": self.position}, index=index)
        # Only the current attribute's acknowledgements count (a replaced one may still answer).
        self.position.observe(lambda change: change["owner"] is self.position and self._on_version(self), "version")
        if self.mesh is None:
            self.mesh = three.Mesh(self.geometry, self._material)
        else:
            self.mesh.geometry = self.geometry
            self.mesh.visible = True
        # The widget creation carries the mesh: it is in flight until the page reports a version.
        self.pending = None
        self.flights.clear()
        self.in_flight(positions, captured_at, positions.nbytes)
        for widget in old:
            if widget is not None:
                widget.close()

    def send(self, positions: np.ndarray, captured_at: float) -> bool:
        """Send ``positions``; False when they equal the last (traitlets would send nothing, so no
        acknowledgement would come back)."""
        if np.array_equal(positions, self.position.array):
            return False
        self.in_flight(positions, captured_at, positions.nbytes)
        self.position.array = positions
        return True

    def close(self) -> None:
        for widget in (self.mesh, self.geometry, self.position):
            if widget is not None:
                widget.close()


class CoefficientMesh(FaceMesh):
    """A face the page's GPU decodes; the transport link acknowledges each ``seq`` applied.

    Up to three updates fly at once: at ~1.4 KB they cost nothing to buffer, and with one at a time
    a distant page (100 ms round trip) could never get more than 10 a second."""

    window = 3

    def __init__(self):
        super().__init__()
        self.material: three.ShaderMaterial | None = None

    def rebuild(self, detail: str, shaders: CoefficientMeshes, wireframe: bool, uniforms: dict, seq: float,
                frame: FrameUniforms, captured_at: float) -> None:
        """The level's shared geometry with a new material (another level has other shaders),
        created with the ``uniforms`` of ``frame``: in flight until the page reports ``seq``."""
        old = self.material
        self.detail = detail
        self.material = shaders.material(uniforms, wireframe)
        if self.mesh is None:
            self.mesh = shaders.mesh(self.material)
        else:
            self.mesh.geometry, self.mesh.material = shaders.geometry, self.material
            self.mesh.visible = True
        self.pending = None
        self.flights.clear()
        self.in_flight(frame, captured_at, 0, seq)
        if old is not None:
            old.close()

    def send(self, uniforms: dict, seq: float, frame: FrameUniforms, captured_at: float) -> None:
        # A small message: its acknowledgement times the round trip.
        self.in_flight(frame, captured_at, 0, seq)
        self.material.uniforms = uniforms

    def close(self) -> None:
        for widget in (self.mesh, self.material):
            if widget is not None:
                widget.close()
