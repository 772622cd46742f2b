"""INT8 models from ONNX Runtime's static quantisation, and the rule that decides whether one may
stand in for its float model.

Both are built from our converted float graphs (:mod:`face3d_nb.models.convert`) by
``onnxruntime.quantization.quantize_static``: QDQ format, uint8 activations and int8 weights per
output channel (the u8 x s8 products ORT's CPU kernels run fastest; int8 activations or uint8
weights ran at 0.3 to 0.7x the float graph), min-max calibration on frames or crops the caller
gives. Nothing here ships in the live path: it is the evaluation that decided not to offer INT8
models (see below), kept so that ``benchmarks/bench_quant.py`` can repeat it on other CPUs and models.

Detector recipe. The float graph subtracts the channel means from the image before its first
convolution; ORT's NHWC layout pass for quantised convolutions moves that subtraction onto the
interleaved pixels, where it costs more than the quantised network saves (0.93x the float graph).
So :func:`fold_input_means` moves the means into the first convolution's bias, and does the
padding that convolution did (with mean pixels, in effect) explicitly on the uint8 image: the same
function. The softmax and what follows it stay float: quantised to 8 bits, neighbouring boxes'
probabilities tie at 1.0 and NMS keeps an arbitrary one of them (IoU below the bound on 6 images
and frames instead of 2).

Regressor recipe. The pooling, the fully connected layer and the de-normalisation stay float:
quantised, they move the parameters by up to 12 standard deviations.

Acceptance (:func:`judge_detector`, :func:`judge_regressor`): at least :data:`MIN_SPEEDUP` times
faster than the float model, and, for the detector, boxes overlapping the float model's by an IoU
of at least :data:`MIN_BOX_IOU` on every image and frame (a face lost or added counts as 0); for the
regressor, every parameter within :data:`MAX_PARAM_ERROR` of its standard deviation and the 68
landmarks within :data:`MAX_LANDMARK_ERROR` pixels. ``benchmarks/bench_quant.py`` measures both and
prints the verdicts. On the shared images and video neither passes, so neither is offered: the
detector is fast enough (1.4x to 2x on an AVX-512 VNNI CPU) but below the IoU bound on 2 of 59
images and frames, each one where the float model's two best boxes score within 1e-3 of each other
and the INT8 model keeps the other (a float graph whose border padding differs flips such a tie
too); the regressor moves parameters by up to 0.15 std and landmarks by up to 3.6 px.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

from ..core.detector import detection_scale
from ..core.track_match import iou

__all__ = [
    "MAX_LANDMARK_ERROR",
    "MAX_PARAM_ERROR",
    "MIN_BOX_IOU",
    "MIN_SPEEDUP",
    "Verdict",
    "fold_input_means",
    "judge_detector",
    "judge_regressor",
    "quantize_detector",
    "quantize_regressor",
    "worst_box_iou",
]


MIN_SPEEDUP = 1.3
MIN_BOX_IOU = 0.95
#: Largest parameter change, as a share of that parameter's standard deviation.
MAX_PARAM_ERROR = 1e-2
#: Largest landmark move, pixels.
MAX_LANDMARK_ERROR = 0.5


def fold_input_means(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` (the detector graph) computing the same function without subtracting the channel
    means from the image: they move into the first convolution's bias, and its zero padding (a mean
    pixel, before the subtraction) becomes an explicit per-channel pad of the uint8 image."""
    model = _named(model)
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    sub = next(n for n in graph.node if n.op_type == "Sub" and n.input[1] in inits)
    cast = next(n for n in graph.node if n.output[0] == sub.input[0])
    conv = next(n for n in graph.node if n.op_type == "Conv" and n.input[0] == sub.output[0])
    means = numpy_helper.to_array(inits[sub.input[1]]).reshape(-1).astype(np.float64)
    if not np.array_equal(means, np.clip(np.round(means), 0, 255)):
        raise ValueError(f"the channel means {means} are not uint8 values: they cannot pad a uint8 image")
    attrs = {a.name: a for a in conv.attribute}
    top, left, bottom, right = helper.get_attribute_value(attrs["pads"])
    weight = numpy_helper.to_array(inits[conv.input[1]]).astype(np.float64)
    bias = numpy_helper.to_array(inits[conv.input[2]]).astype(np.float64)
    inits[conv.input[2]].CopyFrom(numpy_helper.from_array(
        (bias - np.einsum("ochw,c->o", weight, means)).astype(np.float32), conv.input[2]))
    attrs["pads"].CopyFrom(helper.make_attribute("pads", [0, 0, 0, 0]))

    pixels = cast.input[0]
    planes = [f"{pixels}_plane{c}" for c in range(len(means))]
    pads = numpy_helper.from_array(np.array([0, 0, top, left, 0, 0, bottom, right], np.int64), f"{pixels}_pads")
    nodes = [helper.make_node("Split", [pixels], planes, name=f"{pixels}_split", axis=1)]
    for plane, mean in zip(planes, means):
        value = numpy_helper.from_array(np.array(mean, np.uint8), f"{plane}_mean")
        graph.initializer.append(value)
        nodes.append(helper.make_node("Pad", [plane, pads.name, value.name], [f"{plane}_padded"],
                                      name=f"{plane}_pad"))
    nodes.append(helper.make_node("Concat", [f"{p}_padded" for p in planes], [f"{pixels}_padded"],
                                  name=f"{pixels}_concat", axis=1))
    graph.initializer.append(pads)
    cast.input[0] = f"{pixels}_padded"
    conv.input[0] = cast.output[0]
    at = list(graph.node).index(cast)
    for offset, node in enumerate(nodes):
        graph.node.insert(at + offset, node)
    graph.node.remove(sub)
    graph.initializer.remove(inits[sub.input[1]])
    onnx.checker.check_model(model)
    return model


def quantize_detector(source: Path, target: Path, frames: Iterable[np.ndarray], *, fold: bool = True,
                      float_tail: bool = True) -> Path:
    """Quantise the FaceBoxes graph ``source`` into ``target``, calibrated on BGR ``frames`` (each
    shrunk as the detector shrinks it). ``fold`` and ``float_tail`` are the recipe's two steps (see
    the module docstring); both off is the tool's plain result. Returns ``target``."""
    model = fold_input_means(onnx.load(str(source))) if fold else _named(onnx.load(str(source)))
    keep_float = _from_first(model, "Softmax") if float_tail else []
    reader = _Feeds("image", (_detector_input(f) for f in frames))
    return _quantize(model, target, reader, keep_float)


def quantize_regressor(source: Path, target: Path, crops: np.ndarray) -> Path:
    """Quantise the regressor graph ``source`` into ``target``, calibrated on ``crops`` (N, 120, 120, 3)
    uint8 BGR, one at a time as the live path feeds them. Returns ``target``."""
    model = _named(onnx.load(str(source)))
    reader = _Feeds("input", (crop[None] for crop in np.asarray(crops, np.uint8)))
    return _quantize(model, target, reader, _from_first(model, "GlobalAveragePool"))


@dataclass(frozen=True)
class Verdict:
    """Whether a quantised model may stand in for its float model; ``reasons`` says why not."""

    kept: bool
    reasons: tuple[str, ...]


def worst_box_iou(reference: np.ndarray, boxes: np.ndarray) -> float:
    """The least IoU between a box of either (N, 4+) set and its best match in the other: 0 when a
    face of ``reference`` is missing from ``boxes`` or ``boxes`` has one ``reference`` lacks; 1 when
    both are empty."""
    one_way = [max((iou(a, b) for b in boxes), default=0.0) for a in reference]
    other_way = [max((iou(b, a) for a in reference), default=0.0) for b in boxes]
    return min([*one_way, *other_way], default=1.0)


def judge_detector(speedup: float, worst_ious: Mapping[str, float]) -> Verdict:
    """The acceptance rule for a quantised detector: ``speedup`` (float time / quantised time) and the
    :func:`worst_box_iou` against the float detector of every image or frame, by name."""
    reasons = _too_slow(speedup)
    failed = {name: value for name, value in worst_ious.items() if value < MIN_BOX_IOU}
    if failed:
        name = min(failed, key=failed.get)
        reasons.append(f"box IoU below {MIN_BOX_IOU} on {len(failed)} of {len(worst_ious)} images and frames "
                       f"(least {failed[name]:.3f}, {name})")
    return Verdict(not reasons, tuple(reasons))


def judge_regressor(speedup: float, param_error: float, landmark_error: float) -> Verdict:
    """The acceptance rule for a quantised regressor: ``speedup``, the largest parameter change as a
    share of its standard deviation, and the largest landmark move in pixels, over every face."""
    reasons = _too_slow(speedup)
    if not param_error <= MAX_PARAM_ERROR:
        reasons.append(f"parameters move by up to {param_error:.3g} of their std (at most {MAX_PARAM_ERROR})")
    if not landmark_error <= MAX_LANDMARK_ERROR:
        reasons.append(f"landmarks move by up to {landmark_error:.3g} px (at most {MAX_LANDMARK_ERROR})")
    return Verdict(not reasons, tuple(reasons))


def _too_slow(speedup: float) -> list[str]:
    return [] if speedup >= MIN_SPEEDUP else [f"{speedup:.2f}x the float model's speed (at least {MIN_SPEEDUP}x)"]


class _Feeds(CalibrationDataReader):
    """One input feed (``{name: item}``) per item of ``items``, then None."""

    def __init__(self, name: str, items: Iterable[np.ndarray]):
        self._feeds: Iterator[dict[str, np.ndarray]] = ({name: item} for item in items)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def _detector_input(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    scale = detection_scale(h, w)
    return frame if scale == 1 else cv2.resize(frame, (int(scale * w), int(scale * h)))


def _named(model: onnx.ModelProto) -> onnx.ModelProto:
    # quantize_static leaves nodes out by name; our converter names none, so each takes its output's.
    model = onnx.ModelProto.FromString(model.SerializeToString())
    for node in model.graph.node:
        node.name = node.name or node.output[0]
    return model


def _from_first(model: onnx.ModelProto, op_type: str) -> list[str]:
    """Names of the nodes from the first ``op_type`` node on (the converter writes them in order)."""
    names = [n.name for n in model.graph.node]
    start = next(i for i, n in enumerate(model.graph.node) if n.op_type == op_type)
    return names[start:]


def _quantize(model: onnx.ModelProto, target: Path, reader: _Feeds, keep_float: list[str]) -> Path:
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".quantize-") as work:
        # Written beside the target and renamed, so no reader sees a half-written model.
        part = Path(work) / target.name
        quantize_static(model, part, reader, quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        nodes_to_exclude=keep_float)
        part.replace(target)
    return target
