"""The mesh-transport interface: how one face's mesh updates reach the page.

Two implementations, one file each, draw the same picture:
:class:`~face3d_nb.widgets.position_transport.PositionTransport` (the kernel sends the vertices) and
:class:`~face3d_nb.widgets.coefficient_transport.CoefficientTransport` (the page's GPU decodes the
mesh from the pose and coefficients). The viewer's :class:`~face3d_nb.widgets.mesh_pool.MeshPool`
paces both the same way through this interface; the messages are in
:mod:`~face3d_nb.widgets.page_link`'s protocol table.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import pythreejs as three

from ..core.detail import DetailLevels
from ..live.events import TrackedFace
from ..view.view_modes import FaceFrame, Look, pncc_colors
from ..view.view_transform import view_index
from .stage import Stage

__all__ = ["Applied", "FaceMesh", "Flight", "LevelAttributes", "MeshTransport"]

#: ``on_applied(seq)``: the page has applied update ``seq`` (kernel main thread).
Applied = Callable[[float], None]


@dataclass(frozen=True)
class Flight:
    """An update sent and not yet acknowledged: its ``seq``, ``sent_at`` monotonic seconds,
    ``captured_at`` the camera frame's capture time (s since the epoch) and ``nbytes`` its size as
    a sample for the round-trip measurement (0 for a small message)."""

    seq: float
    sent_at: float
    captured_at: float
    nbytes: int


class FaceMesh:
    """One face's mesh in the view and its flight state, guarded by the pool's lock.

    ``mesh`` the ``three.Mesh`` or ``three.Points`` (None until built); ``detail`` its level and
    ``look`` how it is drawn (:class:`~face3d_nb.view.view_modes.Look`); ``track_id`` the face
    shown (None: free); ``pending`` the update waiting to be sent, (payload, captured_at);
    ``last`` the payload last sent with its ``last_captured_at``; ``flights`` the updates in
    flight, oldest first, at most the transport's ``window``; ``seq`` the newest update's.
    """

    def __init__(self):
        self.mesh: three.Object3D | None = None
        self.detail = ""
        self.look = Look()
        self.track_id: int | None = None
        self.pending: tuple[object, float] | None = None
        self.last: object = None
        self.last_captured_at = 0.0
        self.flights: deque[Flight] = deque()
        self.seq = 0.0

    def landed(self, seq: float) -> list[Flight]:
        """The flights an acknowledgement of ``seq`` ends, taken out of ``flights``: that one and every
        older one (the page applies updates in order); empty when none has that seq."""
        if all(f.seq != seq for f in self.flights):
            return []
        done = []
        while not done or done[-1].seq != seq:
            done.append(self.flights.popleft())
        return done


class LevelAttributes:
    """The attributes every face mesh of a detail level shares, built on first use and shared by the
    transports (the page loads each once): the view's triangle ``index`` and the ``pncc`` colours of
    the position transport's PNCC view. Any thread."""

    def __init__(self, levels: DetailLevels):
        self._levels = levels
        self._lock = threading.Lock()
        self._attributes: dict[tuple[str, str], three.BufferAttribute] = {}

    def index(self, detail: str) -> three.BufferAttribute:
        """The level's (T*3,) uint32 triangle index, wound for the view."""
        return self._get("index", detail)

    def pncc(self, detail: str) -> three.BufferAttribute:
        """The level's (K, 3) float32 PNCC colours (:func:`~face3d_nb.view.view_modes.pncc_colors`)."""
        return self._get("pncc", detail)

    def _get(self, name: str, detail: str) -> three.BufferAttribute:
        with self._lock:
            if (name, detail) not in self._attributes:
                model = self._levels.model(detail)
                array = (view_index(model.triangles, model.n_vertices) if name == "index"
                         else pncc_colors(model.mean))
                self._attributes[name, detail] = three.BufferAttribute(array, normalized=False)
            return self._attributes[name, detail]

    def close(self) -> None:
        for attribute in self._attributes.values():
            attribute.close()


class MeshTransport(ABC):
    """How a face's mesh updates travel: what an update carries, the widgets that show it, how it
    is sent and how many may be unacknowledged at once.

    ``levels`` the model's detail levels; ``shared`` the attributes meshes share; ``stage`` the
    scene whose material and lights the meshes are drawn with; ``on_applied(seq)`` is called when
    the page has applied update ``seq``. Methods other than :meth:`payload` and :meth:`prepare`
    run under the pool's lock.
    """

    #: The transport's name, as in the viewer's ``transport`` trait.
    name: ClassVar[str]
    #: Updates allowed in flight per face mesh.
    window: ClassVar[int]

    def __init__(self, levels: DetailLevels, shared: LevelAttributes, stage: Stage, on_applied: Applied):
        self.levels = levels
        self.shared = shared
        self.stage = stage
        self.on_applied = on_applied

    def prepare(self, detail: str) -> None:
        """Build what every face at ``detail`` shares, so the page can load it ahead of need."""
        self.shared.index(detail)

    @abstractmethod
    def payload(self, face: TrackedFace, frame: FaceFrame, detail: str, look: Look) -> object | None:
        """What one update of ``face`` at ``detail`` carries, drawn as ``look``, placed by
        ``frame.transform``; None when this transport cannot show the face (any thread)."""

    @abstractmethod
    def new_mesh(self) -> FaceMesh:
        """An empty face mesh of this transport, built by :meth:`build`."""

    @abstractmethod
    def build(self, mesh: FaceMesh, detail: str, look: Look, payload: object, seq: float) -> int:
        """(Re)create ``mesh``'s widgets at ``detail`` drawn as ``look``, created with ``payload`` as update ``seq``
        (an update sent separately could reach the page before the mesh listens to it). Returns
        the update's size for the round-trip measurement."""

    @abstractmethod
    def send(self, mesh: FaceMesh, payload: object, seq: float) -> int | None:
        """Send ``payload`` to ``mesh`` as update ``seq``: its size as in :meth:`build`, or None
        when nothing was sent (so no acknowledgement will come)."""

    def restyle(self, mesh: FaceMesh) -> bool:
        """Follow a change of the stage's colour, lights, opacity or wireframe: True when ``mesh``'s
        last update must be sent again to show it."""
        return False

    @abstractmethod
    def discard(self, mesh: FaceMesh) -> None:
        """Close ``mesh``'s widgets; it is shown no more."""

    def close(self) -> None:  # noqa: B027 - optional: a transport may share no widgets of its own
        """Close the widgets the transport's meshes share."""

