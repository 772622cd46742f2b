"""Per-stage latency of the numeric engine on the real video, with one thread and with all cores.

    python benchmarks/bench_engine.py [--arch mb05] [--repeat 3]

Stages: detect (FaceBoxes, at the video's 1280x720 and at 640x480), regress (crop + MobileNet +
pose + 68 landmarks, per face) and decode (dense 38,365-vertex mesh, per face); "path" is one
whole frame (detect at 640x480 + regress + decode of every face). Decode is also timed with a
synthetic full-size identity/expression basis, so the figure holds when bfm_noneck_v3.pkl is
installed.
"""

from __future__ import annotations

import argparse
import os
import time

import cv2
import numpy as np
from common import model_paths, percentiles, video_frames

from face3d_nb.core.morphable import N_EXPR, N_SHAPE, MorphableModel
from face3d_nb.core.pipeline import Reconstructor
from face3d_nb.core.regressor import roi_box_from_bbox


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, (time.perf_counter() - start) * 1000


def run(paths, frames, threads: int, repeat: int) -> dict[str, list[float]]:
    rec = Reconstructor(paths, threads=threads)
    model = rec.model
    synthetic = MorphableModel(
        model.mean, np.random.default_rng(0).standard_normal((N_SHAPE + N_EXPR, 3 * model.n_vertices), np.float32),
        model.triangles, model.landmarks,
    )
    small = [cv2.resize(f, (640, 480)) for f in frames]
    times: dict[str, list[float]] = {k: [] for k in ("detect 1280x720", "detect 640x480", "regress", "decode", "decode (full basis)", "path")}
    for _ in range(repeat):
        for frame, image in zip(frames, small):
            _, ms = timed(rec.detector, frame)
            times["detect 1280x720"].append(ms)
            start = time.perf_counter()
            boxes, ms = timed(rec.detector, image)
            times["detect 640x480"].append(ms)
            for box in boxes:
                (face,), ms = timed(rec.faces, image, box[None], [roi_box_from_bbox(box)])
                times["regress"].append(ms)
                _, ms = timed(rec.vertices, face)
                times["decode"].append(ms)
                _, ms = timed(synthetic.vertices, face.params, face.roi_box)
                times["decode (full basis)"].append(ms)
            times["path"].append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=("mb1", "mb05"))
    parser.add_argument("--repeat", type=int, default=3, help="passes over the video's frames")
    args = parser.parse_args()
    paths = model_paths(args.arch)
    frames = video_frames()
    cores = os.cpu_count() or 1
    results = {threads: run(paths, frames, threads, args.repeat) for threads in (1, cores)}
    print(f"face3d_nb engine benchmark: {len(frames)} frames x {args.repeat} of obama.mp4, regressor {paths.arch}, "
          f"{'full BFM' if paths.bfm else 'mean-shape model'}, {cores} cores")
    print(f"{'stage':<26}" + "".join(f"{f'{t} thread(s) p50':>18}{'p95':>9}" for t in results))
    for stage in results[1]:
        row = f"{stage + ' (ms)':<26}"
        for times in results.values():
            p50, p95 = percentiles(times[stage])
            row += f"{p50:>18.2f}{p95:>9.2f}"
        print(row)
    row = f"{'path (frames/s)':<26}"
    for times in results.values():
        row += f"{1000 / np.median(times['path']):>18.1f}{'':>9}"
    print(row)


if __name__ == "__main__":
    main()
