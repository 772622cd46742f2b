"""The viewer's face meshes, one per tracked face, and their pacing; the same for every transport.

The kernel can produce meshes faster than the page applies them; unpaced, the backlog grows without
bound (seconds of lag, gigabytes in the server). So, per face mesh: at most the transport's
``window`` updates are in flight; newer ones wait in a one-deep slot, each replacing the last
(newest wins), until an acknowledgement (:meth:`MeshPool.applied`) or the timeout makes room. The
messages, windows and timeout are in :mod:`~face3d_nb.widgets.page_link`'s protocol table.

Updates come on the engine's worker thread, acknowledgements on the kernel's main thread; a lock
serialises the two.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..live.stats import RateMeter
from ..view.transport_choice import RoundTrips
from ..view.view_modes import Look
from .stage import Stage
from .transport import FaceMesh, Flight, MeshTransport

__all__ = ["MeshPool", "MeshStats"]


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


class MeshPool:
    """At most ``max_faces`` face meshes on ``stage``, sent with one transport at a time.

    ``ack_timeout()`` gives the seconds after which an update is given up; acknowledged updates
    are round-trip samples for ``round_trips``.
    """

    def __init__(self, stage: Stage, max_faces: int, ack_timeout: Callable[[], float], round_trips: RoundTrips):
        self._stage = stage
        self._max_faces = max_faces
        self._ack_timeout = ack_timeout
        self._round_trips = round_trips
        self._lock = threading.Lock()
        self.transport: MeshTransport | None = None
        self.look = Look()
        self.meshes: list[FaceMesh] = []
        self._seq = 0
        self._rate = RateMeter(2.0)
        self._latency: deque[float] = deque(maxlen=300)
        self._flight: deque[float] = deque(maxlen=300)
        self._applied = 0
        self._lost = 0

    def use(self, transport: MeshTransport, look: Look | None = None) -> bool:
        """Send with ``transport`` and draw as ``look`` (None: as now) from now on: when either changes
        the meshes go, and are built afresh by the next update. False when both are already in use."""
        with self._lock:
            look = look or self.look
            if transport is self.transport and look == self.look:
                return False
            old, meshes, self.meshes = self.transport, self.meshes, []
            self.transport, self.look = transport, look
            self._stage.remove({m.mesh for m in meshes})
            for mesh in meshes:
                old.discard(mesh)
        return True

    def show(self, transport: MeshTransport, look: Look, detail: str, updates: Sequence[tuple[int, object]],
             captured_at: float) -> None:
        """Show ``updates`` [(track_id, payload)] of ``transport`` drawn as ``look`` at ``detail`` (any
        thread): each track's mesh is updated, meshes of other tracks are hidden. Nothing happens when
        the pool switched to another transport or look meanwhile (the next update goes the new way)."""
        with self._lock:
            if transport is not self.transport or look != self.look:
                return
            live = {track_id for track_id, _ in updates}
            for mesh in self.meshes:
                if mesh.track_id is not None and mesh.track_id not in live:
                    mesh.track_id, mesh.pending = None, None
                    mesh.mesh.visible = False
            for track_id, payload in updates:
                mesh = self._mesh_for(track_id)
                if mesh is None:
                    continue
                if mesh.detail != detail:
                    self._build(mesh, detail, payload, captured_at)
                else:
                    mesh.pending = (payload, captured_at)
                    self._send_if_idle(mesh)

    def restyle(self) -> None:
        """The stage's colour, lights, opacity or wireframe changed: each mesh follows (after any update in flight)."""
        with self._lock:
            for mesh in self.meshes:
                if self.transport.restyle(mesh) and mesh.last is not None and mesh.pending is None:
                    mesh.pending = (mesh.last, mesh.last_captured_at)
                    self._send_if_idle(mesh)

    def applied(self, seq: float) -> None:
        """The page has applied update ``seq``: it, and any older one of its face mesh, has landed."""
        with self._lock:
            for mesh in self.meshes:
                landed = mesh.landed(seq)
                if landed:
                    break
            else:
                return
            now, monotonic = time.time(), time.monotonic()
            for flight in landed:
                self._applied += 1
                self._rate.tick(monotonic)
                self._flight.append((monotonic - flight.sent_at) * 1000)
                self._round_trips.add(flight.nbytes, monotonic - flight.sent_at)
                if math.isfinite(flight.captured_at):
                    self._latency.append((now - flight.captured_at) * 1000)
            self._send_if_idle(mesh)

    def _mesh_for(self, track_id: int) -> FaceMesh | None:
        """The mesh showing ``track_id``, else a free one claimed for it (or a new one), else None."""
        for mesh in self.meshes:
            if mesh.track_id == track_id:
                return mesh
        free = next((m for m in self.meshes if m.track_id is None), None)
        if free is None and len(self.meshes) < self._max_faces:
            free = self.transport.new_mesh()
            self.meshes.append(free)
        if free is not None:
            free.track_id = track_id
        return free

    def _next_seq(self) -> float:
        self._seq += 1
        return float(self._seq)

    def _build(self, mesh: FaceMesh, detail: str, payload: object, captured_at: float) -> None:
        new = mesh.mesh is None
        seq = self._next_seq()
        nbytes = self.transport.build(mesh, detail, self.look, payload, seq)
        # The widget creation carries the update: it is in flight until the page acknowledges it.
        mesh.pending = None
        mesh.flights.clear()
        self._in_flight(mesh, payload, captured_at, Flight(seq, time.monotonic(), captured_at, nbytes))
        if new:
            self._stage.add(mesh.mesh)

    def _send_if_idle(self, mesh: FaceMesh) -> None:
        if mesh.pending is None:
            return
        while mesh.flights and time.monotonic() - mesh.flights[0].sent_at >= self._ack_timeout():
            mesh.flights.popleft()
            self._lost += 1
        if len(mesh.flights) >= self.transport.window:
            return
        payload, captured_at = mesh.pending
        mesh.pending = None
        mesh.mesh.visible = True
        seq = self._next_seq()
        sent_at = time.monotonic()
        nbytes = self.transport.send(mesh, payload, seq)
        if nbytes is not None:
            self._in_flight(mesh, payload, captured_at, Flight(seq, sent_at, captured_at, nbytes))

    @staticmethod
    def _in_flight(mesh: FaceMesh, payload: object, captured_at: float, flight: Flight) -> None:
        mesh.last, mesh.last_captured_at = payload, captured_at
        mesh.flights.append(flight)

    def stats(self) -> MeshStats:
        with self._lock:
            p50, p95 = (np.percentile(self._latency, [50, 95]) if self._latency else (math.nan, math.nan))
            f50, f95 = (np.percentile(self._flight, [50, 95]) if self._flight else (math.nan, math.nan))
            return MeshStats(applied=self._applied, applied_fps=self._rate.rate(time.monotonic()),
                             latency_p50=float(p50), latency_p95=float(p95), flight_p50=float(f50),
                             flight_p95=float(f95), lost=self._lost,
                             meshes=sum(m.track_id is not None for m in self.meshes),
                             transport=self.transport.name)

    def close(self) -> None:
        """Close every face mesh."""
        with self._lock:
            meshes, self.meshes = self.meshes, []
            for mesh in meshes:
                self.transport.discard(mesh)
