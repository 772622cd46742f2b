"""FaceBoxes face detection on ONNX Runtime, reproducing upstream 3DDFA_V2's detector.

Pre-processing (BGR minus the channel means) runs inside the graph; here we shrink large images
as upstream does, decode the per-prior offsets for the candidates above the score threshold only,
and run greedy NMS with upstream's ``+1`` pixel-area convention.

``detect_size`` runs the network on a smaller copy of the frame (long side at most that many
pixels, bilinear as upstream's own shrink) and scales the boxes back: the network's cost is about
proportional to its input's pixels, and FaceBoxes finds faces from about 35 to 60 of its input
pixels, so a frame whose faces are large pays for pixels it does not need. At 320 it finds every
face of the shared images and video; ``benchmarks/bench_engine.py`` prints the time saved and the
smallest face found at each size.
"""

from __future__ import annotations

from functools import lru_cache
from math import ceil
from pathlib import Path

import cv2
import numpy as np

from .frames import as_bgr
from .runtime import create_session

__all__ = ["MIN_DETECT_SIZE", "FaceDetector", "detection_scale", "nms", "prior_boxes"]

_MIN_SIZES = ((32, 64, 128), (256,), (512,))
_STEPS = (32, 64, 128)
_VARIANCE = (0.1, 0.2)
#: Smallest ``detect_size``: below it a frame's faces would be a handful of input pixels.
MIN_DETECT_SIZE = 64


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


def detection_scale(height: int, width: int, max_size: tuple[int, int] = (720, 1080), detect_size: int = 0) -> float:
    """The factor (<= 1) by which the detector shrinks a ``height`` x ``width`` image: upstream's rule
    (fit within ``max_size``, height and width), then, when ``detect_size`` is not 0, a long side of
    at most ``detect_size`` pixels."""
    max_h, max_w = max_size
    scale = max_h / height if height > max_h else 1
    if width * scale > max_w:
        scale *= max_w / (width * scale)
    if detect_size and max(height, width) * scale > detect_size:
        scale = detect_size / max(height, width)
    return scale


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
    720 x 1080) are shrunk for detection, and so are those whose long side is over ``detect_size``
    pixels (0: no such limit, upstream's behaviour).
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        score_threshold: float = 0.5,
        nms_threshold: float = 0.3,
        max_size: tuple[int, int] = (720, 1080),
        detect_size: int = 0,
        threads: int = 0,
        provider: str = "cpu",
    ):
        if detect_size and detect_size < MIN_DETECT_SIZE:
            raise ValueError(f"detect_size: must be 0 (off) or at least {MIN_DETECT_SIZE}, got {detect_size}")
        self.session = create_session(model_path, threads=threads, provider=provider)
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.max_size = max_size
        self.detect_size = detect_size

    def __call__(self, image: np.ndarray) -> np.ndarray:
        image = as_bgr(image)
        h, w = image.shape[:2]
        scale = detection_scale(h, w, self.max_size, self.detect_size)
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
