"""Playing a video file into the live engine as a camera would: one frame every 1/fps seconds.

A camera does not wait for a slow consumer, so neither does :func:`feed_realtime`: it submits each
frame at its due time and the engine drops what it cannot keep up with.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from ..core.frames import ImageError

__all__ = ["DEFAULT_FPS", "feed_realtime", "open_video"]

# For containers that do not state a usable frame rate.
DEFAULT_FPS = 25.0


def open_video(path: str | Path) -> tuple[Iterator[np.ndarray], float]:
    """The BGR frames of a video file, decoded lazily, and its frame rate (frames per second).

    Raises :class:`~face3d_nb.core.frames.ImageError` when the file cannot be opened as a video.
    """
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise ImageError(f"{path}: not a readable video")
    fps = capture.get(cv2.CAP_PROP_FPS)
    if not (fps and np.isfinite(fps) and 1 <= fps <= 1000):
        fps = DEFAULT_FPS

    def frames() -> Iterator[np.ndarray]:
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    return
                yield frame
        finally:
            capture.release()

    return frames(), float(fps)


def feed_realtime(submit: Callable[..., None], frames: Iterable[np.ndarray], fps: float, *,
                  clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> int:
    """Call ``submit(frame, captured_at=..., seq=i)`` for frame i at ``start + i / fps`` on ``clock``.

    ``captured_at`` is the time the frame was handed over (late when reading the file fell behind,
    as a camera frame would be late). Returns the number of frames submitted.
    """
    interval = 1.0 / fps
    start = clock()
    count = 0
    for i, frame in enumerate(frames):
        delay = start + i * interval - clock()
        if delay > 0:
            sleep(delay)
        submit(frame, captured_at=clock(), seq=i)
        count += 1
    return count
