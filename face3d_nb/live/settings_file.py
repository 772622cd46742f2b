"""One settings file for the engine and the app, in our flat shape, the seed app's sections, or both.

Our shape is flat: :class:`~face3d_nb.live.config.EngineConfig`'s fields plus the app's keys
(:data:`APP_KEYS`). The seed app's ``config.yaml`` had sections; each of its keys that means
something here is mapped onto ours (:data:`SEED_KEYS`), and each that means nothing here
(:data:`SEED_MEANINGLESS`) is a warning saying why, never an error. A key that is neither is a
mistake: an error naming it and the closest valid key. Setting one of our keys twice (``provider``
and ``model.device``) is an error too.

``input_size`` (the seed's ``performance.input_resolution``) is the long side, in pixels, of the
camera frames the app's page sends: ``640`` or ``"640x480"`` (the larger number counts).
``log_performance`` (``debug.log_performance``): ``true`` writes a per-frame CSV performance log
(:mod:`~face3d_nb.live.performance_log`) named ``face3d-performance-YYYYMMDD-HHMMSS.csv`` next to
the settings file; a string is the log's path, relative to the settings file's folder.
``verbose`` (``debug.verbose``): log the ``face3d_nb`` loggers at DEBUG level.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

from .config import EngineConfig, closest, read_mapping

__all__ = ["APP_KEYS", "SEED_KEYS", "SEED_MEANINGLESS", "Settings", "load_settings"]

log = logging.getLogger(__name__)

#: The app's own keys, besides the engine's, with what each is.
APP_KEYS = {
    "input_size": "long side in pixels of the frames the app's page sends (640 or \"640x480\")",
    "transport": "how mesh updates reach the page: auto, positions or coefficients",
    "view": "what the 3D view draws of each face: shaded, texture, depth, pncc or points",
    "over_frame": "draw the faces over the camera frame they came from (true) or in the free-orbit 3D view",
    "verbose": "log the face3d_nb loggers at DEBUG level",
    "log_performance": "true, or a path: write a per-frame performance log (CSV)",
}
#: The seed's keys that mean something here, and the key of ours each sets.
SEED_KEYS = {
    "model.device": "provider",
    "performance.input_resolution": "input_size",
    "performance.frame_skip": "frame_skip",
    "performance.max_fps": "max_fps",
    "debug.log_performance": "log_performance",
    "debug.verbose": "verbose",
}
#: The seed's keys that mean nothing here (a section's name covers all its keys), and why.
SEED_MEANINGLESS = {
    "model.weights_path": "models come from the model cache ($FACE3D_HOME; `face3d-nb models fetch` or "
                          "`face3d-nb models import DIR`), not from a path",
    "model.use_onnx": "face3d_nb always runs ONNX Runtime",
    "socket": "frames reach the kernel as widget messages, not over a socket; `face3d-nb app --host/--port` "
              "says where the app is served",
}
SECTIONS = frozenset(key.split(".")[0] for key in (*SEED_KEYS, *SEED_MEANINGLESS))
_ENGINE_KEYS = tuple(f.name for f in fields(EngineConfig))
_SIZE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")


@dataclass(frozen=True)
class Settings:
    """What one settings file says: ``engine`` settings; the app's ``input_size``, ``transport``,
    ``view`` and ``over_frame`` (None: the app chooses); ``verbose``; ``performance_log``, the log's path or None for no log;
    ``given``, the keys of ours the file set (the app keeps those over its own choices);
    ``warnings``, one line per key that means nothing here; ``source``, the file (None: no file)."""

    engine: EngineConfig = field(default_factory=EngineConfig)
    input_size: int | None = None
    transport: str | None = None
    view: str | None = None
    over_frame: bool | None = None
    verbose: bool = False
    performance_log: Path | None = None
    given: frozenset[str] = frozenset()
    warnings: tuple[str, ...] = ()
    source: Path | None = None


def load_settings(path: str | Path) -> Settings:
    """Read and check a ``.toml``, ``.yaml`` or ``.yml`` settings file (see the module docstring).

    Logs each warning; raises ``ValueError`` naming the file and the key for anything wrong.
    """
    path = Path(path)
    try:
        settings = _settings(read_mapping(path), path)
    except ValueError as exc:
        message = str(exc)
        raise ValueError(message if message.startswith(f"{path}:") else f"{path}: {message}") from None
    for warning in settings.warnings:
        log.warning("%s: %s", path, warning)
    return settings


def _settings(values: dict, path: Path) -> Settings:
    flat, warnings = _flatten(values)
    engine = EngineConfig.from_dict({k: v for k, v in flat.items() if k in _ENGINE_KEYS})
    input_size = _input_size(flat["input_size"]) if "input_size" in flat else None
    for key, kind in (("transport", str), ("view", str), ("over_frame", bool), ("verbose", bool)):
        if key in flat and not isinstance(flat[key], kind):
            raise ValueError(f"{key}: expected a {'string' if kind is str else 'boolean'}, "
                             f"got {type(flat[key]).__name__} {flat[key]!r}")
    return Settings(engine=engine, input_size=input_size, transport=flat.get("transport"), view=flat.get("view"),
                    over_frame=flat.get("over_frame"), verbose=flat.get("verbose", False),
                    performance_log=_performance_log(flat.get("log_performance", False), path),
                    given=frozenset(flat), warnings=tuple(warnings), source=path.resolve())


def _flatten(values: dict) -> tuple[dict, list[str]]:
    """Our keys -> values from a file's top level and the seed's sections, and the warnings."""
    flat: dict = {}
    origin: dict[str, str] = {}
    warnings: list[str] = []

    def put(key: str, value, written: str) -> None:
        if key in flat:
            raise ValueError(f"{written}: sets {key!r}, which {origin[key]} sets too")
        flat[key], origin[key] = value, written

    for name, value in values.items():
        name = str(name)
        if name in SECTIONS:
            if name in SEED_MEANINGLESS:
                warnings.append(f"{name}: ignored: {SEED_MEANINGLESS[name]}")
                continue
            if not isinstance(value, dict):
                raise ValueError(f"{name}: expected a section of settings, got {type(value).__name__}")
            for key, inner in value.items():
                dotted = f"{name}.{key}"
                if dotted in SEED_KEYS:
                    put(SEED_KEYS[dotted], inner, dotted)
                elif dotted in SEED_MEANINGLESS:
                    warnings.append(f"{dotted}: ignored: {SEED_MEANINGLESS[dotted]}")
                else:
                    known = [k for k in (*SEED_KEYS, *SEED_MEANINGLESS) if k.startswith(f"{name}.")]
                    raise ValueError(f"{dotted}: unknown setting{closest(dotted, known)} (known in {name}: "
                                     f"{', '.join(k.split('.', 1)[1] for k in known)})")
        elif name in _ENGINE_KEYS or name in APP_KEYS:
            put(name, value, name)
        else:
            known = (*_ENGINE_KEYS, *APP_KEYS, *SECTIONS)
            raise ValueError(f"{name}: unknown setting{closest(name, known)} (known: {', '.join(known)})")
    return flat, warnings


def _input_size(value) -> int:
    if isinstance(value, str) and (match := _SIZE.match(value)):
        size = max(int(n) for n in match.groups())
    elif isinstance(value, int) and not isinstance(value, bool):
        size = value
    else:
        raise ValueError(f"input_size: expected pixels (640) or a resolution (\"640x480\"), got {value!r}")
    if not 32 <= size <= 4096:
        raise ValueError(f"input_size: must be between 32 and 4096 pixels, got {size}")
    return size


def _performance_log(value, path: Path) -> Path | None:
    if value is False or value is None:
        return None
    folder = path.resolve().parent
    if value is True:
        return folder / time.strftime("face3d-performance-%Y%m%d-%H%M%S.csv")
    if isinstance(value, str) and value.strip():
        return folder / Path(value).expanduser()
    raise ValueError(f"log_performance: expected true, false or a path, got {value!r}")
