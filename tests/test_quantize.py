"""Quantised models (face3d_nb/testing/quantize.py) and the detector's input size (``detect_size``).

Unit tests build the INT8 graphs from the synthetic models and check their wiring; the
``real_assets`` tests check, on the shared images and video, that a smaller detector input keeps
every face and that the quantisation recipe's float step is exact.
"""

from __future__ import annotations

import cv2
import numpy as np
import onnx
import pytest

from face3d_nb.core.detector import MIN_DETECT_SIZE, FaceDetector, detection_scale
from face3d_nb.core.pipeline import Reconstructor
from face3d_nb.core.runtime import create_session
from face3d_nb.core.track_match import iou
from face3d_nb.live import config as live_config
from face3d_nb.live.config import RESTART_KEYS, EngineConfig
from face3d_nb.live.engine import Engine
from face3d_nb.testing import quantize
from face3d_nb.testing.assets import IMAGES, VIDEO
from face3d_nb.testing.media import face_picture


def _calibration() -> list[np.ndarray]:
    return [face_picture(640, 480, seed=s) for s in range(3)] + [face_picture(1280, 720, ((0.3, 0.5), (0.7, 0.5)), 0.3)]


def _consumers(model: onnx.ModelProto, tensor: str) -> list[str]:
    return [n.op_type for n in model.graph.node if tensor in n.input]


def _producer(model: onnx.ModelProto, tensor: str) -> str | None:
    return next((n.op_type for n in model.graph.node if tensor in n.output), None)


# -- detect_size ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("shape", "detect_size", "scale"), [
    ((480, 640), 0, 1.0), ((720, 1280), 0, 1080 / 1280), ((480, 640), 320, 0.5), ((720, 1280), 320, 0.25),
    ((300, 200), 320, 1.0), ((1080, 1920), 2000, 1080 / 1920),
])
def test_detection_scale_is_upstreams_then_the_long_side_cap(shape, detect_size, scale):
    assert detection_scale(*shape, detect_size=detect_size) == pytest.approx(scale)


class _Recording:
    """A session stand-in that records the image shapes it is given."""

    def __init__(self, session):
        self.session, self.shapes = session, []

    def run(self, outputs, feeds):
        self.shapes.append(feeds["image"].shape)
        return self.session.run(outputs, feeds)


def test_detect_size_runs_the_detector_on_a_smaller_copy_and_scales_the_boxes_back(synthetic_paths):
    picture = face_picture(640, 480)
    small = FaceDetector(synthetic_paths.detector, detect_size=480)
    small.session = _Recording(small.session)
    boxes = small(picture)
    assert small.session.shapes == [(360, 480, 3)]
    on_a_copy = FaceDetector(synthetic_paths.detector)(cv2.resize(picture, (480, 360)))
    assert len(boxes) == len(on_a_copy) == 1
    np.testing.assert_allclose(boxes[:, :4], on_a_copy[:, :4] * (640 / 480), rtol=1e-6)
    np.testing.assert_array_equal(boxes[:, 4], on_a_copy[:, 4])


def test_detect_size_below_the_minimum_is_refused(synthetic_paths):
    with pytest.raises(ValueError, match="detect_size"):
        FaceDetector(synthetic_paths.detector, detect_size=MIN_DETECT_SIZE - 1)
    with pytest.raises(ValueError, match="detect_size"):
        EngineConfig(detect_size=MIN_DETECT_SIZE - 1)
    assert live_config._MIN_DETECT_SIZE == MIN_DETECT_SIZE
    assert EngineConfig(detect_size=MIN_DETECT_SIZE).detect_size == MIN_DETECT_SIZE


def test_detect_size_wires_through_the_reconstructor_and_the_engine(synthetic_paths, cli_env):
    assert Reconstructor(synthetic_paths).detector.detect_size == 0
    assert Reconstructor(synthetic_paths, detect_size=320).detector.detect_size == 320
    # It builds the detector, so it changes only while the engine is stopped.
    assert "detect_size" in RESTART_KEYS
    with Engine(EngineConfig(arch="mb05", detect_size=320)) as engine:
        assert engine._reconstructor.detector.detect_size == 320
        with pytest.raises(ValueError, match="detect_size"):
            engine.update_config(detect_size=256)


# -- quantisation ---------------------------------------------------------------------------------

def test_folding_the_means_keeps_the_detector_function(synthetic_paths, tmp_path):
    # The first convolution's output is compared too: the synthetic heads barely see the borders.
    sessions = []
    for name, fold in (("float", False), ("folded", True)):
        model = onnx.load(str(synthetic_paths.detector))
        model = quantize.fold_input_means(model) if fold else model
        first = next(n for n in model.graph.node if n.op_type == "Conv").output[0]
        model.graph.output.append(onnx.helper.make_tensor_value_info(first, onnx.TensorProto.FLOAT, None))
        onnx.save(model, tmp_path / f"{name}.onnx")
        sessions.append(create_session(tmp_path / f"{name}.onnx"))
        assert ("Sub" in {n.op_type for n in model.graph.node}) is not fold
    # The oval touches no border, a frame-filling one does: the padding must match there too.
    for picture in (face_picture(640, 480), face_picture(320, 240, size=1.2)):
        want, got = (s.run(None, {"image": picture}) for s in sessions)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, atol=1e-3 * np.abs(b).max())


@pytest.mark.parametrize("float_tail", [True, False])
def test_quantised_detector_finds_the_float_detectors_face(synthetic_paths, tmp_path, float_tail):
    path = quantize.quantize_detector(synthetic_paths.detector, tmp_path / "int8.onnx", _calibration(),
                                      float_tail=float_tail)
    model = onnx.load(str(path))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("QuantizeLinear") > 10 and "Sub" not in ops
    softmax = next(n for n in model.graph.node if n.op_type == "Softmax")
    # The recipe leaves the probabilities float; quantising everything wraps the softmax in Q/DQ.
    assert ("QuantizeLinear" in _consumers(model, softmax.output[0])) is not float_tail
    reference, int8 = FaceDetector(synthetic_paths.detector), FaceDetector(path)
    for picture in (face_picture(640, 480), face_picture(1280, 720)):
        want, got = reference(picture), int8(picture)
        assert len(got) == len(want) == 1
        assert iou(got[0], want[0]) > 0.5


def test_quantised_regressor_keeps_its_head_float(synthetic_paths, tmp_path):
    crops = np.stack([face_picture(120, 120, size=0.9, seed=s) for s in range(4)])
    path = quantize.quantize_regressor(synthetic_paths.regressor, tmp_path / "int8.onnx", crops)
    model = onnx.load(str(path))
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    assert _producer(model, gemm.input[1]) is None, "the fully connected weights were quantised"
    assert [n.op_type for n in model.graph.node].count("QuantizeLinear") > 10
    params = create_session(path).run(None, {"input": crops})[0]
    assert params.shape == (4, 62) and np.isfinite(params).all()


# -- the acceptance rule --------------------------------------------------------------------------

def test_worst_box_iou_counts_a_lost_or_added_face_as_zero():
    a, b = np.array([[0, 0, 10, 10, 1.0]]), np.array([[0, 0, 10, 10, 0.9], [50, 50, 60, 60, 0.8]])
    empty = np.zeros((0, 5))
    assert quantize.worst_box_iou(a, a) == 1.0
    assert quantize.worst_box_iou(a, b) == 0.0 and quantize.worst_box_iou(b, a) == 0.0
    assert quantize.worst_box_iou(a, empty) == 0.0 and quantize.worst_box_iou(empty, empty) == 1.0
    assert quantize.worst_box_iou(a, np.array([[0, 0, 10, 9, 1.0]])) == pytest.approx(0.9)


def test_the_detector_rule_wants_speed_and_overlap_everywhere():
    assert quantize.judge_detector(1.3, {"a": 0.95, "b": 1.0}) == quantize.Verdict(True, ())
    slow = quantize.judge_detector(1.29, {"a": 0.99})
    assert not slow.kept and "1.29x" in slow.reasons[0]
    off = quantize.judge_detector(2.0, {"a": 0.99, "frame 3": 0.94, "b": 0.949})
    assert not off.kept and off.reasons == ("box IoU below 0.95 on 2 of 3 images and frames (least 0.940, frame 3)",)


def test_the_regressor_rule_wants_speed_params_and_landmarks():
    assert quantize.judge_regressor(1.5, 0.01, 0.5).kept
    verdict = quantize.judge_regressor(1.2, 0.011, 0.51)
    assert not verdict.kept and len(verdict.reasons) == 3
    assert not quantize.judge_regressor(1.5, float("nan"), 0.1).kept


# -- on the shared images and video ---------------------------------------------------------------

@pytest.fixture(scope="module")
def shared_pictures():
    pictures = {name: cv2.imread(str(path)) for name, path in IMAGES.items()}
    capture = cv2.VideoCapture(str(VIDEO))
    while (frame := capture.read())[0]:
        pictures[f"frame {len(pictures) - len(IMAGES)}"] = frame[1]
    capture.release()
    return pictures


@pytest.mark.real_assets
def test_detect_size_320_keeps_every_face_the_whole_frame_detector_finds(model_paths, shared_pictures):
    whole, small = FaceDetector(model_paths.detector), FaceDetector(model_paths.detector, detect_size=320)
    assert len(shared_pictures) == 4 + 55
    for name, picture in shared_pictures.items():
        want, got = whole(picture), small(picture)
        assert len(got) == len(want), name
        assert quantize.worst_box_iou(want, got) >= 0.5, name


@pytest.mark.real_assets
def test_folding_the_means_keeps_the_real_detectors_boxes(model_paths, shared_pictures, tmp_path):
    path = tmp_path / "folded.onnx"
    onnx.save(quantize.fold_input_means(onnx.load(str(model_paths.detector))), path)
    whole, folded = FaceDetector(model_paths.detector), FaceDetector(path)
    for name, picture in shared_pictures.items():
        want, got = whole(picture), folded(picture)
        assert len(got) == len(want), name
        np.testing.assert_allclose(got, want, atol=0.05, err_msg=name)


@pytest.mark.real_assets
def test_quantised_detector_finds_every_face_the_float_detector_finds(model_paths, shared_pictures, tmp_path):
    names = list(shared_pictures)
    calibration = [shared_pictures[n] for n in names[:4]] + [shared_pictures[n] for n in names[4::6]]
    path = quantize.quantize_detector(model_paths.detector, tmp_path / "int8.onnx", calibration)
    reference, int8 = FaceDetector(model_paths.detector), FaceDetector(path)
    worst = {name: quantize.worst_box_iou(reference(p), int8(p)) for name, p in shared_pictures.items()}
    # Not the rule's 0.95 (bench_quant.py shows where and why it falls short): every face, in place.
    assert min(worst.values()) >= 0.9, min(worst.items(), key=lambda kv: kv[1])
