"""FaceBoxes face detection on ONNX Runtime, reproducing upstream 3DDFA_V2's detector.

Pre-processing (BGR minus the channel means) runs inside the graph; here we shrink large images
as upstream does, decode the per-prior offsets for the candidates above the score threshold only,
and run greedy NMS with upstream's ``+1`` pixel-area convention.
"""

from __future__ import annotations

from functools import lru_cache
from math import ceil
from pathlib import Path

import cv2
import numpy as np

from .frames import as_bgr
from .runtime import create_session

__all__ = ["FaceDetector", "nms", "prior_boxes"]

_MIN_SIZES = ((32, 64, 128), (256,), (512,))
_STEPS = (32, 64, 128)
_VARIANCE = (0.1, 0.2)


@lru_cache(maxsize=8)
def prior_boxes(height: int, width: int) -> np.ndarray:
    """FaceBoxes anchors for an input of ``height`` x ``width`` pixels.

    Returns (P, 4) float32 ``cx, cy, w, h`` as fractions of the image size, in the order the
    network's heads emit them: feature map, then cell (row-major), then anchor.
    """
    maps = []
    for min_sizes, step in zip(_MIN_SIZES, _STEPS):
        rows, cols = ceil(height / step), ceil(width / step)
        i, j = np.meshgrid(np.arange(rows, dtype=np.float64), np.arange(cols, dtype=np.float64), indexing="ij")
        anchors = []
        for size in min_sizes:
            # Small anchors are tiled densely inside each cell so small faces get enough of them.
            offsets = {32: (0, 0.25, 0.5, 0.75), 64: (0, 0.5)}.get(size, (0.5,))
            for oy in offsets:
                for ox in offsets:
                    cx = (j + ox) * step / width
                    cy = (i + oy) * step / height
                    wh = np.broadcast_to([size / width, size / height], cx.shape + (2,))
                    anchors.append(np.concatenate([cx[..., None], cy[..., None], wh], axis=-1))
        maps.append(np.stack(anchors, axis=2).reshape(-1, 4))
    priors = np.concatenate(maps).astype(np.float32)
    priors.flags.writeable = False
    return priors


def nms(dets: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression; ``dets`` (N, 5) sorted by descending score.

    A box is suppressed when its IoU with a kept, higher-scoring box is >= ``threshold``; areas
    count pixels inclusively (``x2 - x1 + 1``), as upstream's ``cpu_nms``. Returns kept indices.
    """
    x1, y1, x2, y2 = dets[:, 0], dets[:, 1], dets[:, 2], dets[:, 3]
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    alive = np.ones(len(dets), bool)
    keep = []
    for i in range(len(dets)):
        if not alive[i]:
            continue
        keep.append(i)
        rest = np.flatnonzero(alive[i + 1 :]) + i + 1
        w = np.maximum(np.float32(0), np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(np.float32(0), np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        alive[rest[inter / (areas[i] + areas[rest] - inter) >= threshold]] = False
    return np.asarray(keep, dtype=np.intp)


class FaceDetector:
    """FaceBoxes detector.

    ``detector(image)`` returns (N, 5) float32 boxes ``x1, y1, x2, y2, score`` in the input's
    pixels, by descending score. Images larger than ``max_size`` (height, width; upstream's
    720 x 1080) are shrunk for detection.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        score_threshold: float = 0.5,
        nms_threshold: float = 0.3,
        max_size: tuple[int, int] = (720, 1080),
        threads: int = 0,
        provider: str = "cpu",
    ):
        self.session = create_session(model_path, threads=threads, provider=provider)
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.max_size = max_size

    def __call__(self, image: np.ndarray) -> np.ndarray:
        image = as_bgr(image)
        h, w = image.shape[:2]
        scale = self._scale(h, w)
        if scale != 1:
            image = cv2.resize(image, (int(scale * w), int(scale * h)))
        sh, sw = image.shape[:2]
        loc, scores = self.session.run(None, {"image": image})
        # A box scoring below the final threshold can only suppress lower-scoring boxes, which the
        # threshold removes anyway, so thresholding before decoding and NMS changes nothing.
        keep = np.flatnonzero(scores > self.score_threshold)
        keep = keep[np.argsort(-scores[keep], kind="stable")]
        priors = prior_boxes(sh, sw)[keep]
        loc = loc[keep]
        centre = priors[:, :2] + loc[:, :2] * np.float32(_VARIANCE[0]) * priors[:, 2:]
        size = priors[:, 2:] * np.exp(loc[:, 2:] * np.float32(_VARIANCE[1]))
        top_left = centre - size / 2
        boxes = np.concatenate([top_left, size + top_left], axis=1)
        boxes = boxes * np.array([sw, sh, sw, sh], np.float32) / np.float32(scale)
        dets = np.concatenate([boxes, scores[keep, None]], axis=1).astype(np.float32)
        return dets[nms(dets, self.nms_threshold)]

    def _scale(self, h: int, w: int) -> float:
        max_h, max_w = self.max_size
        scale = max_h / h if h > max_h else 1
        if w * scale > max_w:
            scale *= max_w / (w * scale)
        return scale
