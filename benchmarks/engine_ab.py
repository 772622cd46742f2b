"""A/B of the engine's stages: a previous checkout (``--baseline DIR``) against this one, interleaved.

Each side is a worker process that imports face3d_nb (and this module) from its own source tree
(``PYTHONPATH``, ahead of the installed package), loads the same models and reads the same video.
The driver asks them in turn for one stage over the same frames (the side that goes first
alternates by round), so load on this shared machine falls on both alike; each answers with the
wall milliseconds of each call.

Stages: the detector at 640x480; regress per face (``Reconstructor.faces`` on one face: crop,
network, de-normalisation, pose and 68 landmarks) and the network alone on the same crops (their
difference is the work around the network); one tracking step (``Tracker.step`` with the engine's
settings, re-detections, searches and the shot-cut test included where the side has them) on the
video as the engine sees it (1280x720 shrunk to its ``max_input_size``, 640x360) and at 1280x720.
The tracker runs through the video forwards then backwards (no cut), keeping its state across rounds.
Each call gets a fresh copy of its frame, made before the clock starts (see :func:`_timed`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from common import video_frames

from face3d_nb.core.frames import shrink_to
from face3d_nb.core.pipeline import Reconstructor
from face3d_nb.core.regressor import crop, roi_box_from_bbox
from face3d_nb.core.tracking import Tracker
from face3d_nb.live.config import EngineConfig
from face3d_nb.models.store import ModelStore

STAGES = ("detect 640x480", "regress per face", "network per face", "tracking step 640x360", "tracking step 1280x720")
# Frames of each stage per round (tracking: consecutive steps; the others: calls).
PER_ROUND = {"detect 640x480": 20, "regress per face": 55, "network per face": 55, "tracking step 640x360": 108,
             "tracking step 1280x720": 108}


class _Side:
    """One worker's models, frames and trackers."""

    def __init__(self, paths, threads: int) -> None:
        self.rec = rec = Reconstructor(paths, threads=threads)
        video = video_frames()
        loop = video + video[-2:0:-1]
        self.small = [cv2.resize(f, (640, 480)) for f in video[:20]]
        self.frames = {"tracking step 640x360": [shrink_to(f, EngineConfig().max_input_size)[0] for f in loop],
                       "tracking step 1280x720": loop}
        self.faces = [(image, box, roi_box_from_bbox(box)) for image in (cv2.resize(f, (640, 480)) for f in video)
                      for box in rec.detector(image)[:1]]
        self.crops = [_crop_batch(image, roi) for image, _, roi in self.faces]
        self.trackers = {name: _tracker(rec, EngineConfig()) for name in self.frames}
        self.cursor = dict.fromkeys(self.frames, 0)

    def run(self, stage: str) -> list[float]:
        rec, n = self.rec, PER_ROUND[stage]
        if stage == "detect 640x480":
            return [_timed(rec.detector, image.copy()) for image in self.small[:n]]
        if stage == "regress per face":
            return [_timed(rec.faces, image.copy(), box[None], [roi]) for image, box, roi in self.faces[:n]]
        if stage == "network per face":
            session = rec.regressor.session
            return [_timed(session.run, None, {"input": batch}) for batch in self.crops[:n]]
        frames, tracker = self.frames[stage], self.trackers[stage]
        times = []
        for _ in range(n):
            times.append(_timed(tracker.step, frames[self.cursor[stage] % len(frames)].copy()))
            self.cursor[stage] += 1
        return times


def _crop_batch(image: np.ndarray, roi) -> np.ndarray:
    """The regressor's input for one face, as both sides crop it (upstream's crop and resize)."""
    return cv2.resize(crop(image, roi), (120, 120), interpolation=cv2.INTER_LINEAR)[None]


def _tracker(rec, config):
    tracker = Tracker(rec)
    if hasattr(tracker, "configure"):
        tracker.configure(config)
    return tracker


def _timed(fn, *args) -> float:
    # Callers pass a fresh copy of the frame (made before the clock starts), as the engine's decode
    # and shrink leave one in the cache: a frame read back from memory would cost the crop and the
    # shot-cut test several times what they cost in the engine.
    start = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - start) * 1000


def worker(home: str, arch: str, threads: int) -> None:
    """Serve stage requests on stdin (one stage name a line) with JSON lists of milliseconds on stdout."""
    side = _Side(ModelStore(home).resolve(arch), threads)
    for stage in side.frames:
        side.run(stage)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        print(json.dumps(side.run(line.strip())), flush=True)


class Worker:
    """A worker process running on the source tree ``root``."""

    def __init__(self, root: Path, home: Path, arch: str, threads: int):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(Path(__file__).parent)])}
        argv = [sys.executable, "-c", f"import engine_ab; engine_ab.worker({str(home)!r}, {arch!r}, {threads})"]
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                                        cwd=root)
        if not json.loads(self.process.stdout.readline() or "{}").get("ready"):
            raise SystemExit(f"the worker on {root} did not start")

    def run(self, stage: str) -> list[float]:
        self.process.stdin.write(stage + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


def compare(baseline: Path, home: Path, arch: str, threads: int, rounds: int) -> dict[str, dict[str, list[float]]]:
    """Milliseconds per call of each stage on each side (``"before"``: ``baseline``, ``"now"``: this tree)."""
    here = Path(__file__).resolve().parent.parent
    sides = {"before": Worker(baseline, home, arch, threads), "now": Worker(here, home, arch, threads)}
    times = {name: {stage: [] for stage in STAGES} for name in sides}
    try:
        for r in range(rounds):
            for stage in STAGES:
                for name in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
                    times[name][stage] += sides[name].run(stage)
    finally:
        for side in sides.values():
            side.close()
    return times


def report(times: dict[str, dict[str, list[float]]], baseline: Path) -> list[str]:
    """Lines: per stage p50 and p90 of each side and before/now; then the work around the network and
    the tracking step's mean (re-detections amortised), with the targets of issue 14."""
    stat = {side: {stage: (float(np.median(v)), float(np.percentile(v, 90)), float(np.mean(v)))
                   for stage, v in stages.items()} for side, stages in times.items()}
    before, now = stat["before"], stat["now"]
    lines = [f"A/B, interleaved: before = {baseline}, now = this tree (ms per call)",
             f"  {'stage':<26}{'before p50':>11}{'p90':>8}{'now p50':>9}{'p90':>8}{'speed-up':>10}"]
    for stage in STAGES:
        lines.append(f"  {stage:<26}{before[stage][0]:11.3f}{before[stage][1]:8.3f}{now[stage][0]:9.3f}"
                     f"{now[stage][1]:8.3f}{before[stage][0] / now[stage][0]:9.2f}x")
    for side in ("before", "now"):
        around = stat[side]["regress per face"][0] - stat[side]["network per face"][0]
        lines.append(f"  around the network, {side}: {around:.3f} ms per face (regress - network, p50)")
    for stage in ("tracking step 640x360", "tracking step 1280x720"):
        lines.append(f"  {stage}, mean (re-detections amortised): before {before[stage][2]:.3f} ms, "
                     f"now {now[stage][2]:.3f} ms")
    regress, step = now["regress per face"][0], now["tracking step 640x360"][0]
    speed = before["regress per face"][0] / regress
    lines.append(f"  targets: regress per face <= 0.9 ms: {regress:.3f} ({_ok(regress <= 0.9)}), >= 1.6x before: "
                 f"{speed:.2f}x ({_ok(speed >= 1.6)}); tracking step of the 1280x720 video (engine input 640x360) "
                 f"<= 1.0 ms p50: {step:.3f} ({_ok(step <= 1.0)})")
    return lines


def _ok(met: bool) -> str:
    return "met" if met else "NOT met"
