"""Temporal smoothing of a tracked face's 62 parameters with a causal One Euro filter.

The One Euro filter (Casiez, Roussel and Vogel, CHI 2012) is an exponential low-pass whose cutoff
rises with speed: a still face gets a low cutoff (jitter removed), a moving one a high cutoff
(little lag). It only ever uses past and present samples; nothing waits for a future frame.

Two choices make it work on 3DMM parameters:

- The regressor's camera (the first 12 parameters) is relative to the crop it was given, and while
  tracking the crop moves every frame. Filtering those numbers would smooth the crop's motion too,
  so the camera is first re-expressed in image pixels (the crop's affine map folded in), filtered
  there, and mapped back onto the current crop. Identity and expression are crop independent.
- The parameters have very different scales, so a per-parameter speed would need a per-parameter
  ``beta``. One speed drives all of them instead: how fast the 68 landmarks move, in face sizes per
  second, which means the same thing for a small or a large face.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from math import isfinite, log10, pi

import numpy as np

from .morphable import CROP_SIZE, MorphableModel, pose_from_params
from .pipeline import Face

__all__ = ["FaceSmoother", "OneEuroFilter", "OneEuroParams", "TrackSmoothers", "crop_params", "image_params"]

# Strength 0 -> 1 moves the resting cutoff from _CUTOFF_WEAK to _CUTOFF_STRONG (log scale).
_CUTOFF_WEAK, _CUTOFF_STRONG = 8.0, 0.4
_BETA = 12.0
_D_CUTOFF = 1.0


@dataclass(frozen=True)
class OneEuroParams:
    """``min_cutoff`` (Hz) at rest; ``beta`` (Hz per unit of speed) how fast the cutoff rises with
    speed; ``d_cutoff`` (Hz) of the low-pass on the speed itself."""

    min_cutoff: float
    beta: float
    d_cutoff: float = _D_CUTOFF

    @classmethod
    def from_strength(cls, strength: float) -> OneEuroParams | None:
        """The filter for a smoothing strength in [0, 1]; None for 0 (no smoothing)."""
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"smoothing strength must be between 0 and 1, got {strength}")
        if strength == 0.0:
            return None
        cutoff = 10 ** (log10(_CUTOFF_WEAK) + strength * (log10(_CUTOFF_STRONG) - log10(_CUTOFF_WEAK)))
        return cls(min_cutoff=cutoff, beta=_BETA)


def _alpha(cutoff: float, dt: float) -> float:
    tau = 1.0 / (2 * pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One Euro filter over a vector, with one adaptive cutoff for all its elements.

    ``filter(x, t, speed)`` takes the sample ``x`` (any shape) at time ``t`` (seconds) and the
    caller's measure of how fast the signal moves (``speed``, units per second, >= 0), and returns
    the filtered value (float64). The first sample, and the first after :meth:`reset`, pass through.
    A sample at the previous one's ``t`` returns the current estimate unchanged. A sample earlier
    than the previous one means the clock went back (or the previous ``t`` was wild, e.g. a page's
    stamp far in the future): the filter starts again from it, so one bad time cannot hold it for good.
    A ``t`` that is not finite is a ``ValueError``.
    """

    def __init__(self, params: OneEuroParams):
        self.params = params
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None
        self._speed = 0.0
        self._t = 0.0

    @property
    def value(self) -> np.ndarray | None:
        """The current estimate, None before the first sample."""
        return self._x

    @property
    def time(self) -> float | None:
        """When the current estimate was made (seconds), None before the first sample."""
        return None if self._x is None else self._t

    def filter(self, x: np.ndarray, t: float, speed: float) -> np.ndarray:
        if not isfinite(t):
            raise ValueError(f"sample time must be finite, got {t}")
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or t < self._t:
            self._x, self._speed, self._t = x.copy(), float(speed), t
            return self._x
        dt = t - self._t
        if dt == 0:
            return self._x
        p = self.params
        self._speed += _alpha(p.d_cutoff, dt) * (float(speed) - self._speed)
        a = _alpha(p.min_cutoff + p.beta * abs(self._speed), dt)
        self._x = self._x + a * (x - self._x)
        self._t = t
        return self._x


def image_params(params: np.ndarray, roi_box) -> np.ndarray:
    """(62,) crop-relative parameters -> (62,) float64 with the camera mapping model units to image pixels.

    The inverse of :func:`crop_params`; identity and expression are copied unchanged.
    """
    out = np.asarray(params, dtype=np.float64).reshape(-1).copy()
    cam = out[:12].reshape(3, 4)
    ax, ay, az, x0, y0 = _roi_scales(roi_box)
    # similar_transform: x = (xc - 1) ax + x0;  y = (S - yc) ay + y0;  z = (zc - 1) az (+ a shift).
    cam[0] *= ax
    cam[0, 3] += x0 - ax
    cam[1] *= -ay
    cam[1, 3] += y0 + CROP_SIZE * ay
    cam[2] *= az
    cam[2, 3] -= az
    return out


def crop_params(params: np.ndarray, roi_box) -> np.ndarray:
    """(62,) image-pixel camera (from :func:`image_params`) -> (62,) float32 relative to ``roi_box``."""
    out = np.asarray(params, dtype=np.float64).reshape(-1).copy()
    cam = out[:12].reshape(3, 4)
    ax, ay, az, x0, y0 = _roi_scales(roi_box)
    cam[0, 3] -= x0 - ax
    cam[0] /= ax
    cam[1, 3] -= y0 + CROP_SIZE * ay
    cam[1] /= -ay
    cam[2, 3] += az
    cam[2] /= az
    return out.astype(np.float32)


def _roi_scales(roi_box) -> tuple[float, float, float, float, float]:
    sx, sy, ex, ey = (float(v) for v in roi_box[:4])
    ax, ay = (ex - sx) / CROP_SIZE, (ey - sy) / CROP_SIZE
    if ax <= 0 or ay <= 0:
        raise ValueError(f"roi box {list(roi_box)} has no area")
    return ax, ay, (ax + ay) / 2, sx, sy


class FaceSmoother:
    """Smooths one track's faces over time; make one per track and drop it when the track ends.

    ``smoother(face, t)`` returns a :class:`Face` with the same ``box`` and ``roi_box`` and smoothed
    ``params``, ``pose`` and ``landmarks``; ``t`` is the frame's capture time in seconds.
    ``strength`` (0 = pass through ... 1 = strongest) can change between frames without a reset.
    """

    def __init__(self, model: MorphableModel, strength: float = 0.5):
        self.model = model
        self._filter: OneEuroFilter | None = None
        self._previous: np.ndarray | None = None
        self.strength = strength

    @property
    def strength(self) -> float:
        return self._strength

    @strength.setter
    def strength(self, value: float) -> None:
        params = OneEuroParams.from_strength(value)
        self._strength = float(value)
        if params is None:
            self.reset()
            self._filter = None
        elif self._filter is None:
            self._filter = OneEuroFilter(params)
        else:
            self._filter.params = params

    def reset(self) -> None:
        self._previous = None
        if self._filter is not None:
            self._filter.reset()

    def __call__(self, face: Face, t: float) -> Face:
        if self._filter is None:
            return face
        raw = face.landmarks[:, :2].astype(np.float64)
        last = self._filter.time
        if self._previous is None or last is None or t <= last:
            speed = 0.0
        else:
            dt = t - last
            size = float(face.roi_box[2] - face.roi_box[0])
            speed = float(np.sqrt(np.mean(np.sum((raw - self._previous) ** 2, axis=1)))) / (size * dt)
        smoothed = crop_params(self._filter.filter(image_params(face.params, face.roi_box), t, speed), face.roi_box)
        landmarks = self.model.landmarks_3d(smoothed, face.roi_box)
        self._previous = landmarks[:, :2].astype(np.float64)
        return replace(face, params=smoothed, pose=pose_from_params(smoothed), landmarks=landmarks)


class TrackSmoothers:
    """A :class:`FaceSmoother` per track: ``smoothers(faces, t, strength)`` smooths each
    ``(track_id, Face)`` of one frame (captured at ``t`` seconds) with its track's smoother, starting
    one for a new track and dropping those of tracks that are not in ``faces``."""

    def __init__(self, model: MorphableModel):
        self.model = model
        self._by_track: dict[int, FaceSmoother] = {}

    def reset(self) -> None:
        """Forget every track."""
        self._by_track = {}

    def __call__(self, faces: Sequence[tuple[int, Face]], t: float, strength: float) -> list[tuple[int, Face]]:
        live = {track_id for track_id, _ in faces}
        self._by_track = {k: v for k, v in self._by_track.items() if k in live}
        out = []
        for track_id, face in faces:
            smoother = self._by_track.get(track_id)
            if smoother is None:
                smoother = self._by_track[track_id] = FaceSmoother(self.model, strength)
            elif smoother.strength != strength:
                smoother.strength = strength
            out.append((track_id, smoother(face, t)))
        return out
