"""Per-stage latency of the numeric engine on the real video, with one thread and with all cores.

    python benchmarks/bench_engine.py [--arch mb05] [--repeat 3] [--baseline DIR [--ab-only] [--rounds 6]]

Stages: detect (FaceBoxes, at the video's 1280x720 and at 640x480), regress (crop + MobileNet +
pose + 68 landmarks, per face) and decode (dense 38,365-vertex mesh, per face); "path" is one
whole frame (detect at 640x480 + regress + decode of every face). Decode is also timed with a
synthetic full-size identity/expression basis, so the figure holds when bfm_noneck_v3.pkl is
installed.

Detect-every-frame path (``detect_every_frame``): ``Reconstructor(frame)`` (detect, regress, 68
landmarks) at 640x480 and 1280x720, the detector on the whole frame (today) against the detector on
a copy at most ``--detect-size`` pixels on its long side, interleaved, ``--threads`` threads (default
2). ``detect_size_faces``: per detector input size, the faces of the shared images and video that
the whole-frame detector finds and the smaller input loses, and the smallest face found on
generated pictures (real faces pasted at known sizes on a plain background).

``--baseline DIR`` (a checkout of the previous main, e.g. a git worktree): per-stage p50 and p90 of
that tree and of this one, interleaved in one run, with the speed-ups and the targets of issue 14
(:mod:`engine_ab`: detect, regress per face, the network alone, the tracking step at the engine's
640x360 and at 1280x720); ``--ab-only`` prints only that (about a minute).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import cv2
import numpy as np
from ab import interleaved, shared_items, summary
from common import model_home, model_paths, percentiles, video_frames
from engine_ab import compare, report

from face3d_nb.core.morphable import N_EXPR, N_SHAPE, MorphableModel
from face3d_nb.core.pipeline import Reconstructor
from face3d_nb.core.regressor import crop, roi_box_from_bbox
from face3d_nb.core.track_match import iou
from face3d_nb.testing.quantize import worst_box_iou

DETECT_SIZES = (0, 480, 400, 320, 256)


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


def detect_every_frame(paths, frames, threads: int, detect_size: int, rounds: int) -> None:
    """A/B: the detect-every-frame path and its detector, on the whole frame and at ``detect_size``."""
    whole = Reconstructor(paths, threads=threads)
    small = Reconstructor(paths, threads=threads, detect_size=detect_size)
    print(f"\ndetect every frame, {threads} thread(s): whole frame (today) vs detect_size {detect_size}")
    print(f"  {'ms':<34}{'p50':>9}{'p90':>9}{'speed':>10}")
    for width, height in ((640, 480), (1280, 720)):
        inputs = [cv2.resize(f, (width, height)) for f in frames[:20]]
        variants = {f"detect {width}x{height}, whole": whole.detector, f"detect {width}x{height}, {detect_size}": small.detector,
                    f"path {width}x{height}, whole": whole, f"path {width}x{height}, {detect_size}": small}
        times = interleaved(variants, inputs, rounds)
        names = list(variants)
        for pair in (names[:2], names[2:]):
            print("\n".join(summary({k: times[k] for k in pair}, pair[0])))


def pasted_faces(items: dict[str, np.ndarray], detector) -> list[tuple[np.ndarray, np.ndarray]]:
    """Real faces to paste: (square crop around the face, the face's box in the crop's pixels)."""
    faces = []
    for name in ("JianzhuGuo", "trump_hillary", "frame 0"):
        for box in detector(items[name]):
            roi = roi_box_from_bbox(box)
            faces.append((crop(items[name], roi), box[:4] - np.tile(roi[:2], 2)))
    return faces


def smallest_found(detector, faces, sides, canvas=(480, 640)) -> list[int]:
    """Per face, the least side (pixels of a ``canvas``-sized picture) from which it is found at every
    larger side in ``sides`` (IoU >= 0.5 with where it was pasted); 0 when never."""
    found_from = []
    for patch, box in faces:
        found = []
        for side in sides:
            k = side / max(box[2] - box[0], box[3] - box[1])
            size = max(1, round(patch.shape[1] * k))
            picture = np.full((*canvas, 3), 128, np.uint8)
            y, x = (canvas[0] - size) // 2, (canvas[1] - size) // 2
            picture[y:y + size, x:x + size] = cv2.resize(patch, (size, size))[: canvas[0] - y, : canvas[1] - x]
            where = box * k + np.array([x, y, x, y])
            found.append(any(iou(where, b) >= 0.5 for b in detector(picture)))
        missed = [s for s, f in zip(sides, found) if not f]
        found_from.append(next((s for s in sides if s > max(missed, default=0)), 0))
    return found_from


def detect_size_faces(paths, items: dict[str, np.ndarray], threads: int) -> None:
    """Per detector input size: faces lost against the whole-frame detector, how far their landmarks
    move (regressed from the new boxes; mean distance as a share of the face box's side), and the
    smallest face found."""
    rec = Reconstructor(paths, threads=threads)
    reference = {name: rec.detector(image) for name, image in items.items()}
    marks = {name: rec(image) for name, image in items.items()}
    faces = pasted_faces(items, rec.detector)
    sides = list(range(8, 201, 4))
    print(f"\ndetector input size vs the whole frame on {len(items)} shared images and frames; smallest face "
          f"found on a 640x480 picture ({len(faces)} real faces pasted at sides {sides[0]}..{sides[-1]} px)")
    print(f"  {'detect_size':<12}{'lost':>6}{'least IoU':>11}{'median IoU':>12}{'landmarks moved p50/max':>25}"
          f"{'found from (640 px frame)':>27}{'(detector px)':>15}")
    for size in DETECT_SIZES:
        other = Reconstructor(paths, threads=threads, detect_size=size) if size else rec
        found = {name: other(image) for name, image in items.items()}
        ious = [worst_box_iou(reference[name], np.array([f.box for f in found[name]]).reshape(-1, 5)) for name in items]
        lost, moved = 0, []
        for name in items:
            for face in marks[name]:
                match = max(found[name], key=lambda f, face=face: iou(face.box, f.box), default=None)
                if match is None or iou(face.box, match.box) < 0.5:
                    lost += 1
                    continue
                distance = np.linalg.norm(match.landmarks[:, :2] - face.landmarks[:, :2], axis=1).mean()
                moved.append(100 * distance / (face.box[2] - face.box[0]))
        smallest = smallest_found(other.detector, faces, sides)
        scale = min(1.0, size / 640) if size else 1.0
        print(f"  {size or 'whole':<12}{lost:>6}{min(ious):>11.3f}{np.median(ious):>12.3f}"
              f"{f'{np.median(moved):.1f}% / {max(moved):.1f}%':>25}{f'{min(smallest)}..{max(smallest)}':>27}"
              f"{f'{min(smallest) * scale:.0f}..{max(smallest) * scale:.0f}':>15}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=("mb1", "mb05"))
    parser.add_argument("--repeat", type=int, default=3, help="passes over the video's frames")
    parser.add_argument("--detect-size", type=int, default=320, help="detector input's long side for the A/B")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads for the A/B")
    parser.add_argument("--baseline", type=Path, help="source tree of the previous main to compare with")
    parser.add_argument("--ab-only", action="store_true", help="with --baseline: only the A/B of the stages")
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds of the A/B")
    args = parser.parse_args()
    if args.baseline:
        times = compare(args.baseline.resolve(), model_home(args.arch), args.arch, args.threads, args.rounds)
        print("\n".join(report(times, args.baseline)))
        if args.ab_only:
            return
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
    detect_every_frame(paths, frames, args.threads, args.detect_size, args.repeat)
    detect_size_faces(paths, shared_items(), args.threads)


if __name__ == "__main__":
    main()
