"""Face tracking across frames: detect, then follow each face from its own landmarks.

As upstream 3DDFA_V2's webcam demo does, the crop for a face in frame t is the square around its 68
landmarks in frame t-1 (:func:`~face3d_nb.core.regressor.roi_boxes_from_landmarks`), so the detector, by
far the slowest stage, runs only when it has to. It runs in one of two kinds of pass.

A **full pass** (the whole frame) judges every track. It runs:

- when there is no track, and every ``detect_interval`` frames;
- at once, on the same frame, when a followed track is doubtful: non-finite output, a crop smaller
  than ``min_face_size``, landmarks mostly outside the frame, a face that changed size by more than
  :data:`MAX_SCALE_CHANGE` or jumped by more than :data:`MAX_JUMP` of its size in one frame (what
  the regressor does when the face has gone: it shrinks the face towards the crop centre);
- on a shot cut (:mod:`.shot_cut`: a frame whose colours differ from the previous frame's by more
  than ``cut_threshold``), instead of following: the old landmarks belong to another picture, and
  a track that slid onto a face of the new shot would look plausible;
- every frame while a track is unconfirmed or missing (below);
- when the frame size changes (the old coordinates mean nothing in the new frame).

A **search pass** looks for faces that entered (MediaPipe's face landmarker, too, keeps detecting
until it has its maximum of faces): ``search_interval`` frames after the last pass, while fewer than
``max_faces`` faces are tracked, on the frame shrunk by ``search_scale`` (at 0.5 about 0.45x the time
of a full pass). A detection there that overlaps no track starts one. A track it should have seen
(:data:`SEARCH_MIN_SIDE`, :data:`SEARCH_MAX_TURN`) but did not find makes it a full pass on the same
frame: that is how a face that was covered, rather than gone, stops being shown (the regressor
follows a cover as readily as a face); a smaller or turned face is left alone.

Detections are matched to tracks greedily by the overlap (IoU) of the detector box with the track's
last box (its detector box when it was detected in its last frame, else its landmark box): at least
:data:`MATCH_IOU`, or a detector box that holds the last box's centre at a like size
(:func:`~.track_match.continues`); first the tracks shown in the previous frame, then the missing
ones. After a cut a face continues a track only when it clearly does: its landmark box overlaps the
track's by at least :data:`CUT_MATCH_IOU` (the same size and place); every other track ends there.

Track life, after SORT and ByteTrack (a track is confirmed after a few hits, and coasts through short
misses):

- An unmatched detection starts an **unconfirmed** track. Unconfirmed tracks are not in the output and
  have no id: a marginal detection that does not come back costs no id and is never drawn. A track is
  confirmed, and takes the next id (ids count up from 1 and are never reused), when ``confirm_hits``
  full passes in a row have found it, or at once when the detector's score is above
  ``confirm_score``; a full pass that misses it ends it.
- A confirmed track that a full pass does not find goes **missing**: it is not in the output (its
  landmarks are stale) and keeps its last landmarks for up to ``max_misses`` frames; a detection over
  them in that time brings the face back with its id.
- At most ``max_faces`` tracks are kept, matched ones (confirmed first, by id) before missing ones
  before new ones.

Each detected face is regressed twice, from the detector's box and then from its own landmarks, so
detection frames and tracked frames use the same kind of crop and the face does not jump when the
detector runs.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from math import hypot
from typing import TypeVar

import cv2
import numpy as np

from .pipeline import Face, Reconstructor
from .regressor import roi_boxes_from_bboxes, roi_boxes_from_landmarks
from .shot_cut import ShotCutDetector
from .timing import elapsed_ms
from .track_match import continues, greedy_match, iou, landmark_box, last_box, side, visible_share

__all__ = ["SETTINGS", "Tracker", "TrackerStep", "iou", "landmark_box", "visible_share"]

# A face does not grow or shrink by a fifth, nor move by half its size, between two camera frames.
MAX_SCALE_CHANGE = 0.2
MAX_JUMP = 0.5
# Least share of a face's landmark box that must lie inside the frame.
MIN_VISIBLE = 0.5
# Overlap (IoU) of a detection with a track's last box for it to continue that track.
MATCH_IOU = 0.3
# Overlap of a face's landmark box with a track's for it to continue the track across a cut: the
# same size in the same place (a face's landmark boxes in successive frames overlap by 0.8 or more).
CUT_MATCH_IOU = 0.5
# A search pass judges the tracks whose landmark box is at least this many pixels across at its
# scale: at half size the detector finds faces from about 25 to 40 pixels there, the face and its
# pose deciding; a smaller face it misses is not taken for gone.
SEARCH_MIN_SIDE = 30
# ...and that face the camera: a face turned further (yaw or pitch, degrees) may be one the detector
# cannot see, and is left to the full passes, so that turning a head does not hide it.
SEARCH_MAX_TURN = 45.0

_T = TypeVar("_T")

#: The tracker's settings (attributes of :class:`Tracker`); :class:`~face3d_nb.live.config.EngineConfig`
#: has a key of each name with the same meaning and default.
SETTINGS = ("detect_interval", "search_interval", "search_scale", "max_faces", "min_face_size", "confirm_hits",
            "confirm_score", "max_misses", "cut_threshold")


@dataclass(frozen=True)
class TrackerStep:
    """What one :meth:`Tracker.step` found.

    ``faces`` ``(track_id, Face)`` pairs (raw, unsmoothed) in the frame's pixels, confirmed tracks
    seen in this frame, by ascending id; ``detected`` whether the detector ran (a full or a search
    pass); ``detect_ms`` and ``regress_ms`` wall time of those stages (regression includes landmark
    decoding); ``cut`` whether the frame starts a new shot; ``searched`` whether a search pass ran (a
    full pass may have followed it on the same frame).
    """

    faces: tuple[tuple[int, Face], ...]
    detected: bool
    detect_ms: float
    regress_ms: float
    cut: bool = False
    searched: bool = False


@dataclass
class _Track:
    face: Face
    hits: int = 1
    # None until confirmed.
    track_id: int | None = None
    # Frames in a row a full pass has not found it; 0 while it is seen.
    misses: int = 0


class _Stopwatch:
    """Wall time per stage, milliseconds."""

    def __init__(self) -> None:
        self.ms = {"detect": 0.0, "regress": 0.0}

    def time(self, stage: str, fn: Callable[..., _T], *args) -> _T:
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.ms[stage] += elapsed_ms(start)


class Tracker:
    """Follows up to ``max_faces`` faces through a stream of frames of one size.

    ``tracker.step(image)`` takes a BGR uint8 frame and returns a :class:`TrackerStep`. The settings
    (:data:`SETTINGS`, documented with :class:`~face3d_nb.live.config.EngineConfig`) are plain
    attributes the caller may change between frames, one by one or all at once with :meth:`configure`.
    Not thread safe: one thread steps it.
    """

    def __init__(self, reconstructor: Reconstructor, *, detect_interval: int = 30, search_interval: int = 4,
                 search_scale: float = 0.5, max_faces: int = 4, min_face_size: float = 40.0, confirm_hits: int = 2,
                 confirm_score: float = 0.9, max_misses: int = 10, cut_threshold: float = 0.2):
        self.reconstructor = reconstructor
        self.detect_interval = detect_interval
        self.search_interval = search_interval
        self.search_scale = search_scale
        self.max_faces = max_faces
        self.min_face_size = min_face_size
        self.confirm_hits = confirm_hits
        self.confirm_score = confirm_score
        self.max_misses = max_misses
        self.cut_threshold = cut_threshold
        self._ids = itertools.count(1)
        self._tracks: list[_Track] = []
        self._cuts = ShotCutDetector()
        self._since_full = self._since_pass = 0
        self._shape: tuple[int, int] | None = None

    def configure(self, settings) -> None:
        """Take each of :data:`SETTINGS` from the attribute of that name of ``settings`` (an
        :class:`~face3d_nb.live.config.EngineConfig`, or anything with those attributes)."""
        for name in SETTINGS:
            setattr(self, name, getattr(settings, name))

    @property
    def track_ids(self) -> tuple[int, ...]:
        """Ids of the confirmed tracks, seen or missing."""
        return tuple(t.track_id for t in self._tracks if t.track_id is not None)

    def reset(self) -> None:
        """Forget all tracks and the previous frame; the next frame runs the detector. Ids keep counting up."""
        self._tracks = []
        self._cuts.reset()
        self._since_full = self._since_pass = 0

    def step(self, image: np.ndarray) -> TrackerStep:
        shape = image.shape[:2]
        if shape != self._shape:
            self.reset()
            self._shape = shape
        self._since_full += 1
        self._since_pass += 1
        watch = _Stopwatch()
        cut = self._cuts.score(image) > self.cut_threshold
        full = cut or self._full_due()
        if not full:
            followed = watch.time("regress", self._follow, image)
            if all(self._plausible(t.face, f, shape) for t, f in zip(self._tracks, followed)):
                for track, face in zip(self._tracks, followed):
                    track.face = face
            else:
                full = True
        searched = False
        if not full and self._search_due():
            self._since_pass = 0
            # A search of the whole frame at its size is a full pass.
            searched = self.search_scale < 1
            if searched:
                boxes = watch.time("detect", self._detect, image, self.search_scale)
                full = not watch.time("regress", self._search, image, boxes)
            else:
                full = True
        if full:
            self._since_pass = 0
            boxes = watch.time("detect", self._detect, image, 1.0)
            watch.time("regress", self._judge, image, boxes, cut)
            self._since_full = 0
        shown = sorted((t for t in self._tracks if t.track_id is not None and not t.misses), key=lambda t: t.track_id)
        return TrackerStep(tuple((t.track_id, t.face) for t in shown), full or searched, watch.ms["detect"],
                           watch.ms["regress"], cut=cut, searched=searched)

    def _full_due(self) -> bool:
        return (not self._tracks or self._since_full >= self.detect_interval
                or any(t.track_id is None or t.misses for t in self._tracks))

    def _search_due(self) -> bool:
        return 0 < self.search_interval <= self._since_pass and len(self._tracks) < self.max_faces

    def _detect(self, image: np.ndarray, scale: float) -> np.ndarray:
        if scale >= 1:
            return self.reconstructor.detector(image)
        h, w = image.shape[:2]
        size = (max(round(w * scale), 1), max(round(h * scale), 1))
        boxes = self.reconstructor.detector(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
        boxes[:, :4] *= np.array([w / size[0], h / size[1]] * 2, np.float32)
        return boxes

    def _follow(self, image: np.ndarray) -> list[Face]:
        rois = roi_boxes_from_landmarks(np.stack([t.face.landmarks for t in self._tracks]))
        # No detector box: each face carries its landmark box, with a NaN score.
        return self.reconstructor.faces(image, None, rois)

    def _plausible(self, old: Face, new: Face, shape: tuple[int, int]) -> bool:
        """Whether followed face ``new`` (which carries its landmark box) may continue ``old``."""
        if not (np.isfinite(new.params).all() and np.isfinite(new.landmarks).all()):
            return False
        if new.roi_box[2] - new.roi_box[0] < self.min_face_size:
            return False
        # As Python floats the tests below are a few scalar operations, not a dozen array calls.
        box, before = new.box[:4].tolist(), landmark_box(old.landmarks).tolist()
        h, w = shape
        if visible_share(box, (0.0, 0.0, w, h)) < MIN_VISIBLE:
            return False
        size, size_before = side(box), side(before)
        if size_before <= 0 or abs(size / size_before - 1) > MAX_SCALE_CHANGE:
            return False
        jump = hypot(box[0] + box[2] - before[0] - before[2], box[1] + box[3] - before[1] - before[3]) / 2
        return jump <= MAX_JUMP * size_before

    def _judge(self, image: np.ndarray, boxes: np.ndarray, cut: bool) -> None:
        """A full pass: match, refresh, miss, end and start tracks."""
        faces: dict[int, Face] = {}
        if cut:
            # Only the best max_faces detections can make tracks; each continues a track only when
            # its own landmarks lie where the track's were (landmark boxes compared, like with like).
            boxes = boxes[: self.max_faces]
            faces = dict(enumerate(self._regress(image, boxes))) if len(boxes) else {}
            probes = np.array([landmark_box(f.landmarks) for f in faces.values()]).reshape(-1, 4)
            pairs = _pairs(probes, self._tracks, CUT_MATCH_IOU, set(), by_landmarks=True)
        else:
            pairs = _pairs(boxes, [t for t in self._tracks if not t.misses], MATCH_IOU, set())
            pairs += _pairs(boxes, [t for t in self._tracks if t.misses], MATCH_IOU, {d for d, _ in pairs})
        found = {id(t) for _, t in pairs}
        missing = [t for t in self._tracks if id(t) not in found and not cut and t.track_id is not None
                   and t.misses < self.max_misses]
        for track in missing:
            track.misses += 1
        taken = {d for d, _ in pairs}
        pairs.sort(key=lambda p: (p[1].track_id is None, p[1].track_id or 0))
        kept = (pairs + [(None, t) for t in missing])[: self.max_faces]
        self._tracks = [t for _, t in kept]
        matched = [(d, t) for d, t in kept if d is not None]
        new = [d for d in range(len(boxes)) if d not in taken][: max(self.max_faces - len(self._tracks), 0)]
        todo = [d for d in [*(d for d, _ in matched), *new] if d not in faces]
        if todo:
            faces.update(zip(todo, self._regress(image, boxes[todo])))
        for d, track in matched:
            track.face, track.misses, track.hits = faces[d], 0, track.hits + 1
            self._confirm(track, float(boxes[d, 4]))
        self._tracks += [self._confirm(_Track(faces[d]), float(boxes[d, 4])) for d in new]

    def _search(self, image: np.ndarray, boxes: np.ndarray) -> bool:
        """A search pass: start tracks for detections that overlap no track. False, changing nothing,
        when it missed a track it should have seen (:data:`SEARCH_MIN_SIDE`): a full pass must judge."""
        claimed = [last_box(t.face) for t in self._tracks]
        found = {k for _, k in greedy_match(boxes, claimed, MATCH_IOU, set(), centred=True)}
        if any(k not in found and self._visible_to_search(t.face) for k, t in enumerate(self._tracks)):
            return False
        new = [d for d in range(len(boxes)) if not any(continues(boxes[d], c, MATCH_IOU) for c in claimed)]
        new = new[: max(self.max_faces - len(self._tracks), 0)]
        if new:
            self._tracks += [self._confirm(_Track(face), float(boxes[d, 4]))
                             for d, face in zip(new, self._regress(image, boxes[new]))]
        return True

    def _visible_to_search(self, face: Face) -> bool:
        facing = max(abs(face.pose.yaw), abs(face.pose.pitch)) <= SEARCH_MAX_TURN
        return facing and side(landmark_box(face.landmarks)) * self.search_scale >= SEARCH_MIN_SIDE

    def _confirm(self, track: _Track, score: float) -> _Track:
        if track.track_id is None and (track.hits >= self.confirm_hits or score > self.confirm_score):
            track.track_id = next(self._ids)
        return track

    def _regress(self, image: np.ndarray, dets: np.ndarray) -> list[Face]:
        # Regress twice, as upstream does: the first pass's landmarks only place the second crop.
        rec, rois = self.reconstructor, roi_boxes_from_bboxes(dets)
        first = rec.model.landmarks_batch(rec.regressor(image, rois), rois)
        return rec.faces(image, dets, roi_boxes_from_landmarks(first))


def _pairs(boxes: np.ndarray, tracks: list[_Track], threshold: float, taken: set[int],
           by_landmarks: bool = False) -> list[tuple[int, _Track]]:
    """(detection index, track) pairs: :func:`~.track_match.greedy_match` against the tracks' last
    boxes (overlap or a held centre), or their landmark boxes (overlap only)."""
    targets = [landmark_box(t.face.landmarks) if by_landmarks else last_box(t.face) for t in tracks]
    return [(d, tracks[k]) for d, k in greedy_match(boxes, targets, threshold, taken, centred=not by_landmarks)]
