"""Mesh detail levels: the same face with fewer vertices and triangles.

A level keeps a subset of the model's vertices (so only their rows of the basis are decoded) and
re-triangulates by vertex clustering on the mean shape: vertices are binned in a 3-D grid, each
bin is represented by its vertex nearest the bin's centroid, and every triangle is mapped to the
representatives, dropping those that collapse. The 68 landmark vertices always represent
themselves, so landmarks stay exact at every level.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .morphable import MorphableModel

__all__ = ["LEVELS", "DetailLevels", "MeshDetail", "simplify"]

# Target fraction of the full mesh's vertices per level.
LEVELS = {"full": 1.0, "medium": 0.25, "low": 0.0625}


@dataclass(frozen=True)
class MeshDetail:
    """A detail level: ``vertices`` (K,) indices of kept full-mesh vertices, ascending;
    ``triangles`` (T, 3) int32 indices into the kept vertices, same winding as the full mesh."""

    name: str
    vertices: np.ndarray
    triangles: np.ndarray


def _cluster(points: np.ndarray, cell: float, pinned: np.ndarray) -> np.ndarray:
    """Cluster label per point: grid cells of side ``cell``; ``pinned`` points get their own label."""
    cells = np.floor((points - points.min(axis=0)) / cell).astype(np.int64)
    _, labels = np.unique(cells, axis=0, return_inverse=True)
    labels = labels.reshape(-1)
    labels[pinned] = labels.max() + 1 + np.arange(len(pinned))
    # Cells holding only pinned points are now empty: renumber densely.
    return np.unique(labels, return_inverse=True)[1].reshape(-1)


def _normals(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    a, b, c = (points[triangles[:, k]] for k in range(3))
    return np.cross(b - a, c - a)


def simplify(name: str, points: np.ndarray, triangles: np.ndarray, pinned: np.ndarray, fraction: float) -> MeshDetail:
    """Reduce the mesh (``points`` (V, 3), ``triangles`` (T, 3)) to about ``fraction`` of its vertices."""
    n = len(points)
    if fraction >= 1:
        return MeshDetail(name, np.arange(n), np.asarray(triangles, np.int32))
    target = max(int(n * fraction), len(pinned) + 4)
    # Bisect the cell size (log scale) until the cluster count is within 5% of the target.
    lo, hi = 1e-6 * np.ptp(points), np.ptp(points)
    for _ in range(40):
        cell = np.sqrt(lo * hi)
        labels = _cluster(points, cell, pinned)
        count = labels.max() + 1
        if abs(count - target) <= 0.05 * target:
            break
        lo, hi = (cell, hi) if count > target else (lo, cell)
    n_labels = labels.max() + 1
    centroid = np.zeros((n_labels, 3))
    np.add.at(centroid, labels, points)
    centroid /= np.bincount(labels, minlength=n_labels)[:, None]
    distance = np.linalg.norm(points - centroid[labels], axis=1)
    # Representative of each cluster: its point nearest the centroid (pinned points are alone).
    order = np.lexsort((distance, labels))
    first = np.ones(n, bool)
    first[1:] = labels[order][1:] != labels[order][:-1]
    representative = np.empty(n_labels, np.int64)
    representative[labels[order][first]] = order[first]
    triangles = np.asarray(triangles)
    mapped = representative[labels[triangles]]
    valid = (mapped[:, 0] != mapped[:, 1]) & (mapped[:, 1] != mapped[:, 2]) & (mapped[:, 0] != mapped[:, 2])
    # A triangle whose corners moved past each other now faces the other way: it would be drawn
    # as a dark fleck on the surface (or fold over its neighbours), so it is left out.
    valid &= (_normals(points, mapped) * _normals(points, triangles)).sum(axis=1) > 0
    mapped = mapped[valid]
    _, unique_rows = np.unique(np.sort(mapped, axis=1), axis=0, return_index=True)
    mapped = mapped[np.sort(unique_rows)]
    kept = np.unique(mapped)
    kept = np.union1d(kept, pinned)
    index = np.full(n, -1, np.int64)
    index[kept] = np.arange(len(kept))
    return MeshDetail(name, kept, index[mapped].astype(np.int32))


class DetailLevels:
    """The detail levels of one morphable model, each built on first use (a few tenths of a second)
    and kept; safe to use from several threads.

    ``detail(name)`` is the :class:`MeshDetail` of level ``name`` (one of :data:`LEVELS`);
    ``model(name)`` the model reduced to it, which decodes only the level's vertices.
    """

    def __init__(self, model: MorphableModel):
        self._full = model
        self._lock = threading.Lock()
        self._built: dict[str, tuple[MeshDetail, MorphableModel]] = {}

    def _get(self, name: str) -> tuple[MeshDetail, MorphableModel]:
        if name not in LEVELS:
            raise ValueError(f"unknown mesh detail {name!r}; choose one of {', '.join(LEVELS)}")
        with self._lock:
            if name not in self._built:
                m = self._full
                detail = simplify(name, m.mean, m.triangles, m.landmarks, LEVELS[name])
                self._built[name] = (detail, m if LEVELS[name] >= 1 else m.reduced(detail.vertices, detail.triangles))
            return self._built[name]

    def detail(self, name: str) -> MeshDetail:
        return self._get(name)[0]

    def model(self, name: str) -> MorphableModel:
        return self._get(name)[1]
