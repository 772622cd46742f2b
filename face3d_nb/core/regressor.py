"""3DMM parameter regression: face box or landmarks -> square roi -> 120x120 crop -> 62 params.

Reproduces upstream 3DDFA_V2's cropping exactly (roi geometry, half-to-even rounding, zero padding
outside the image, bilinear resize); the ONNX graph normalises pixels and de-normalises params.
All faces of a frame go through the network in one ``session.run``; the roi geometry is computed
for all of them at once, and each face costs one ``cv2.resize`` straight into the batch (a view of
the frame when the roi lies inside it, so nothing is copied).

Threads, chosen by measurement (``benchmarks/bench_threads.py``, one process per policy; this
machine: 2 virtual cores of an AMD EPYC under KVM, shared; mb05, one face, medians). Run back to
back on a quiet machine the network takes 0.93 ms on one thread, 0.83 ms on two whose idle thread
sleeps (our sessions' default, :func:`~.runtime.create_session`) and 0.55 ms on two that spin: the
second core pays only while its thread spins. Run once per frame (10 ms asleep between runs), two
threads lose: one thread 1.30 ms for 1.33 ms of CPU per run, two sleeping 1.47 ms for 1.57 ms, two
spinning 1.32 ms for 8.5 ms (the idle thread spins through the gap, on the core the browser needs),
spinning at most 1000 us 1.26 ms for 3.1 ms, at most 200 us 1.83 ms, spinning that stops when a run
ends 1.31 ms (p90 3.4 ms). A parked thread is slow to wake on this virtual machine, so a bounded spin
has ended before the next frame and buys nothing; and with the browser or another process busy the
second thread waits for its core (``benchmarks/bench_engine.py --baseline``: two sleeping threads
1.39 ms, one thread 0.93 ms). So the regressor runs on one thread (:data:`REGRESSOR_THREADS`): no
pool, nothing spins, the least CPU per face, and the other core is left to the browser and the kernel.
"""

from __future__ import annotations

from math import sqrt
from pathlib import Path

import cv2
import numpy as np

from .frames import as_bgr
from .runtime import create_session

__all__ = ["INPUT_SIZE", "REGRESSOR_THREADS", "Regressor", "crop", "crops", "roi_box_from_bbox",
           "roi_box_from_landmarks", "roi_boxes_from_bboxes", "roi_boxes_from_landmarks"]

INPUT_SIZE = 120
#: ONNX Runtime intra-op threads of the regressor (see the module docstring for the measurements).
REGRESSOR_THREADS = 1


def roi_boxes_from_bboxes(boxes) -> np.ndarray:
    """Square crops (N, 4) ``x1, y1, x2, y2`` for detector boxes (N, 4+): 1.58x their mean side,
    shifted down by 0.14 of it; the side is truncated to whole pixels, as upstream does."""
    boxes = np.asarray(boxes, dtype=np.float64)
    left, top, right, bottom = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    old_size = (right - left + bottom - top) / 2
    cx = right - (right - left) / 2.0
    cy = bottom - (bottom - top) / 2.0 + old_size * 0.14
    size = np.trunc(old_size * 1.58)
    x1, y1 = cx - size / 2, cy - size / 2
    return np.stack([x1, y1, x1 + size, y1 + size], axis=1)


def roi_boxes_from_landmarks(points) -> np.ndarray:
    """Square crops (N, 4) around landmarks ``points`` (N, K, 2+): for each face the diagonal of the
    square bounding its landmarks."""
    points = np.asarray(points, dtype=np.float64)[..., :2]
    low, high = points.min(axis=1), points.max(axis=1)
    centre = (low + high) / 2
    radius = (high - low).max(axis=1) / 2
    half = (sqrt(2) * 2 * radius / 2)[:, None]
    return np.concatenate([centre - half, centre + half], axis=1)


def roi_box_from_bbox(box) -> np.ndarray:
    """Square crop (4,) ``x1, y1, x2, y2`` for one detector box (4+,); see :func:`roi_boxes_from_bboxes`."""
    return roi_boxes_from_bboxes(np.asarray(box, dtype=np.float64)[None, :4])[0]


def roi_box_from_landmarks(points: np.ndarray) -> np.ndarray:
    """Square crop (4,) around one face's landmarks ``points`` (K, 2+); see :func:`roi_boxes_from_landmarks`."""
    return roi_boxes_from_landmarks(np.asarray(points)[None])[0]


def crop(image: np.ndarray, roi_box) -> np.ndarray:
    """Cut ``roi_box`` out of ``image``, rounding corners half-to-even and padding with black."""
    h, w = image.shape[:2]
    sx, sy, ex, ey = (int(round(float(v))) for v in roi_box[:4])
    out = np.zeros((max(ey - sy, 0), max(ex - sx, 0)) + image.shape[2:], dtype=image.dtype)
    x0, y0, x1, y1 = max(sx, 0), max(sy, 0), min(ex, w), min(ey, h)
    if x1 > x0 and y1 > y0:
        out[y0 - sy : y1 - sy, x0 - sx : x1 - sx] = image[y0:y1, x0:x1]
    return out


def crops(image: np.ndarray, roi_boxes: np.ndarray) -> np.ndarray:
    """The network's input for BGR ``image`` and ``roi_boxes`` (N, 4): (N, 120, 120, 3) uint8, each
    :func:`crop` resized bilinearly (black for an empty roi)."""
    h, w = image.shape[:2]
    batch = np.zeros((len(roi_boxes), INPUT_SIZE, INPUT_SIZE, 3), np.uint8)
    # np.rint rounds half to even, as upstream's Python round does.
    for k, (sx, sy, ex, ey) in enumerate(np.rint(roi_boxes).astype(np.intp).tolist()):
        if ex <= sx or ey <= sy:
            continue
        inside = sx >= 0 and sy >= 0 and ex <= w and ey <= h
        patch = image[sy:ey, sx:ex] if inside else crop(image, (sx, sy, ex, ey))
        cv2.resize(patch, (INPUT_SIZE, INPUT_SIZE), dst=batch[k], interpolation=cv2.INTER_LINEAR)
    return batch


class Regressor:
    """MobileNetV1 3DMM regressor.

    ``regressor(image, roi_boxes)`` returns (N, 62) float32 de-normalised parameters, one row per
    roi box (N, 4), all faces in one ``session.run``. ``threads``: ONNX Runtime intra-op threads
    (default :data:`REGRESSOR_THREADS`; 0 lets ONNX Runtime choose).
    """

    def __init__(self, model_path: str | Path, *, threads: int = REGRESSOR_THREADS, provider: str = "cpu"):
        self.session = create_session(model_path, threads=threads, provider=provider)
        self._output = [self.session.get_outputs()[0].name]

    def __call__(self, image: np.ndarray, roi_boxes) -> np.ndarray:
        roi_boxes = np.asarray(roi_boxes, dtype=np.float64).reshape(-1, 4)
        if len(roi_boxes) == 0:
            return np.zeros((0, 62), np.float32)
        return self.session.run(self._output, {"input": crops(as_bgr(image), roi_boxes)})[0]
