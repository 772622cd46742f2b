"""Small synthetic models for tests of wiring: random weights in the real architectures.

:func:`install_synthetic_models` writes upstream-format files into a model cache: FaceBoxes and
MobileNet (width 0.5, as mb05) checkpoints in torch's legacy format, ``param_mean_std``, and a
morphable model of a few hundred vertices (mean-shape files, ``indices.npy``, ``tri.pkl``), then
converts the checkpoints with :meth:`ModelStore.convert`, so the real loading path runs and
``ModelStore(home).resolve()`` (or the CLI with ``FACE3D_HOME=home``) works.

The weights are random (fixed seeds) but non-negative, so every layer passes on local brightness,
and a few head weights are set so that the models behave plausibly on :mod:`.media`'s pictures:

* the detector scores one anchor per 32-pixel cell by the brightness around it and fires (score
  > 0.5) only near the middle of a bright, face-sized oval: one box per oval, none on a dark frame;
* the regressor scales the face with the mean brightness of its crop, halfway between a fixed size
  and proportional, so following a face from its own landmarks settles on one crop size and a
  dark crop shrinks the face by half (a lost track); the translation wobbles with the crop's
  texture, so noise moves the raw landmarks a little.

They test wiring, never accuracy: the landmarks are not on any facial feature.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from ..core.regressor import crop as crop_roi
from ..models import convert
from ..models.store import ModelStore
from .legacy_pth import write_legacy_pth
from .media import face_picture

__all__ = ["install_synthetic_models", "synthetic_store"]

ARCH = "mb05"
_GRID = 24  # vertices per side of the face grid: 576 no-neck vertices
_NECK = 40  # extra full-model vertices that indices.npy leaves out
_UNITS = 1.0e5  # half the face width, in model units as upstream's (the face is ~2e5 wide)
_LANDMARK_SIDE = 120 / np.sqrt(2)  # crop pixels: following landmarks then keeps the crop size
_DETECTOR_BOX = 3.0  # box side / anchor side (128 px): wide boxes, so NMS keeps one per face
_FIRE = 0.67  # share of the peak brightness response (on a 640x360 picture) above which it fires
_SCALE_GAIN = 0.5  # how much of the face's scale follows the crop's brightness
_WOBBLE = 2.0  # crop pixels of translation per unit of texture response


def _conv_bn(state: dict, rng, conv: str, bn: str | None, out_c: int, in_c: int, k: int, groups: int = 1) -> None:
    fan_in = in_c // groups * k * k
    state[f"{conv}.weight"] = (rng.uniform(0, 2, (out_c, in_c // groups, k, k)) / fan_in).astype(np.float32)
    if bn is None:
        state[f"{conv}.bias"] = np.zeros(out_c, np.float32)
        return
    state[f"{bn}.weight"] = rng.uniform(0.9, 1.1, out_c).astype(np.float32)
    state[f"{bn}.bias"] = np.zeros(out_c, np.float32)
    state[f"{bn}.running_mean"] = np.zeros(out_c, np.float32)
    state[f"{bn}.running_var"] = np.ones(out_c, np.float32)


def _faceboxes_state(rng) -> dict[str, np.ndarray]:
    """Upstream FaceBoxes' keys and shapes; see :func:`face3d_nb.models.convert.build_detector`."""
    s: dict[str, np.ndarray] = {}
    _conv_bn(s, rng, "conv1.conv", "conv1.bn", 24, 3, 7)
    _conv_bn(s, rng, "conv2.conv", "conv2.bn", 64, 48, 5)
    # Only the bright half of conv1's CReLU feeds on: the rest of the network sees brightness.
    s["conv2.conv.weight"][:, 24:] = 0
    for name in ("inception1", "inception2", "inception3"):
        for branch, out_c, in_c, k in [("branch1x1", 32, 128, 1), ("branch1x1_2", 32, 128, 1),
                                       ("branch3x3_reduce", 24, 128, 1), ("branch3x3", 32, 24, 3),
                                       ("branch3x3_reduce_2", 24, 128, 1), ("branch3x3_2", 32, 24, 3),
                                       ("branch3x3_3", 32, 32, 3)]:
            _conv_bn(s, rng, f"{name}.{branch}.conv", f"{name}.{branch}.bn", out_c, in_c, k)
    for name, out_c, in_c, k in [("conv3_1", 128, 128, 1), ("conv3_2", 256, 128, 3),
                                 ("conv4_1", 128, 256, 1), ("conv4_2", 256, 128, 3)]:
        _conv_bn(s, rng, f"{name}.conv", f"{name}.bn", out_c, in_c, k)
    for i, (anchors, in_c) in enumerate([(21, 128), (1, 256), (1, 256)]):
        _conv_bn(s, rng, f"loc.{i}", None, 4 * anchors, in_c, 3)
        _conv_bn(s, rng, f"conf.{i}", None, 2 * anchors, in_c, 3)
        s[f"loc.{i}.weight"][:] = 0
        s[f"conf.{i}.weight"][:] = 0
        s[f"conf.{i}.bias"][1::2] = -30  # no face, for every anchor but the one set below
    return s


_BLOCKS = [("dw2_1", 1), ("dw2_2", 2), ("dw3_1", 1), ("dw3_2", 2), ("dw4_1", 1), ("dw4_2", 2),
           *((f"dw5_{i}", 1) for i in range(1, 6)), ("dw5_6", 2), ("dw6", 1)]
_WIDTHS = [64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]


def _mobilenet_state(rng, width: float = 0.5) -> dict[str, np.ndarray]:
    """Upstream MobileNetV1's keys and shapes; see :func:`face3d_nb.models.convert.build_regressor`."""
    s: dict[str, np.ndarray] = {}
    c = int(32 * width)
    _conv_bn(s, rng, "conv1", "bn1", c, 3, 3)
    for (name, _), out in zip(_BLOCKS, _WIDTHS):
        out = int(out * width)
        _conv_bn(s, rng, f"{name}.conv_dw", f"{name}.bn_dw", c, c, 3, groups=c)
        _conv_bn(s, rng, f"{name}.conv_sep", f"{name}.bn_sep", out, c, 1)
        c = out
    s["fc_param.weight"] = np.zeros((62, c), np.float32)
    s["fc_param.bias"] = np.zeros(62, np.float32)
    return s


def _run(model, feeds: dict) -> list[np.ndarray]:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)


def _tune_detector(state: dict[str, np.ndarray]) -> None:
    """Set the 128-pixel anchor's score and box from its brightness response on a face picture."""
    anchor = 20  # of the 21 anchors of the first head: 16 of 32 px, 4 of 64 px, then 128 px
    probe = {**state, "loc.0.weight": state["loc.0.weight"].copy()}
    probe["loc.0.weight"][4 * anchor] = 1 / (9 * state["loc.0.weight"].shape[1])
    picture = face_picture()
    loc, _ = _run(convert.build_detector(probe), {"image": picture})
    cells = int(np.ceil(picture.shape[0] / 32) * np.ceil(picture.shape[1] / 32))
    peak = float(loc[: cells * 21].reshape(cells, 21, 4)[:, anchor, 0].max())
    # Gentle enough that scores rise all the way to the middle of an oval: NMS keeps that box.
    gain = 7.5 / peak
    state["conf.0.weight"][2 * anchor + 1] = gain / (9 * state["conf.0.weight"].shape[1])
    state["conf.0.bias"][2 * anchor + 1] = -gain * _FIRE * peak
    state["loc.0.bias"][4 * anchor + 2 : 4 * anchor + 4] = np.log(_DETECTOR_BOX) / 0.2


def _face_mesh() -> dict[str, np.ndarray]:
    """A shallow dome on a square grid, in upstream's mean-shape file formats."""
    n = _GRID
    u, v = np.meshgrid(np.linspace(-1, 1, n), np.linspace(-1, 1, n))
    face = np.stack([u * _UNITS, -v * 1.25 * _UNITS, 0.5 * _UNITS * (1 - 0.5 * (u**2 + v**2))], -1).reshape(-1, 3)
    neck = np.stack([np.linspace(-0.5, 0.5, _NECK) * _UNITS, np.full(_NECK, -1.5 * _UNITS), np.zeros(_NECK)], -1)
    # The neck vertices come first in the full model, so no-neck indices differ from full ones.
    full = np.concatenate([neck, face]).astype(np.float32)
    indices = np.arange(_NECK, _NECK + n * n, dtype=np.int32)
    quads = np.arange(n * n).reshape(n, n)[:-1, :-1].reshape(-1)
    triangles = np.concatenate([np.stack([quads, quads + n, quads + 1], -1),
                                np.stack([quads + 1, quads + n, quads + n + 1], -1)]).astype(np.int32)
    inner = np.arange(n * n).reshape(n, n)[2:-2, 2:-2].reshape(-1)
    landmarks = indices[inner[np.linspace(0, len(inner) - 1, 68).astype(int)]]
    keypoints = (3 * landmarks[:, None] + np.arange(3)).reshape(-1).astype(np.int64)
    return {"u_shp": full.reshape(-1, 1), "u_exp": np.zeros((full.size, 1), np.float32), "indices": indices,
            "tri": triangles.T.copy(), "keypoints_sim": keypoints, "landmarks": full[landmarks]}


def _target_camera(landmarks: np.ndarray) -> np.ndarray:
    """(12,) frontal camera putting the landmarks' box in the middle of the crop, _LANDMARK_SIDE wide."""
    lo, hi = landmarks.min(axis=0), landmarks.max(axis=0)
    scale = _LANDMARK_SIDE / float(np.max(hi[:2] - lo[:2]))
    centre = (lo + hi) / 2
    # Crop pixels have y up and start at 1 (see similar_transform).
    offset = np.array([61.0, 60.0, 0.0]) - scale * centre
    return np.hstack([np.eye(3) * scale, offset[:, None]]).reshape(-1)


def _tune_regressor(state: dict[str, np.ndarray], camera: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """Set the fully connected layer; returns upstream's (mean, std) for param_mean_std."""
    channels = state["fc_param.weight"].shape[1]
    probe = {**state, "fc_param.weight": np.eye(62, channels, dtype=np.float32)}
    picture = face_picture()
    h = picture.shape[0] / 2
    roi = np.array([picture.shape[1] / 2 - h, 0, picture.shape[1] / 2 + h, 2 * h])
    face = cv2.resize(crop_roi(picture, roi), (120, 120), interpolation=cv2.INTER_LINEAR)
    (features,) = _run(convert.build_regressor(probe, np.zeros(62, np.float32), np.ones(62, np.float32)),
                       {"input": face[None]})
    features = features[0]
    brightness = float(features.mean())
    mean, std = np.zeros(62, np.float32), np.ones(62, np.float32)
    mean[:12] = camera
    w = np.zeros((62, channels), np.float32)
    scale = camera[0]
    for k in (0, 5, 10):  # the diagonal of the scaled rotation
        mean[k], std[k] = scale * (1 - _SCALE_GAIN), scale * _SCALE_GAIN
        w[k, :62] = 1 / (62 * brightness)
    texture = rng.standard_normal((2, 62)) / np.sqrt(62) / brightness
    for row, k in zip(texture, (3, 7)):  # the x and y offsets
        w[k, :62] = row
        state["fc_param.bias"][k] = -float(row @ features)
        std[k] = _WOBBLE
    state["fc_param.weight"] = w
    return mean, std


def install_synthetic_models(home: str | Path, seed: int = 0) -> ModelStore:
    """Write the synthetic upstream files into the model cache at ``home`` and convert them."""
    store = ModelStore(home)
    rng = np.random.default_rng(seed)
    mesh = _face_mesh()
    detector = _faceboxes_state(rng)
    _tune_detector(detector)
    regressor = _mobilenet_state(rng)
    mean, std = _tune_regressor(regressor, _target_camera(mesh["landmarks"]), rng)
    files = {
        "faceboxes": write_legacy_pth(detector, wrap=False),
        ARCH: write_legacy_pth(regressor),
        "param_mean_std": pickle.dumps({"mean": mean, "std": std}, protocol=2),
        "tri": pickle.dumps(mesh["tri"], protocol=2),
    }
    for key, data in files.items():
        _write(store.raw_path(key), data)
    for key in ("indices", "u_shp", "u_exp", "keypoints_sim"):
        path = store.raw_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, mesh[key], allow_pickle=False)
    store.convert()
    return store


def synthetic_store(home: str | Path) -> ModelStore:
    """The synthetic models' cache at ``home``, installed there first when it is empty."""
    store = ModelStore(home)
    if store.default_arch() is None:
        install_synthetic_models(home)
    return store


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
