"""The ONNX graphs we build compute what the upstream networks compute.

The regressor is checked against an independent numpy forward pass with batch norm applied
unfolded, on the real mb05 weights and on synthetic weights of the width-1.0 (mb1) network, whose
real checkpoint is not in shared/assets. The detector is checked for structure here; its numbers
are checked against upstream's outputs in test_parity.py.
"""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from face3d_nb.core.detector import prior_boxes
from face3d_nb.models.convert import build_detector, build_regressor
from face3d_nb.models.safe_pickle import load_legacy_pth, load_pkl
from face3d_nb.testing.assets import ASSETS, IMAGES

_BLOCKS = [("dw2_1", 1), ("dw2_2", 2), ("dw3_1", 1), ("dw3_2", 2), ("dw4_1", 1), ("dw4_2", 2)]
_BLOCKS += [(f"dw5_{i}", 1) for i in range(1, 6)] + [("dw5_6", 2), ("dw6", 1)]


def _conv(x, w, stride, pad, groups):
    c, k = x.shape[0], w.shape[-1]
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    win = sliding_window_view(xp, (k, k), axis=(1, 2))[:, ::stride, ::stride]
    win = win.reshape(groups, c // groups, *win.shape[1:])
    wg = w.reshape(groups, w.shape[0] // groups, *w.shape[1:])
    return np.einsum("gchwij,gocij->gohw", win, wg).reshape(w.shape[0], *win.shape[2:4])


def _bn(x, state, name):
    scale = state[f"{name}.weight"] / np.sqrt(state[f"{name}.running_var"] + 1e-5)
    return (x - state[f"{name}.running_mean"][:, None, None]) * scale[:, None, None] + state[f"{name}.bias"][:, None, None]


def _mobilenet_reference(state, crop, mean, std):
    x = (crop.astype(np.float64).transpose(2, 0, 1) - 127.5) / 128
    x = np.maximum(_bn(_conv(x, state["conv1.weight"], 2, 1, 1), state, "bn1"), 0)
    for name, stride in _BLOCKS:
        w = state[f"{name}.conv_dw.weight"]
        x = np.maximum(_bn(_conv(x, w, stride, 1, w.shape[0]), state, f"{name}.bn_dw"), 0)
        x = np.maximum(_bn(_conv(x, state[f"{name}.conv_sep.weight"], 1, 0, 1), state, f"{name}.bn_sep"), 0)
    x = x.mean(axis=(1, 2))
    return (state["fc_param.weight"] @ x + state["fc_param.bias"]) * std + mean


def _synthetic_mobilenet(width, rng):
    state = {}

    def conv_bn(conv, bn, out_c, in_c, k):
        state[f"{conv}.weight"] = (rng.standard_normal((out_c, in_c, k, k)) * np.sqrt(2 / (in_c * k * k))).astype(np.float32)
        state[f"{bn}.weight"] = rng.uniform(0.5, 1.5, out_c).astype(np.float32)
        state[f"{bn}.bias"] = rng.uniform(-0.1, 0.1, out_c).astype(np.float32)
        state[f"{bn}.running_mean"] = rng.uniform(-0.1, 0.1, out_c).astype(np.float32)
        state[f"{bn}.running_var"] = rng.uniform(0.5, 2.0, out_c).astype(np.float32)

    c = int(32 * width)
    conv_bn("conv1", "bn1", c, 3, 3)
    outs = [64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]
    for (name, _), out in zip(_BLOCKS, outs):
        out = int(out * width)
        conv_bn(f"{name}.conv_dw", f"{name}.bn_dw", c, 1, 3)
        conv_bn(f"{name}.conv_sep", f"{name}.bn_sep", out, c, 1)
        c = out
    state["fc_param.weight"] = (rng.standard_normal((62, c)) / np.sqrt(c)).astype(np.float32)
    state["fc_param.bias"] = rng.standard_normal(62).astype(np.float32)
    return state


def _run(model, feeds):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)


def _crops(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 120, 120, 3), dtype=np.uint8)


@pytest.mark.real_assets
def test_mb05_graph_matches_numpy_forward_on_real_weights():
    import cv2

    state = load_legacy_pth(ASSETS / "3ddfa_v2/weights/mb05_120x120.pth")
    stats = load_pkl(ASSETS / "3ddfa_v2/configs/param_mean_std_62d_120x120.pkl")
    face = cv2.resize(cv2.imread(str(IMAGES["JianzhuGuo"])), (120, 120))
    crops = np.stack([face, _crops(1)[0]])
    (params,) = _run(build_regressor(state, stats["mean"], stats["std"]), {"input": crops})
    for crop, got in zip(crops, params):
        want = _mobilenet_reference(state, crop, stats["mean"], stats["std"])
        assert np.max(np.abs(got - want) / stats["std"]) < 1e-4


def test_mb1_width_graph_matches_numpy_forward():
    rng = np.random.default_rng(1)
    state = _synthetic_mobilenet(1.0, rng)
    mean, std = rng.standard_normal(62).astype(np.float32), rng.uniform(0.1, 2, 62).astype(np.float32)
    model = build_regressor(state, mean, std)
    assert model.graph.name == "mobilenet_v1_w1"
    crops = _crops(3, seed=2)
    (params,) = _run(model, {"input": crops})
    assert params.shape == (3, 62)
    for crop, got in zip(crops, params):
        want = _mobilenet_reference(state, crop, mean, std)
        assert np.max(np.abs(got - want) / std) < 1e-4


def test_regressor_graph_is_batched_and_checked():
    state = _synthetic_mobilenet(0.5, np.random.default_rng(3))
    model = build_regressor(state, np.zeros(62, np.float32), np.ones(62, np.float32))
    onnx.checker.check_model(model, full_check=True)
    crops = _crops(4)
    (batch,) = _run(model, {"input": crops})
    (single,) = _run(model, {"input": crops[2:3]})
    np.testing.assert_allclose(batch[2], single[0], rtol=1e-5, atol=1e-5)


@pytest.mark.real_assets
@pytest.mark.parametrize("shape", [(480, 640), (720, 1080), (101, 157)])
def test_detector_heads_line_up_with_prior_boxes(shape):
    model = build_detector(load_legacy_pth(ASSETS / "3ddfa_v2/faceboxes/FaceBoxesProd.pth"))
    onnx.checker.check_model(model, full_check=True)
    image = np.zeros(shape + (3,), np.uint8)
    loc, scores = _run(model, {"image": image})
    assert loc.shape == (len(prior_boxes(*shape)), 4) and scores.shape == (len(loc),)
    assert np.all((scores >= 0) & (scores <= 1))
