"""Face tracking across frames: detect once, then follow each face from its own landmarks.

As upstream 3DDFA_V2's webcam demo does, the crop for a face in frame t is the square around its 68
landmarks in frame t-1 (:func:`~face3d_nb.core.regressor.roi_box_from_landmarks`), so the detector, by
far the slowest stage, runs only:

- when there is no track (every frame until a face shows up);
- every ``detect_interval`` frames while tracking, to pick up new faces and drop lost ones;
- at once, on the same frame, when a track is doubtful: non-finite output, a crop smaller than
  ``min_face_size``, landmarks mostly outside the frame, a face that changed size by more than
  :data:`MAX_SCALE_CHANGE` or jumped by more than :data:`MAX_JUMP` of its size in one frame (what
  the regressor does when the face has gone: it shrinks the face towards the crop centre);
- when the frame size changes (the old coordinates mean nothing in the new frame).

On a detection frame, detections are matched to tracks by the overlap of the detector box with the
track's landmark box, so a face keeps its id; unmatched tracks end and unmatched detections start
new tracks (ids never reused), up to ``max_faces`` with existing tracks first; so a face hidden
behind another loses its track, and two tracks that slid onto one face become one. Each detected face is
regressed twice, from the detector's box and then from its own landmarks, so detection frames and
tracked frames use the same kind of crop and the face does not jump when the detector runs.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, replace

import numpy as np

from .pipeline import Face, Reconstructor
from .regressor import roi_box_from_bbox, roi_box_from_landmarks
from .timing import elapsed_ms

__all__ = ["Tracker", "TrackerStep", "iou", "landmark_box", "visible_share"]

# A face does not grow or shrink by a fifth, nor move by half its size, between two camera frames.
MAX_SCALE_CHANGE = 0.2
MAX_JUMP = 0.5
# Least share of a face's landmark box that must lie inside the frame.
MIN_VISIBLE = 0.5
# Overlap (IoU) of a detection with a track's landmark box for it to continue that track.
MATCH_IOU = 0.3


@dataclass(frozen=True)
class TrackerStep:
    """What one :meth:`Tracker.step` found.

    ``faces`` ``(track_id, Face)`` pairs (raw, unsmoothed) in the frame's pixels, existing tracks by
    ascending id, then new ones; ``detected`` whether the detector ran; ``detect_ms`` and
    ``regress_ms`` wall time of those stages (regression includes landmark decoding).
    """

    faces: tuple[tuple[int, Face], ...]
    detected: bool
    detect_ms: float
    regress_ms: float


@dataclass
class _Track:
    track_id: int
    face: Face


def landmark_box(landmarks: np.ndarray) -> np.ndarray:
    """(4,) ``x1, y1, x2, y2`` bounding the landmarks (K, 2+)."""
    pts = np.asarray(landmarks)[:, :2]
    return np.concatenate([pts.min(axis=0), pts.max(axis=0)]).astype(np.float64)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two ``x1, y1, x2, y2`` boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


class Tracker:
    """Follows up to ``max_faces`` faces through a stream of frames of one size.

    ``tracker.step(image)`` takes a BGR uint8 frame and returns a :class:`TrackerStep`.
    ``detect_interval``, ``max_faces`` and ``min_face_size`` are plain attributes the caller may
    change between frames. Not thread safe: one thread steps it.
    """

    def __init__(self, reconstructor: Reconstructor, *, detect_interval: int = 30, max_faces: int = 4,
                 min_face_size: float = 40.0):
        self.reconstructor = reconstructor
        self.detect_interval = detect_interval
        self.max_faces = max_faces
        self.min_face_size = min_face_size
        self._ids = itertools.count(1)
        self._tracks: list[_Track] = []
        self._since_detect = 0
        self._shape: tuple[int, int] | None = None

    @property
    def track_ids(self) -> tuple[int, ...]:
        return tuple(t.track_id for t in self._tracks)

    def reset(self) -> None:
        """Forget all tracks; the next frame runs the detector. Ids keep counting up."""
        self._tracks = []
        self._since_detect = 0

    def step(self, image: np.ndarray) -> TrackerStep:
        shape = image.shape[:2]
        if shape != self._shape:
            self.reset()
            self._shape = shape
        detect_ms = regress_ms = 0.0
        detect = not self._tracks or self._since_detect >= self.detect_interval
        if not detect:
            start = time.perf_counter()
            followed = self._follow(image)
            regress_ms += elapsed_ms(start)
            doubtful = any(not self._plausible(old.face, new, shape) for old, new in zip(self._tracks, followed))
            if doubtful:
                detect = True
            else:
                self._tracks = [_Track(t.track_id, f) for t, f in zip(self._tracks, followed)]
                self._since_detect += 1
        if detect:
            start = time.perf_counter()
            boxes = self.reconstructor.detector(image)
            detect_ms = elapsed_ms(start)
            start = time.perf_counter()
            self._redetect(image, boxes)
            regress_ms += elapsed_ms(start)
            self._since_detect = 1
        return TrackerStep(tuple((t.track_id, t.face) for t in self._tracks), detect, detect_ms, regress_ms)

    def _follow(self, image: np.ndarray) -> list[Face]:
        rois = [roi_box_from_landmarks(t.face.landmarks) for t in self._tracks]
        faces = self.reconstructor.faces(image, [t.face.box for t in self._tracks], rois)
        return [_with_landmark_box(f) for f in faces]

    def _plausible(self, old: Face, new: Face, shape: tuple[int, int]) -> bool:
        if not (np.isfinite(new.params).all() and np.isfinite(new.landmarks).all()):
            return False
        if new.roi_box[2] - new.roi_box[0] < self.min_face_size:
            return False
        box, before = landmark_box(new.landmarks), landmark_box(old.landmarks)
        h, w = shape
        inside = visible_share(box, np.array([0.0, 0.0, w, h]))
        if inside < MIN_VISIBLE:
            return False
        size, size_before = _side(box), _side(before)
        if size_before <= 0 or abs(size / size_before - 1) > MAX_SCALE_CHANGE:
            return False
        jump = np.hypot(*((box[:2] + box[2:]) / 2 - (before[:2] + before[2:]) / 2))
        return bool(jump <= MAX_JUMP * size_before)

    def _redetect(self, image: np.ndarray, boxes: np.ndarray) -> None:
        pairs = self._match(boxes)
        matched = {d for d, _ in pairs}
        chosen = sorted(pairs, key=lambda p: p[1])
        chosen += [(d, None) for d in range(len(boxes)) if d not in matched]
        chosen = chosen[: self.max_faces]
        if not chosen:
            self._tracks = []
            return
        dets = boxes[[d for d, _ in chosen]]
        first = self.reconstructor.faces(image, dets, [roi_box_from_bbox(b) for b in dets])
        refined = self.reconstructor.faces(image, dets, [roi_box_from_landmarks(f.landmarks) for f in first])
        self._tracks = [
            _Track(track_id if track_id is not None else next(self._ids), face)
            for (_, track_id), face in zip(chosen, refined)
        ]

    def _match(self, boxes: np.ndarray) -> list[tuple[int, int]]:
        """Greedy (detection index, track id) pairs by descending overlap."""
        scores = [
            (iou(boxes[d, :4], landmark_box(t.face.landmarks)), d, t.track_id)
            for d in range(len(boxes))
            for t in self._tracks
        ]
        pairs, used_d, used_t = [], set(), set()
        for overlap, d, track_id in sorted(scores, reverse=True):
            if overlap < MATCH_IOU:
                break
            if d not in used_d and track_id not in used_t:
                pairs.append((d, track_id))
                used_d.add(d)
                used_t.add(track_id)
        return pairs


def visible_share(box: np.ndarray, frame: np.ndarray) -> float:
    """Share of ``box``'s area that lies inside ``frame`` (both ``x1, y1, x2, y2``)."""
    w = min(box[2], frame[2]) - max(box[0], frame[0])
    h = min(box[3], frame[3]) - max(box[1], frame[1])
    area = (box[2] - box[0]) * (box[3] - box[1])
    if w <= 0 or h <= 0 or area <= 0:
        return 0.0
    return float(w * h / area)


def _side(box: np.ndarray) -> float:
    return float(max(box[2] - box[0], box[3] - box[1]))


def _with_landmark_box(face: Face) -> Face:
    # A tracked face has no detector box: report its landmark box, with a NaN score.
    return replace(face, box=np.append(landmark_box(face.landmarks), np.nan).astype(np.float32))
