"""Live engine settings: one frozen dataclass, validated on construction, loadable from TOML or YAML.

Every way of making a config (the constructor, :meth:`EngineConfig.replace`, :meth:`EngineConfig.load`,
:func:`parse_override`) goes through the same checks, so an unknown key or a value of the wrong type
is a ``ValueError`` naming the key, wherever it came from.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass
from pathlib import Path

from ..core.detail import LEVELS
from ..core.runtime import PROVIDERS
from ..models.store import ARCHS

__all__ = ["MAX_FACES", "RESTART_KEYS", "EngineConfig", "closest", "parse_override", "read_mapping"]

# Keys that choose or build the ONNX sessions: they take effect when the engine (re)starts.
RESTART_KEYS = frozenset({"arch", "threads", "provider", "detect_size"})
#: Most faces tracked at once: each is a mesh decoded per frame and a widget in the page.
MAX_FACES = 16
# face3d_nb.core.detector.MIN_DETECT_SIZE, restated: that module loads OpenCV, these settings need not.
_MIN_DETECT_SIZE = 64


@dataclass(frozen=True)
class EngineConfig:
    """Settings of the live :class:`~face3d_nb.live.engine.Engine`.

    - ``arch`` (None): regressor, ``"mb1"`` or ``"mb05"``; None takes mb1 when installed, else mb05.
    - ``max_input_size`` (640): long side cap in pixels; larger frames are shrunk (area
      interpolation) before anything else, and results are in the shrunk frame's pixels.
    - ``detect_interval`` (30): while faces are tracked, run the detector every this many processed
      frames (1 = every frame); it also runs whenever there is no track, a track is doubtful, on a
      shot cut, and every frame while a face is unconfirmed or missing (see :mod:`face3d_nb.core.tracking`).
    - ``search_interval`` (4): while fewer than ``max_faces`` faces are tracked, look for faces that
      entered after this many frames without a detection (0 = never).
    - ``search_scale`` (0.5): that search looks at the frame shrunk by this factor (0 ... 1): at 0.5 it
      takes about 0.45x the time of a detection and finds faces from about 50 to 80 pixels across
      (their landmarks; the face and its pose decide), smaller ones only at the next full detection;
      1 = whole frames.
    - ``max_faces`` (4): most faces tracked at once, 1..:data:`MAX_FACES`.
    - ``confirm_hits`` (2): a new face is shown, and takes an id, once this many detections in a row
      (one a frame) have found it; until then it is not shown and costs no id (1 = at once).
    - ``confirm_score`` (0.9): a detection scoring above this (0 ... 1) confirms its new face at once.
    - ``max_misses`` (10): a face the detector no longer finds is hidden and kept this many frames;
      found again over its last place in that time, it keeps its id (0 = it ends at once).
    - ``cut_threshold`` (0.2): a frame whose colours differ from the previous frame's by more than
      this (the share of pixels that changed colour bin, 0 ... 1) starts a new shot: the detector runs
      at once and only faces in the same place keep their ids (1 = no cut detection).
    - ``smoothing`` (0.5): temporal smoothing strength, 0 = off ... 1 = strongest (One Euro filter).
    - ``max_fps`` (0.0): process at most this many frames per second (0 = as many as possible);
      frames arriving in between wait in the one-frame slot and are replaced by newer ones.
    - ``max_age`` (0.0): drop, instead of processing, a frame captured more than this many seconds
      before the worker gets to it (0 = never); only meaningful when ``captured_at`` and the
      engine's clock agree (same machine and clock).
    - ``frame_skip`` (1): process only every k-th submitted frame; the others are counted as skipped.
    - ``dense`` (True): decode the dense mesh of every face in the worker.
    - ``detail`` ("full"): mesh detail level, ``"full"`` (38,365 vertices), ``"medium"`` or ``"low"``
      (about 1/4 and 1/16 of them); lower levels decode only their vertices' rows of the model.
    - ``threads`` (0): the detector's ONNX Runtime intra-op threads; 0 lets ONNX Runtime choose (the
      regressor always runs on one thread: see :mod:`~face3d_nb.core.runtime`).
    - ``provider`` ("cpu"): execution provider, ``"cpu"`` or ``"cuda"``.
    - ``detect_size`` (0): run the detector on a copy of the frame at most this many pixels on its
      long side, 0 = on the frame itself (see :mod:`face3d_nb.core.detector`); at 320 it finds every
      face of the test images and video, and faces from about 80 pixels across in a 640-pixel frame
      (from 40 on the frame itself).
    - ``min_face_size`` (40.0): a track whose crop is smaller than this many pixels is doubtful.
    - ``keep_frame`` (True): attach the processed BGR frame to each result (the app draws on it).
    - ``max_encoded_bytes`` (8_000_000): largest encoded (JPEG/PNG) frame accepted by ``submit``.
    - ``max_pixels`` (16_000_000): largest decoded size (width x height) of an encoded frame.
    - ``stats_window`` (300): latency percentiles are taken over this many most recent frames.
    - ``rate_window`` (2.0): input and processed frame rates are measured over this many seconds.
    """

    arch: str | None = None
    max_input_size: int = 640
    detect_interval: int = 30
    search_interval: int = 4
    search_scale: float = 0.5
    max_faces: int = 4
    confirm_hits: int = 2
    confirm_score: float = 0.9
    max_misses: int = 10
    cut_threshold: float = 0.2
    smoothing: float = 0.5
    max_fps: float = 0.0
    max_age: float = 0.0
    frame_skip: int = 1
    dense: bool = True
    detail: str = "full"
    threads: int = 0
    provider: str = "cpu"
    detect_size: int = 0
    min_face_size: float = 40.0
    keep_frame: bool = True
    max_encoded_bytes: int = 8_000_000
    max_pixels: int = 16_000_000
    stats_window: int = 300
    rate_window: float = 2.0

    def __post_init__(self):
        for f in dataclasses.fields(self):
            _check_type(f.name, getattr(self, f.name))
            if isinstance(f.default, float):
                object.__setattr__(self, f.name, float(getattr(self, f.name)))
        if self.arch is not None and self.arch not in ARCHS:
            raise ValueError(f"arch: {self.arch!r} is not one of {', '.join(ARCHS)}")
        if self.detail not in LEVELS:
            raise ValueError(f"detail: {self.detail!r} is not one of {', '.join(LEVELS)}")
        if self.provider not in PROVIDERS:
            raise ValueError(f"provider: {self.provider!r} is not one of {', '.join(PROVIDERS)}")
        for name, low in (("max_input_size", 32), ("detect_interval", 1), ("max_faces", 1), ("frame_skip", 1),
                          ("max_encoded_bytes", 1), ("max_pixels", 1), ("stats_window", 2), ("threads", 0),
                          ("min_face_size", 1), ("max_fps", 0), ("max_age", 0), ("search_interval", 0),
                          ("confirm_hits", 1), ("max_misses", 0)):
            if getattr(self, name) < low:
                raise ValueError(f"{name}: must be at least {low}, got {getattr(self, name)}")
        if self.max_faces > MAX_FACES:
            raise ValueError(f"max_faces: must be at most {MAX_FACES}, got {self.max_faces}")
        for name in ("smoothing", "confirm_score", "cut_threshold"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}: must be between 0 and 1, got {getattr(self, name)}")
        if not 0.0 < self.search_scale <= 1.0:
            raise ValueError(f"search_scale: must be above 0 and at most 1, got {self.search_scale}")
        if self.detect_size and self.detect_size < _MIN_DETECT_SIZE:
            raise ValueError(f"detect_size: must be 0 (off) or at least {_MIN_DETECT_SIZE}, got {self.detect_size}")
        if not self.rate_window > 0:
            raise ValueError(f"rate_window: must be positive, got {self.rate_window}")

    def replace(self, **overrides) -> EngineConfig:
        """A copy with ``overrides`` applied; unknown keys and bad values raise ``ValueError``."""
        _check_keys(overrides)
        return dataclasses.replace(self, **overrides)

    @classmethod
    def from_dict(cls, values: dict) -> EngineConfig:
        """A config from a mapping of field names to values (defaults for the rest)."""
        if not isinstance(values, dict):
            raise ValueError(f"expected a mapping of settings, got {type(values).__name__}")
        _check_keys(values)
        return cls(**values)

    @classmethod
    def load(cls, path: str | Path) -> EngineConfig:
        """Read a flat ``.toml``, ``.yaml`` or ``.yml`` file of settings; missing keys keep their defaults."""
        values = read_mapping(path)
        try:
            return cls.from_dict(values)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None


def read_mapping(path: str | Path) -> dict:
    """The top-level mapping of a ``.toml``, ``.yaml`` or ``.yml`` file (an empty file is ``{}``);
    an unreadable file, an unknown format or bad syntax is a ``ValueError`` naming the file."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror or exc}") from None
    if suffix == ".toml":
        values = _parse_toml(text, path)
    elif suffix in (".yaml", ".yml"):
        values = _parse_yaml(text, path)
    else:
        raise ValueError(f"{path}: unknown config format {suffix!r} (use .toml, .yaml or .yml)")
    values = {} if values is None else values
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a mapping of settings, got {type(values).__name__}")
    return values


def closest(name: str, known) -> str:
    """`` (did you mean 'x'?)`` for the known name nearest a mistyped one, or "" when none is near."""
    match = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def parse_override(text: str) -> tuple[str, object]:
    """``"key=value"`` from the command line -> ``(key, value)`` converted to the field's type.

    Booleans are ``true/false/yes/no/on/off/1/0``; ``arch=none`` (or empty) means the default.
    """
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key:
        raise ValueError(f"expected KEY=VALUE, got {text!r}")
    _check_keys({key: None})
    default = _DEFAULTS[key]
    try:
        if key == "arch":
            return key, None if raw.lower() in ("", "none", "null") else raw
        if isinstance(default, bool):
            return key, _FLAGS[raw.lower()]
        if isinstance(default, int):
            return key, int(raw)
        if isinstance(default, float):
            return key, float(raw)
    except (KeyError, ValueError):
        raise ValueError(f"{key}: {raw!r} is not a valid {type(default).__name__}") from None
    return key, raw


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(EngineConfig)}
_FLAGS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


def _check_keys(values: dict) -> None:
    unknown = sorted(set(values) - set(_DEFAULTS))
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown setting{closest(unknown[0], _DEFAULTS)} "
                         f"(known: {', '.join(_DEFAULTS)})")


def _check_type(name: str, value) -> None:
    default = _DEFAULTS[name]
    if name == "arch":
        ok = value is None or isinstance(value, str)
        expected = "a string or null"
    elif isinstance(default, bool):
        ok, expected = isinstance(value, bool), "a boolean"
    elif isinstance(default, int):
        ok, expected = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif isinstance(default, float):
        # An integer is a fine float (``max_fps = 15``); a boolean is not.
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        expected = "a finite number"
    else:
        ok, expected = isinstance(value, str), "a string"
    if not ok:
        raise ValueError(f"{name}: expected {expected}, got {type(value).__name__} {value!r}")


def _parse_toml(text: str, path: Path) -> dict:
    try:
        import tomllib  # noqa: PLC0415 - Python 3.11+
    except ModuleNotFoundError:
        try:
            import tomli as tomllib  # noqa: PLC0415
        except ModuleNotFoundError:
            raise ValueError(f"{path}: reading TOML on Python < 3.11 needs the 'tomli' package") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: invalid TOML: {exc}") from None


def _parse_yaml(text: str, path: Path):
    try:
        import yaml  # noqa: PLC0415 - loaded only when a YAML file is read
    except ModuleNotFoundError:
        raise ValueError(f"{path}: reading YAML needs the 'pyyaml' package (or use a .toml file)") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: invalid YAML: {' '.join(str(exc).split())}") from None
