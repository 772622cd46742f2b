"""Session recordings: per-frame faces (params, pose, boxes) and timestamps, as JSON Lines.

Line 1 is a header ``{"format": "face3d_nb-recording", "version": 1, ...}``; each further line is
one processed frame ``{"seq", "t", "frame_shape", "faces": [...]}`` with ``t`` in seconds since the
first recorded frame and coordinates in the processed frame's pixels. Floats are written with
full precision (JSON uses ``repr``), so a replay reproduces the recorded parameters exactly. A
recording is appended to as the session runs; a torn last line (a crash mid-write) is skipped
with a warning on reading.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["RecordedFace", "RecordedFrame", "Recorder", "RecordingError", "read_recording"]

FORMAT, VERSION = "face3d_nb-recording", 1
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
    """The header and frames of a recording."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordingError(f"{path}: cannot read ({exc})") from None
    try:
        header = json.loads(lines[0]) if lines else None
    except json.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise RecordingError(f"{path}: not a face3d_nb recording (bad header)")
    if header.get("version") != VERSION:
        raise RecordingError(f"{path}: recording version {header.get('version')} is not supported")
    frames = []
    for number, line in enumerate(lines[1:], start=2):
        try:
            frames.append(_frame(json.loads(line)))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            if number == len(lines):
                log.warning("%s: skipping an incomplete last line", path)
                break
            raise RecordingError(f"{path}:{number}: malformed frame ({exc})") from None
    return header, frames


def _frame(data: dict) -> RecordedFrame:
    faces = []
    for f in data["faces"]:
        params = np.asarray(f["params"], np.float32)
        if params.shape != (62,):
            raise ValueError("expected 62 params")
        pose = tuple(float(v) for v in f["pose"])
        if len(pose) != 3:
            raise ValueError("expected yaw, pitch, roll")
        faces.append(RecordedFace(int(f["track_id"]), np.asarray(f["box"], np.float32),
                                  np.asarray(f["roi_box"], np.float64), params, pose))
    h, w = data["frame_shape"]
    return RecordedFrame(int(data["seq"]), float(data["t"]), (int(h), int(w)), tuple(faces))

