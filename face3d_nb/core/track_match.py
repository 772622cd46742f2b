"""Boxes for tracking: landmark boxes, overlap, and the greedy matching of detections to tracks.

Boxes are ``x1, y1, x2, y2`` in pixels; a face's *last box* is what a new detection is compared
with: its detector box when the detector found it in its last frame, else its landmark box.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .pipeline import Face

__all__ = ["SIZE_RATIO", "continues", "greedy_match", "iou", "landmark_box", "last_box", "side", "visible_share"]

#: Most a detection's size may differ from a track's box that it continues by holding its centre.
SIZE_RATIO = 2.5


def landmark_box(landmarks: np.ndarray) -> np.ndarray:
    """(4,) ``x1, y1, x2, y2`` bounding the landmarks (K, 2+)."""
    pts = np.asarray(landmarks, dtype=np.float64)[:, :2]
    return np.concatenate([np.minimum.reduce(pts, axis=0), np.maximum.reduce(pts, axis=0)])


def last_box(face: Face) -> np.ndarray:
    """(4,) the box a detection is compared with: like with like where it can be (a tracked face
    carries its landmark box with a NaN score, a detected one its detector box)."""
    return face.box[:4].astype(np.float64) if np.isfinite(face.box[4]) else landmark_box(face.landmarks)


def side(box: np.ndarray | Sequence[float]) -> float:
    """The longer side of a box (an array or plain floats), pixels."""
    return float(max(box[2] - box[0], box[3] - box[1]))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two ``x1, y1, x2, y2`` boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def visible_share(box: np.ndarray | Sequence[float], frame: np.ndarray | Sequence[float]) -> float:
    """Share of ``box``'s area that lies inside ``frame`` (both ``x1, y1, x2, y2``, arrays or plain floats)."""
    w = min(box[2], frame[2]) - max(box[0], frame[0])
    h = min(box[3], frame[3]) - max(box[1], frame[1])
    area = (box[2] - box[0]) * (box[3] - box[1])
    if w <= 0 or h <= 0 or area <= 0:
        return 0.0
    return float(w * h / area)


def continues(box: np.ndarray, target: np.ndarray, threshold: float, centred: bool = True) -> bool:
    """Whether a detection ``box`` (4+,) may continue the track whose box is ``target`` (4,): an
    overlap of at least ``threshold`` or, when ``centred``, a box that holds the target's centre and
    is neither more than :data:`SIZE_RATIO` times larger nor smaller (a face's detector box and its
    landmark box differ in shape, the more so in profile)."""
    return iou(box[:4], target) >= threshold or (centred and _holds_centre(box, target))


def _holds_centre(box: np.ndarray, target: np.ndarray) -> bool:
    cx, cy = (target[:2] + target[2:4]) / 2
    ratio = side(box[:4]) / max(side(target), 1e-6)
    return box[0] <= cx <= box[2] and box[1] <= cy <= box[3] and 1 / SIZE_RATIO <= ratio <= SIZE_RATIO


def greedy_match(boxes: np.ndarray, targets: Sequence[np.ndarray], threshold: float, taken: set[int],
                 centred: bool = False) -> list[tuple[int, int]]:
    """(detection index, target index) pairs, one each, that :func:`continues` allows, greedily by
    descending overlap, then ascending distance of the centres, of the detections ``boxes`` (N, 5+)
    with the ``targets`` boxes (4,), leaving out the detections in ``taken``."""
    scores = []
    for d in range(len(boxes)):
        if d in taken:
            continue
        for k, target in enumerate(targets):
            # continues() inlined, so that each pair's overlap is computed once.
            overlap = iou(boxes[d, :4], target)
            if overlap >= threshold or (centred and _holds_centre(boxes[d], target)):
                distance = np.hypot(*((target[:2] + target[2:4]) / 2 - (boxes[d, :2] + boxes[d, 2:4]) / 2))
                scores.append((overlap, -float(distance), d, k))
    pairs, used_d, used_k = [], set(), set()
    for _, _, d, k in sorted(scores, reverse=True):
        if d not in used_d and k not in used_k:
            pairs.append((d, k))
            used_d.add(d)
            used_k.add(k)
    return pairs
