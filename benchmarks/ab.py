"""Helpers of the detector benchmarks: interleaved A/B timing, and the images and frames they compare on."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import cv2
import numpy as np
from common import video_frames

from face3d_nb.testing.assets import IMAGES

__all__ = ["interleaved", "shared_items", "summary"]


def shared_items() -> dict[str, np.ndarray]:
    """Every shared image and every frame of obama.mp4, BGR, by name (``emma``, ..., ``frame 0``, ...)."""
    items = {name: cv2.imread(str(path)) for name, path in IMAGES.items()}
    items.update({f"frame {i}": frame for i, frame in enumerate(video_frames())})
    return items


def interleaved(variants: dict[str, Callable[[np.ndarray], object]], inputs: Sequence[np.ndarray],
                rounds: int) -> dict[str, list[float]]:
    """Wall milliseconds of each variant on each input, the variants taking turns on every input
    (so load on a shared machine falls on all of them alike); one untimed call each first."""
    for fn in variants.values():
        fn(inputs[0])
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for item in inputs:
            for name, fn in variants.items():
                start = time.perf_counter()
                fn(item)
                times[name].append((time.perf_counter() - start) * 1000)
    return times


def summary(times: dict[str, list[float]], baseline: str) -> list[str]:
    """One line per variant: median and p90 (ms) and the baseline's median over its own."""
    base = float(np.median(times[baseline]))
    lines = []
    for name, samples in times.items():
        p50, p90 = float(np.median(samples)), float(np.percentile(samples, 90))
        lines.append(f"  {name:<34}{p50:>9.2f}{p90:>9.2f}{base / p50:>9.2f}x")
    return lines
