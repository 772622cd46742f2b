"""3DMM parameter regression: face box or landmarks -> square roi -> 120x120 crop -> 62 params.

Reproduces upstream 3DDFA_V2's cropping exactly (roi geometry, half-to-even rounding, zero padding
outside the image, bilinear resize); the ONNX graph normalises pixels and de-normalises params.
"""

from __future__ import annotations

from math import sqrt
from pathlib import Path

import cv2
import numpy as np

from .frames import as_bgr
from .runtime import create_session

__all__ = ["INPUT_SIZE", "Regressor", "crop", "roi_box_from_bbox", "roi_box_from_landmarks"]

INPUT_SIZE = 120


def roi_box_from_bbox(box) -> np.ndarray:
    """Square crop (4,) ``x1, y1, x2, y2`` for a detector box: 1.58x its mean side, shifted down."""
    left, top, right, bottom = (float(v) for v in box[:4])
    old_size = (right - left + bottom - top) / 2
    cx = right - (right - left) / 2.0
    cy = bottom - (bottom - top) / 2.0 + old_size * 0.14
    size = int(old_size * 1.58)
    x1, y1 = cx - size / 2, cy - size / 2
    return np.array([x1, y1, x1 + size, y1 + size])


def roi_box_from_landmarks(points: np.ndarray) -> np.ndarray:
    """Square crop (4,) around landmarks ``points`` (K, 2+): the diagonal of their bounding square."""
    points = np.asarray(points, dtype=np.float64)
    x1, y1 = points[:, 0].min(), points[:, 1].min()
    x2, y2 = points[:, 0].max(), points[:, 1].max()
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    radius = max(x2 - x1, y2 - y1) / 2
    side = sqrt(2) * 2 * radius
    return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])


def crop(image: np.ndarray, roi_box) -> np.ndarray:
    """Cut ``roi_box`` out of ``image``, rounding corners half-to-even and padding with black."""
    h, w = image.shape[:2]
    sx, sy, ex, ey = (int(round(float(v))) for v in roi_box[:4])
    out = np.zeros((max(ey - sy, 0), max(ex - sx, 0)) + image.shape[2:], dtype=image.dtype)
    x0, y0, x1, y1 = max(sx, 0), max(sy, 0), min(ex, w), min(ey, h)
    if x1 > x0 and y1 > y0:
        out[y0 - sy : y1 - sy, x0 - sx : x1 - sx] = image[y0:y1, x0:x1]
    return out


class Regressor:
    """MobileNetV1 3DMM regressor.

    ``regressor(image, roi_boxes)`` returns (N, 62) float32 de-normalised parameters, one row per
    roi box (N, 4), all faces in one ``session.run``.
    """

    def __init__(self, model_path: str | Path, *, threads: int = 0, provider: str = "cpu"):
        self.session = create_session(model_path, threads=threads, provider=provider)

    def __call__(self, image: np.ndarray, roi_boxes) -> np.ndarray:
        image = as_bgr(image)
        roi_boxes = np.asarray(roi_boxes, dtype=np.float64).reshape(-1, 4)
        if len(roi_boxes) == 0:
            return np.zeros((0, 62), np.float32)
        batch = np.empty((len(roi_boxes), INPUT_SIZE, INPUT_SIZE, 3), np.uint8)
        for k, roi in enumerate(roi_boxes):
            patch = crop(image, roi)
            if patch.size == 0:
                batch[k] = 0
                continue
            batch[k] = cv2.resize(patch, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
        return self.session.run(None, {"input": batch})[0]
