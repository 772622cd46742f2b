"""Session recordings: per-frame faces (params, pose, boxes) and timestamps, as JSON Lines.

Line 1 is a header ``{"format": "face3d_nb-recording", "version": 1, ...}``; each further line is
one processed frame ``{"seq", "t", "frame_shape", "faces": [...]}`` with ``t`` in seconds since the
first recorded frame and coordinates in the processed frame's pixels. Floats are written with
full precision (JSON uses ``repr``), so a replay reproduces the recorded parameters exactly. A
recording is appended to as the session runs; a torn last line (a crash mid-write) is skipped
with a warning on reading.

Recordings are passed around, so reading trusts nothing: every line is at most
:data:`MAX_LINE` characters, and every field is checked as it is read (whole numbers where the
recorder writes them, finite numbers, exact lengths: ``box`` 5 (its score NaN when the face was
tracked, not detected), ``roi_box`` 4 with an area,
``params`` 62 finite as float32, ``pose`` 3; at most :data:`~face3d_nb.live.config.MAX_FACES`
faces a frame, frame sides up to 65,536 pixels). Anything else is a :class:`RecordingError`
naming the line and the field, e.g. ``s.jsonl:7: faces[0].roi_box: expected 4 numbers, got [1, 2]``.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import MAX_FACES

__all__ = ["MAX_LINE", "RecordedFace", "RecordedFrame", "Recorder", "RecordingError", "read_recording"]

FORMAT, VERSION = "face3d_nb-recording", 1
#: Longest line read, in characters: a frame of the most faces is about 35,000.
MAX_LINE = 262_144
_MAX_SIDE = 65_536
log = logging.getLogger(__name__)


class RecordingError(ValueError):
    """A file is not a readable face3d_nb recording; the message says where and why."""


@dataclass(frozen=True)
class RecordedFace:
    """``track_id``; ``box`` (5,) and ``roi_box`` (4,) pixels; ``params`` (62,) float32;
    ``pose`` (yaw, pitch, roll) degrees."""

    track_id: int
    box: np.ndarray
    roi_box: np.ndarray
    params: np.ndarray
    pose: tuple[float, float, float]


@dataclass(frozen=True)
class RecordedFrame:
    """``seq`` engine sequence number; ``t`` seconds since the first frame; ``frame_shape`` (h, w)."""

    seq: int
    t: float
    frame_shape: tuple[int, int]
    faces: tuple[RecordedFace, ...]


class Recorder:
    """Appends engine results to a recording; use it as an engine subscriber.

    ``Recorder(path, **header)`` creates (or truncates) ``path`` and writes the header with the
    extra ``header`` fields (e.g. ``arch``, ``model``). Calling it with a
    :class:`~face3d_nb.live.events.FrameResult` appends one line; other events are ignored. Thread-safe;
    ``close()`` (or leaving a ``with`` block) flushes and closes the file.
    """

    def __init__(self, path: str | Path, **header):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._file = open(self.path, "w", encoding="utf-8")
        self._t0: float | None = None
        self.frames = 0
        self._file.write(json.dumps({"format": FORMAT, "version": VERSION, **header}) + "\n")
        self._file.flush()

    def __call__(self, event) -> None:
        faces = getattr(event, "faces", None)
        if faces is None:
            return
        record = {
            "seq": int(event.seq),
            "frame_shape": [int(v) for v in event.frame_shape],
            "faces": [
                {
                    "track_id": int(tf.track_id),
                    "box": [float(v) for v in tf.face.box],
                    "roi_box": [float(v) for v in tf.face.roi_box],
                    "params": [float(v) for v in tf.face.params],
                    "pose": [tf.face.pose.yaw, tf.face.pose.pitch, tf.face.pose.roll],
                }
                for tf in faces
            ],
        }
        with self._lock:
            if self._file.closed:
                return
            if self._t0 is None:
                self._t0 = event.captured_at
            record["t"] = event.captured_at - self._t0
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()
            self.frames += 1

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def read_recording(path: str | Path) -> tuple[dict, list[RecordedFrame]]:
    """The header and frames of a recording; :class:`RecordingError` naming the line and field of
    anything that is not as :class:`Recorder` writes it (see the module docstring for the checks)."""
    path = Path(path)
    frames: list[RecordedFrame] = []
    torn: str | None = None
    try:
        with path.open(encoding="utf-8") as file:
            header = _header(_line(file, path, 1), path)
            number = 1
            while line := _line(file, path, number + 1):
                number += 1
                if torn is not None:
                    raise RecordingError(torn)
                where = f"{path}:{number}"
                try:
                    data = _json(line, where)
                except json.JSONDecodeError as exc:
                    torn = f"{where}: malformed frame (not JSON: {exc})"
                    continue
                frames.append(_frame(data, where))
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordingError(f"{path}: cannot read ({exc})") from None
    if torn is not None:
        log.warning("%s: skipping an incomplete last line", path)
    return header, frames


def _line(file, path: Path, number: int) -> str:
    line = file.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise RecordingError(f"{path}:{number}: line longer than {MAX_LINE:,} characters")
    return line


def _json(line: str, where: str):
    """``line`` parsed; JSONDecodeError for text that is not JSON (a torn write), RecordingError for
    what the parser cannot hold (nesting deep enough to exhaust it, an integer of thousands of digits).
    NaN and Infinity parse: the fields' checks reject them, naming the field."""
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise RecordingError(f"{where}: nested too deeply") from None
    except ValueError as exc:
        raise RecordingError(f"{where}: {exc}") from None


def _header(line: str, path: Path) -> dict:
    try:
        header = _json(line, f"{path}:1") if line else None
    except (json.JSONDecodeError, RecordingError):
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise RecordingError(f"{path}: not a face3d_nb recording (bad header)")
    if header.get("version") != VERSION:
        raise RecordingError(f"{path}: recording version {header.get('version')} is not supported")
    return header


def _frame(data, where: str) -> RecordedFrame:
    """One frame line's object checked field by field: RecordingError ``where: field: what is wrong``."""
    if not isinstance(data, dict):
        raise RecordingError(f"{where}: malformed frame (expected an object, got {type(data).__name__})")
    faces = _field(data, "faces", where)
    if not isinstance(faces, list) or len(faces) > MAX_FACES:
        got = f"{len(faces)} faces" if isinstance(faces, list) else _short(faces)
        raise RecordingError(f"{where}: faces: expected a list of at most {MAX_FACES} faces, got {got}")
    shape = _field(data, "frame_shape", where)
    if not (isinstance(shape, list) and len(shape) == 2 and all(_whole(v, 1, _MAX_SIDE) for v in shape)):
        raise RecordingError(f"{where}: frame_shape: expected (height, width), each 1..{_MAX_SIDE} pixels, "
                             f"got {_short(shape)}")
    t = _numbers([_field(data, "t", where)], 1, f"{where}: t")[0]
    return RecordedFrame(_index(_field(data, "seq", where), f"{where}: seq"), float(t), (shape[0], shape[1]),
                         tuple(_face(f, f"{where}: faces[{i}]") for i, f in enumerate(faces)))


def _face(data, where: str) -> RecordedFace:
    if not isinstance(data, dict):
        raise RecordingError(f"{where}: expected an object, got {type(data).__name__}")
    roi_box = _numbers(_field(data, "roi_box", where), 4, f"{where}.roi_box")
    if not (roi_box[2] > roi_box[0] and roi_box[3] > roi_box[1]):
        raise RecordingError(f"{where}.roi_box: {roi_box.tolist()} has no area")
    return RecordedFace(_index(_field(data, "track_id", where), f"{where}.track_id"),
                        _numbers(_field(data, "box", where), 5, f"{where}.box", np.float32, nan_last=True), roi_box,
                        _numbers(_field(data, "params", where), 62, f"{where}.params", np.float32),
                        tuple(float(v) for v in _numbers(_field(data, "pose", where), 3, f"{where}.pose")))


def _field(data: dict, name: str, where: str):
    if name not in data:
        raise RecordingError(f"{where}: {name}: missing")
    return data[name]


def _whole(value, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _index(value, where: str) -> int:
    if not _whole(value, 0, 2**63 - 1):
        raise RecordingError(f"{where}: expected a whole number from 0 to 2**63 - 1, got {_short(value)}")
    return value


def _numbers(value, n: int, where: str, dtype=np.float64, nan_last: bool = False) -> np.ndarray:
    """``value`` as an (n,) array of ``dtype``: exactly n JSON numbers, each finite in ``dtype``
    (1e39 is no float32); with ``nan_last`` the last may be NaN (a tracked face's box has no
    detector score)."""
    # numpy infers the kind: strings, None, nested lists and integers beyond int64 are not numbers.
    try:
        array = np.array(value) if isinstance(value, list) else None
    except ValueError:  # ragged nested lists
        array = None
    if array is None or array.shape != (n,) or array.dtype.kind not in "iuf":
        raise RecordingError(f"{where}: expected {'a number' if n == 1 else f'{n} numbers'}, got {_shown(value, n)}")
    with np.errstate(over="ignore"):
        array = array.astype(dtype)
    if not np.isfinite(array[:-1] if nan_last else array).all() or (nan_last and np.isinf(array[-1])):
        raise RecordingError(f"{where}: expected finite numbers, got {_shown(value, n)}")
    return array


def _shown(value, n: int) -> str:
    # ``t`` comes as a list of one: say what it was, not the list.
    return _short(value[0] if n == 1 and isinstance(value, list) and len(value) == 1 else value)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
