"""Generated pictures and clips for tests of wiring: bright, shaded face-like ovals on a dark room.

The synthetic detector (:mod:`.synthetic_models`) fires on such ovals, so these stand in for the
real photos and video wherever a test needs *some* face, not a particular one. Deterministic.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

__all__ = ["CLIP_FRAMES", "FPS", "clip_frames", "face_picture", "write_clip"]

FPS = 25
# As many frames as the real test video, so frame counts in the tests mean the same with both.
CLIP_FRAMES = 55
_BACKGROUND = (40, 45, 50)
_SKIN = np.array([150, 185, 230], np.float64)


def face_picture(width: int = 640, height: int = 360, centres=((0.5, 0.5),), size: float = 0.5,
                 seed: int = 0) -> np.ndarray:
    """(height, width, 3) uint8 BGR: a face-like oval at each of ``centres`` (fractions of the
    width and height), ``size`` of the height tall, brightest at its middle, on a dim textured
    background; ``seed`` fixes the texture."""
    rng = np.random.default_rng(seed)
    image = np.empty((height, width, 3), np.float64)
    image[:] = _BACKGROUND
    image += rng.normal(0, 4, (height, width, 1))
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    for cx, cy in centres:
        cx, cy = cx * width, cy * height
        ry = size * height / 2
        rx = 0.78 * ry
        r = np.hypot((xs - cx) / rx, (ys - cy) / ry)
        # Shading falls off towards the rim, so the middle of the face is where it is brightest.
        shade = np.clip(1.15 - 0.45 * r**2, 0, None)[..., None]
        inside = (r <= 1)[..., None]
        image = np.where(inside, _SKIN * shade, image)
        for ex in (-0.35, 0.35):
            cv2.ellipse(image, (int(cx + ex * rx), int(cy - 0.2 * ry)), (int(0.15 * rx), int(0.07 * ry)), 0, 0, 360,
                        (60, 50, 40), -1)
        cv2.ellipse(image, (int(cx), int(cy + 0.45 * ry)), (int(0.3 * rx), int(0.08 * ry)), 0, 0, 360, (70, 60, 120), -1)
    return np.clip(image, 0, 255).astype(np.uint8)


def clip_frames(frames: int = CLIP_FRAMES, width: int = 1280, height: int = 720) -> list[np.ndarray]:
    """BGR frames of one face drifting slowly to the right (a twentieth of the width in all)."""
    first = face_picture(width, height, ((0.4, 0.5),))
    shifts = [np.float32([[1, 0, 0.05 * width * i / max(frames - 1, 1)], [0, 1, 0]]) for i in range(frames)]
    return [cv2.warpAffine(first, m, (width, height), borderMode=cv2.BORDER_REFLECT) for m in shifts]


def write_clip(path: Path, frames: int = CLIP_FRAMES, width: int = 1280, height: int = 720) -> Path:
    """Write :func:`clip_frames` to ``path`` (``.mp4``, MPEG-4 part 2) at :data:`FPS`; returns ``path``."""
    path = Path(path)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}")
    try:
        for frame in clip_frames(frames, width, height):
            writer.write(frame)
    finally:
        writer.release()
    return path
