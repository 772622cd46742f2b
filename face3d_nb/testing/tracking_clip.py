"""A yardstick clip for tracking, cut together from the shared assets: shots, cuts, faces that enter,
a face that is hidden, a face near the detector's threshold, a black stretch. Deterministic.

The shots, at 640x360 (the engine's default input cap), in order:

0. ``obama.mp4``, its 55 frames;
1. a hard cut to ``trump_hillary.jpg`` sliding right, 30 frames (two faces);
2. a hard cut to a textured wall where three faces slide in from the edges one at a time (Emma from
   the left, then Jianzhu Guo from the right, then the AFLW2000 face from below); once all three are
   in, Jianzhu Guo is covered by a patch of wall for :data:`HIDDEN_FRAMES` frames; 80 frames;
3. a hard cut to one face blurred by a different amount in every frame, so that the detector finds
   it in some frames and not in others, 40 frames;
4. black, 10 frames;
5. ``obama.mp4`` again.

Each frame comes with the truth: which shot it belongs to and where each real face is (a region
that holds the face and no other), so a test can tell which face a track follows.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .assets import IMAGES, REFERENCE, VIDEO

__all__ = ["HEIGHT", "HIDDEN_FRAMES", "WIDTH", "Person", "TrackingClip", "tracking_clip"]

WIDTH, HEIGHT = 640, 360
HIDDEN_FRAMES = 10
_FACE = 150  # side of a pasted face crop, pixels
_SLIDE = 8  # frames a face takes to slide fully into view


@dataclass(frozen=True)
class Person:
    """One real face in one frame: ``name`` (e.g. ``"obama"``; the same person in two shots counts
    as two faces, told apart by the shot),
    ``region`` (4,) ``x1, y1, x2, y2`` pixels that hold this face and no other, ``hidden`` whether it
    is covered in this frame."""

    name: str
    region: tuple[float, float, float, float]
    hidden: bool = False


@dataclass(frozen=True)
class TrackingClip:
    """``frames`` (HEIGHT, WIDTH, 3) uint8 BGR; ``shots`` the shot index of each frame; ``people``
    the real faces in each frame (hidden ones included, flagged); ``cuts`` the first frame of each
    shot after the first."""

    frames: tuple[np.ndarray, ...]
    shots: tuple[int, ...]
    people: tuple[tuple[Person, ...], ...]
    cuts: tuple[int, ...]


def tracking_clip() -> TrackingClip:
    """Build the clip from the shared assets (about two seconds)."""
    builder = _Builder()
    video = _video()
    builder.shot([(frame, (Person("obama", (0, 0, WIDTH, HEIGHT)),)) for frame in video])
    builder.shot(_two_faces_sliding())
    builder.shot(_faces_entering())
    builder.shot(_flicker())
    builder.shot([(np.zeros((HEIGHT, WIDTH, 3), np.uint8), ())] * 10)
    builder.shot([(frame, (Person("obama", (0, 0, WIDTH, HEIGHT)),)) for frame in video])
    return builder.clip()


class _Builder:
    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []
        self.shots: list[int] = []
        self.people: list[tuple[Person, ...]] = []
        self.cuts: list[int] = []
        self._shot = -1

    def shot(self, frames: list[tuple[np.ndarray, tuple[Person, ...]]]) -> None:
        self._shot += 1
        if self.frames:
            self.cuts.append(len(self.frames))
        for frame, people in frames:
            self.frames.append(frame)
            self.shots.append(self._shot)
            self.people.append(people)

    def clip(self) -> TrackingClip:
        return TrackingClip(tuple(self.frames), tuple(self.shots), tuple(self.people), tuple(self.cuts))


def _video() -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(VIDEO))
    frames = []
    while (frame := capture.read()[1]) is not None:
        frames.append(cv2.resize(frame, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA))
    capture.release()
    if not frames:
        raise FileNotFoundError(f"no frames decoded from {VIDEO}")
    return frames


def _reference_boxes(name: str) -> np.ndarray:
    """(N, 4) upstream's face boxes in the photo, by descending score."""
    with np.load(REFERENCE / f"{name}.npz") as ref:
        return ref["boxes"][:, :4].astype(np.float64)


def _photo(name: str) -> np.ndarray:
    image = cv2.imread(str(IMAGES[name]))
    if image is None:
        raise FileNotFoundError(IMAGES[name])
    return image


def _two_faces_sliding() -> list[tuple[np.ndarray, tuple[Person, ...]]]:
    photo = _photo("trump_hillary")
    scale = 560 / photo.shape[1]
    photo = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    boxes = _reference_boxes("trump_hillary") * scale
    # Each face's region reaches halfway to the other one.
    middle = (boxes[0, 2] + boxes[1, 0]) / 2
    out = []
    for i in range(30):
        dx, dy = 2 * i, 50
        canvas = np.full((HEIGHT, WIDTH, 3), 30, np.uint8)
        canvas[dy : dy + photo.shape[0], dx : dx + photo.shape[1]] = photo
        out.append((canvas, (Person("trump", (0, 0, dx + middle, HEIGHT)),
                             Person("hillary", (dx + middle, 0, WIDTH, HEIGHT)))))
    return out


def _face_crop(name: str, index: int = 0) -> np.ndarray:
    """(_FACE, _FACE, 3) a square around one face of a photo (its box grown by half)."""
    photo = _photo(name)
    x1, y1, x2, y2 = _reference_boxes(name)[index]
    side = 1.5 * max(x2 - x1, y2 - y1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    padded = cv2.copyMakeBorder(photo, *(int(side),) * 4, cv2.BORDER_REPLICATE)
    sx, sy = int(cx - side / 2 + side), int(cy - side / 2 + side)
    crop = padded[sy : sy + int(side), sx : sx + int(side)]
    return cv2.resize(crop, (_FACE, _FACE), interpolation=cv2.INTER_AREA)


def _wall(seed: int) -> np.ndarray:
    """A smooth, muted, face-free texture."""
    rng = np.random.default_rng(seed)
    blobs = rng.uniform(70, 130, (6, 10, 1)) + rng.uniform(-12, 12, (6, 10, 3))
    blobs = blobs.astype(np.float32)
    wall = cv2.resize(blobs, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    wall += rng.normal(0, 3, wall.shape).astype(np.float32)
    return np.clip(wall, 0, 255).astype(np.uint8)


def _paste(canvas: np.ndarray, crop: np.ndarray | None, x: int, y: int) -> tuple[float, float, float, float]:
    """Paste a (_FACE, _FACE) ``crop`` with its top-left at (x, y), clipped to the canvas (None
    pastes nothing: the face is hidden); returns the visible part."""
    x1, y1, x2, y2 = max(x, 0), max(y, 0), min(x + _FACE, WIDTH), min(y + _FACE, HEIGHT)
    if crop is not None and x2 > x1 and y2 > y1:
        canvas[y1:y2, x1:x2] = crop[y1 - y : y2 - y, x1 - x : x2 - x]
    return float(x1), float(y1), float(x2), float(y2)


def _slide(start: tuple[int, int], end: tuple[int, int], t: int) -> tuple[int, int]:
    share = min(max(t / _SLIDE, 0.0), 1.0)
    return round(start[0] + share * (end[0] - start[0])), round(start[1] + share * (end[1] - start[1]))


def _faces_entering() -> list[tuple[np.ndarray, tuple[Person, ...]]]:
    wall = _wall(seed=1)
    entering = [  # name, crop, first frame, from, to
        ("emma", _face_crop("emma", 2), 0, (-_FACE, 40), (40, 40)),
        ("jianzhu", _face_crop("JianzhuGuo"), 20, (WIDTH, 30), (WIDTH - 40 - _FACE, 30)),
        ("aflw", _face_crop("aflw2000_image00427", 0), 40, ((WIDTH - _FACE) // 2, HEIGHT), ((WIDTH - _FACE) // 2, 200)),
    ]
    hidden = range(55, 55 + HIDDEN_FRAMES)
    out = []
    for i in range(80):
        canvas = wall.copy()
        people = []
        for name, crop, first, start, end in entering:
            if i < first:
                continue
            x, y = _slide(start, end, i - first)
            cover = name == "jianzhu" and i in hidden
            region = _paste(canvas, None if cover else crop, x, y)
            if region[2] > region[0] and region[3] > region[1]:
                people.append(Person(name, region, hidden=cover))
        out.append((canvas, tuple(people)))
    return out


def _flicker() -> list[tuple[np.ndarray, tuple[Person, ...]]]:
    wall = _wall(seed=2)
    side, x, y = 80, 280, 140
    crop = cv2.resize(_face_crop("JianzhuGuo"), (side, side), interpolation=cv2.INTER_AREA)
    # Blurred by more than about 5.6 pixels, this face is below the detector's threshold.
    rng = np.random.default_rng(3)
    out = []
    for sigma in rng.uniform(4.5, 6.5, 40):
        canvas = wall.copy()
        canvas[y : y + side, x : x + side] = cv2.GaussianBlur(crop, (0, 0), float(sigma))
        out.append((canvas, (Person("blurred", (x, y, x + side, y + side)),)))
    return out
