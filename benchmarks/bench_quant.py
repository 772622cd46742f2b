"""INT8 models built with ONNX Runtime's static quantisation: speed against the float model, accuracy,
and the acceptance verdict (face3d_nb.testing.quantize) for each.

    python benchmarks/bench_quant.py [--arch mb05] [--threads 2] [--rounds 3]

Calibration: every 6th frame of obama.mp4, the four shared images and two generated pictures
(face3d_nb.testing.media); evaluation: every shared image and every frame of obama.mp4.

Detector: three recipes, each timed A/B against the float graph (interleaved, ``--threads`` ONNX
Runtime threads, at 640x480 and on the video's 1280x720 frames) and compared box by box:

- ``plain``: quantize_static's result on our converted graph;
- ``folded``: the channel means folded into the first convolution (face3d_nb/testing/quantize.py says why);
- ``recipe``: folded, softmax and what follows kept float.

For each image or frame where the IoU falls below the rule's bound, "near tie" is the best IoU of
the quantised box with any float candidate (before NMS) scoring within 1e-3 of the float winner:
near 1 means the float model itself had two near-equal boxes and the quantised one kept the other.

Regressor: the recipe (pooling, fully connected layer and de-normalisation float), timed on one
face per run, and compared on every face the float detector finds: parameters as a share of their
std, 68 landmarks in pixels.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import cv2
import numpy as np
import onnx
from ab import interleaved, shared_items, summary
from common import model_paths
from onnx import numpy_helper

from face3d_nb.core.detector import FaceDetector
from face3d_nb.core.pipeline import Reconstructor
from face3d_nb.core.regressor import crops as crops_of
from face3d_nb.core.regressor import roi_boxes_from_bboxes
from face3d_nb.core.runtime import create_session
from face3d_nb.core.track_match import iou
from face3d_nb.testing import quantize
from face3d_nb.testing.media import face_picture

TIE = 1e-3


def calibration_frames(items: dict[str, np.ndarray]) -> list[np.ndarray]:
    frames = [image for name, image in items.items() if not name.startswith("frame")]
    frames += [image for name, image in items.items() if name.startswith("frame") and int(name.split()[1]) % 6 == 0]
    return frames + [face_picture(640, 480), face_picture(1280, 720, ((0.3, 0.5), (0.7, 0.5)), size=0.3)]


def near_tie(candidates: FaceDetector, reference: np.ndarray, boxes: np.ndarray, image: np.ndarray) -> float:
    """The least, over the float boxes, of the best IoU of the quantised box matching it with a float
    candidate scoring within :data:`TIE` of that float box."""
    pool = candidates(image)
    worst = 1.0
    for box in reference:
        if not len(boxes):
            return 0.0
        mine = max(boxes, key=lambda b, box=box: iou(box, b))
        rivals = [c for c in pool if iou(c, box) > 0.5 and c[4] >= box[4] - TIE]
        worst = min(worst, max((iou(mine, c) for c in rivals), default=0.0))
    return worst


def detector_report(name: str, path: Path, float_path: Path, items: dict[str, np.ndarray], threads: int,
                    rounds: int) -> quantize.Verdict:
    reference = FaceDetector(float_path, threads=threads)
    candidates = FaceDetector(float_path, threads=threads, nms_threshold=1.01)
    int8 = FaceDetector(path, threads=threads)
    worst = {key: quantize.worst_box_iou(reference(img), int8(img)) for key, img in items.items()}
    frames = [img for key, img in items.items() if key.startswith("frame")][:20]
    small = [cv2.resize(f, (640, 480)) for f in frames]
    print(f"\ndetector {name} ({path.name}, {path.stat().st_size / 1e6:.1f} MB)")
    print(f"  {'ms':<34}{'p50':>9}{'p90':>9}{'speed':>10}")
    at_640 = interleaved({"float 640x480": reference, "int8 640x480": int8}, small, rounds)
    at_720 = interleaved({"float 1280x720": reference, "int8 1280x720": int8}, frames, rounds)
    print("\n".join(summary(at_640, "float 640x480") + summary(at_720, "float 1280x720")))
    speedup = float(np.median(at_640["float 640x480"]) / np.median(at_640["int8 640x480"]))
    values = np.array(list(worst.values()))
    print(f"  box IoU with the float detector: least {values.min():.3f}, median {np.median(values):.3f}; "
          f"below {quantize.MIN_BOX_IOU} on {int((values < quantize.MIN_BOX_IOU).sum())} of {len(values)}")
    for key, value in sorted(worst.items(), key=lambda kv: kv[1]):
        if value >= quantize.MIN_BOX_IOU:
            break
        tie = near_tie(candidates, reference(items[key]), int8(items[key]), items[key])
        print(f"    {key:<22} IoU {value:.3f}   near tie {tie:.3f}")
    return quantize.judge_detector(speedup, worst)


def regressor_report(rec: Reconstructor, path: Path, float_path: Path, items: dict[str, np.ndarray],
                     threads: int, rounds: int) -> quantize.Verdict:
    std = next(numpy_helper.to_array(i) for i in onnx.load(str(float_path)).graph.initializer
               if i.name.startswith("param_std"))
    batches, rois = [], []
    for image in items.values():
        boxes = roi_boxes_from_bboxes(rec.detector(image))
        rois += list(boxes)
        batches.append(crops_of(image, boxes))
    crops = np.concatenate(batches)
    float_session = create_session(float_path, threads=threads)
    int8_session = create_session(path, threads=threads)
    want = float_session.run(None, {"input": crops})[0]
    got = int8_session.run(None, {"input": crops})[0]
    param_error = float((np.abs(got - want) / std).max())
    moves = [np.abs(rec.model.landmarks_3d(g, r)[:, :2] - rec.model.landmarks_3d(w, r)[:, :2]).max()
             for g, w, r in zip(got, want, rois)]
    times = interleaved({"float, one face": lambda c: float_session.run(None, {"input": c}),
                         "int8, one face": lambda c: int8_session.run(None, {"input": c})},
                        [c[None] for c in crops[:20]], rounds)
    print(f"\nregressor recipe ({path.name}, {path.stat().st_size / 1e6:.1f} MB), {len(crops)} faces")
    print(f"  {'ms':<34}{'p50':>9}{'p90':>9}{'speed':>10}")
    print("\n".join(summary(times, "float, one face")))
    print(f"  parameters: largest change {param_error:.3g} std (median {np.median(np.abs(got - want) / std):.3g}); "
          f"landmarks: largest move {max(moves):.2f} px (median {np.median(moves):.2f})")
    speedup = float(np.median(times["float, one face"]) / np.median(times["int8, one face"]))
    return quantize.judge_regressor(speedup, param_error, float(max(moves)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=("mb1", "mb05"))
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads per session")
    parser.add_argument("--rounds", type=int, default=3, help="timed passes over 20 frames")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    paths = model_paths(args.arch)
    items = shared_items()
    calibration = calibration_frames(items)
    print(f"face3d_nb quantisation benchmark: {args.threads} thread(s), regressor {paths.arch}; calibrated on "
          f"{len(calibration)} pictures, evaluated on {len(items)} images and frames")
    verdicts = {}
    with tempfile.TemporaryDirectory() as work:
        for name, fold in (("plain", False), ("folded", True)):
            path = quantize.quantize_detector(paths.detector, Path(work) / f"{name}.onnx", calibration,
                                              fold=fold, float_tail=False)
            verdicts[f"detector {name}"] = detector_report(name, path, paths.detector, items, args.threads, args.rounds)
        recipe = quantize.quantize_detector(paths.detector, Path(work) / "recipe.onnx", calibration)
        verdicts["detector recipe"] = detector_report("recipe", recipe, paths.detector, items, args.threads,
                                                      args.rounds)
        rec = Reconstructor(paths, threads=args.threads)
        crops = [crops_of(img, roi_boxes_from_bboxes(rec.detector(img))) for img in calibration]
        regressor = quantize.quantize_regressor(paths.regressor, Path(work) / "regressor.onnx", np.concatenate(crops))
        verdicts["regressor recipe"] = regressor_report(rec, regressor, paths.regressor, items, args.threads,
                                                        args.rounds)
    print("\nverdicts (face3d_nb.testing.quantize: >= "
          f"{quantize.MIN_SPEEDUP}x, box IoU >= {quantize.MIN_BOX_IOU} everywhere; params <= "
          f"{quantize.MAX_PARAM_ERROR} std, landmarks <= {quantize.MAX_LANDMARK_ERROR} px)")
    for name, verdict in verdicts.items():
        print(f"  {name:<20} {'KEPT' if verdict.kept else 'dropped: ' + '; '.join(verdict.reasons)}")


if __name__ == "__main__":
    main()
