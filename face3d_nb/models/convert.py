"""Build ONNX graphs for the upstream networks from their state dicts, without torch.

The graphs take raw ``uint8`` pixels and do upstream's normalisation inside, so the runtime feeds
images straight from OpenCV:

* regressor (MobileNetV1, width 0.5 or 1.0): ``input`` (N, 120, 120, 3) uint8 BGR crops ->
  ``params`` (N, 62) float32, already de-normalised with upstream's parameter mean/std;
* detector (FaceBoxes): ``image`` (H, W, 3) uint8 BGR -> ``loc`` (P, 4) prior offsets and
  ``scores`` (P,) face probability, P depending on H and W.

Batch norm is folded into the preceding convolution (in float64, then rounded once to float32).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["build_detector", "build_regressor", "save_model"]

_OPSET = 17
_BN_EPS = 1e-5


class _GraphBuilder:
    """Accumulates nodes and initialisers; each method returns the name of its output."""

    def __init__(self, state: dict[str, np.ndarray]):
        self.state = state
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def _name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, value: np.ndarray, hint: str = "const") -> str:
        name = self._name(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs) -> str:
        out = self._name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def conv_bn(self, x: str, conv: str, bn: str | None, stride: int = 1, pad: int = 0, group: int = 1) -> str:
        """Convolution ``conv`` (state-dict prefix), optionally followed by batch norm ``bn``, folded."""
        w = self.state[f"{conv}.weight"].astype(np.float64)
        b = self.state.get(f"{conv}.bias")
        b = np.zeros(w.shape[0]) if b is None else b.astype(np.float64)
        if bn is not None:
            scale = self.state[f"{bn}.weight"] / np.sqrt(self.state[f"{bn}.running_var"].astype(np.float64) + _BN_EPS)
            w = w * scale[:, None, None, None]
            b = (b - self.state[f"{bn}.running_mean"]) * scale + self.state[f"{bn}.bias"]
        k = w.shape[-1]
        return self.op(
            "Conv",
            [x, self.const(w.astype(np.float32), "w"), self.const(b.astype(np.float32), "b")],
            hint=conv.replace(".", "_"),
            kernel_shape=[k, k],
            strides=[stride, stride],
            pads=[pad] * 4,
            group=group,
        )

    def relu(self, x: str) -> str:
        return self.op("Relu", [x])

    def model(self, inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto], name: str) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)], producer_name="face3d_nb")
        model.ir_version = 8
        onnx.checker.check_model(model, full_check=True)
        return model


def _uint8_to_nchw(g: _GraphBuilder, x: str, mean, scale: float | None) -> str:
    """(N, H, W, 3) uint8 -> float32 NCHW, minus ``mean`` (per channel), times ``scale``."""
    # Transposing first keeps the per-channel subtraction on contiguous planes; ORT's broadcast
    # over a trailing axis of 3 is several times slower.
    x = g.op("Cast", [g.op("Transpose", [x], perm=[0, 3, 1, 2])], to=TensorProto.FLOAT)
    x = g.op("Sub", [x, g.const(np.asarray(mean, np.float32).reshape(1, -1, 1, 1), "mean")])
    if scale is not None:
        x = g.op("Mul", [x, g.const(np.float32(scale), "scale")])
    return x


def build_regressor(state: dict[str, np.ndarray], param_mean: np.ndarray, param_std: np.ndarray) -> onnx.ModelProto:
    """MobileNetV1 3DMM regressor; the width comes from the weights (first layer has 32*width filters)."""
    width = state["conv1.weight"].shape[0] / 32
    g = _GraphBuilder(state)
    # Upstream: (x - 127.5) / 128; dividing by a power of two equals multiplying by its inverse exactly.
    x = _uint8_to_nchw(g, "input", 127.5, 1 / 128)
    x = g.relu(g.conv_bn(x, "conv1", "bn1", stride=2, pad=1))
    blocks = [("dw2_1", 1), ("dw2_2", 2), ("dw3_1", 1), ("dw3_2", 2), ("dw4_1", 1), ("dw4_2", 2)]
    blocks += [(f"dw5_{i}", 1) for i in range(1, 6)] + [("dw5_6", 2), ("dw6", 1)]
    for name, stride in blocks:
        channels = state[f"{name}.conv_dw.weight"].shape[0]
        x = g.relu(g.conv_bn(x, f"{name}.conv_dw", f"{name}.bn_dw", stride=stride, pad=1, group=channels))
        x = g.relu(g.conv_bn(x, f"{name}.conv_sep", f"{name}.bn_sep"))
    x = g.op("Flatten", [g.op("GlobalAveragePool", [x])])
    fc = "fc_param" if "fc_param.weight" in state else "fc"
    x = g.op("Gemm", [x, g.const(state[f"{fc}.weight"], "fc_w"), g.const(state[f"{fc}.bias"], "fc_b")], transB=1)
    x = g.op("Mul", [x, g.const(param_std.astype(np.float32), "param_std")])
    g.nodes.append(helper.make_node("Add", [x, g.const(param_mean.astype(np.float32), "param_mean")], ["params"]))
    n_params = state[f"{fc}.weight"].shape[0]
    return g.model(
        [helper.make_tensor_value_info("input", TensorProto.UINT8, ["N", 120, 120, 3])],
        [helper.make_tensor_value_info("params", TensorProto.FLOAT, ["N", n_params])],
        f"mobilenet_v1_w{width:g}",
    )


def _faceboxes_inception(g: _GraphBuilder, x: str, name: str) -> str:
    def basic(inp: str, sub: str, pad: int = 0) -> str:
        return g.relu(g.conv_bn(inp, f"{name}.{sub}.conv", f"{name}.{sub}.bn", pad=pad))

    pooled = g.op("AveragePool", [x], kernel_shape=[3, 3], strides=[1, 1], pads=[1] * 4, count_include_pad=1)
    b1 = basic(x, "branch1x1")
    b2 = basic(pooled, "branch1x1_2")
    b3 = basic(basic(x, "branch3x3_reduce"), "branch3x3", pad=1)
    b4 = basic(basic(basic(x, "branch3x3_reduce_2"), "branch3x3_2", pad=1), "branch3x3_3", pad=1)
    return g.op("Concat", [b1, b2, b3, b4], axis=1)


def build_detector(state: dict[str, np.ndarray]) -> onnx.ModelProto:
    """FaceBoxes: uint8 BGR image in, per-prior box offsets and face scores out."""
    g = _GraphBuilder(state)
    x = g.op("Unsqueeze", ["image", g.const(np.array([0], np.int64), "axes")])
    x = _uint8_to_nchw(g, x, (104, 117, 123), None)

    def crelu(inp: str, name: str, stride: int, pad: int) -> str:
        y = g.conv_bn(inp, f"{name}.conv", f"{name}.bn", stride=stride, pad=pad)
        return g.relu(g.op("Concat", [y, g.op("Neg", [y])], axis=1))

    def max_pool(inp: str) -> str:
        return g.op("MaxPool", [inp], kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4)

    def basic(inp: str, name: str, stride: int = 1, pad: int = 0) -> str:
        return g.relu(g.conv_bn(inp, f"{name}.conv", f"{name}.bn", stride=stride, pad=pad))

    x = max_pool(crelu(x, "conv1", stride=4, pad=3))
    x = max_pool(crelu(x, "conv2", stride=2, pad=2))
    for name in ("inception1", "inception2", "inception3"):
        x = _faceboxes_inception(g, x, name)
    sources = [x]
    x = basic(basic(x, "conv3_1"), "conv3_2", stride=2, pad=1)
    sources.append(x)
    x = basic(basic(x, "conv4_1"), "conv4_2", stride=2, pad=1)
    sources.append(x)

    def head(kind: str, per_prior: int) -> str:
        parts = []
        for i, src in enumerate(sources):
            y = g.conv_bn(src, f"{kind}.{i}", None, pad=1)
            y = g.op("Transpose", [y], perm=[0, 2, 3, 1])
            parts.append(g.op("Reshape", [y, g.const(np.array([-1, per_prior], np.int64), "shape")]))
        return g.op("Concat", parts, axis=0)

    g.nodes.append(helper.make_node("Identity", [head("loc", 4)], ["loc"]))
    probs = g.op("Softmax", [head("conf", 2)], axis=-1)
    starts, ends, axes = (g.const(np.array([v], np.int64)) for v in (1, 2, 1))
    face = g.op("Slice", [probs, starts, ends, axes])
    g.nodes.append(helper.make_node("Squeeze", [face, g.const(np.array([1], np.int64), "axes")], ["scores"]))
    return g.model(
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["H", "W", 3])],
        [
            helper.make_tensor_value_info("loc", TensorProto.FLOAT, ["P", 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["P"]),
        ],
        "faceboxes",
    )


def save_model(model: onnx.ModelProto, path: Path) -> None:
    """Write ``model`` atomically: a reader never sees a half-written file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(model.SerializeToString())
    tmp.replace(path)
