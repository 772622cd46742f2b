"""What each mesh detail level costs: bytes per mesh update, decode time and the viewer's time per update.

    python benchmarks/bench_detail.py [--arch mb05] [--repeat 3]

Faces: every frame of the test video, detected and regressed once. Per level (full, medium, low):

- vertices and triangles (triangles drawn by the page);
- decode: the level's mesh from the 62 params, as the engine does it (median ms per face), with the
  installed model and with a synthetic full-size identity/expression basis, so the figure holds
  when ``bfm_noneck_v3.pkl`` is installed (the shared assets have the mean shape only);
- viewer: ``FaceViewer.show`` with the ``positions`` transport (framing, handing the arrays to
  the widgets; median ms per update);
- bytes per update: every byte the viewer's widgets hand to the kernel's comm for one mesh update
  (binary buffers plus JSON), captured at ``ipywidgets.Widget._send``; no page is involved. (The
  ``coefficients`` transport sends a few hundred bytes whatever the level; see bench_transport.py.)

Lower levels must cost less everywhere; the last lines say whether they do.
"""

from __future__ import annotations

import argparse
import json
import time

import cv2
import numpy as np
from common import model_paths, video_frames
from ipywidgets import Widget

from face3d_nb.core.detail import LEVELS, DetailLevels
from face3d_nb.core.morphable import N_EXPR, N_SHAPE, MorphableModel
from face3d_nb.core.pipeline import Reconstructor
from face3d_nb.live.events import FrameResult, TrackedFace
from face3d_nb.widgets.viewer import FaceViewer


class SentBytes:
    """Counts what widgets send to the front end (buffers + JSON) while installed."""

    def __init__(self):
        self.total = 0
        self._original = Widget._send

    def __enter__(self) -> SentBytes:
        original = self._original

        def counting(widget, msg, buffers=None):
            self.total += len(json.dumps(msg, default=str)) + sum(memoryview(b).nbytes for b in buffers or ())
            return original(widget, msg, buffers)

        Widget._send = counting
        return self

    def __exit__(self, *exc_info) -> None:
        Widget._send = self._original


def timed_ms(fn, items) -> list[float]:
    times = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=("mb1", "mb05"))
    parser.add_argument("--repeat", type=int, default=3, help="passes over the video's faces")
    args = parser.parse_args()
    rec = Reconstructor(model_paths(args.arch), threads=1)
    frames = [cv2.resize(f, (640, 360), interpolation=cv2.INTER_AREA) for f in video_frames()]
    faces = [faces[0] for faces in map(rec, frames) if faces]
    model = rec.model
    synthetic = MorphableModel(
        model.mean, np.random.default_rng(0).standard_normal((N_SHAPE + N_EXPR, 3 * model.n_vertices), np.float32),
        model.triangles, model.landmarks,
    )
    synthetic_levels = DetailLevels(synthetic)
    viewers, results, times = {}, {}, {}
    for name in LEVELS:
        detail = rec.levels.detail(name)
        results[name] = [FrameResult(seq=i, captured_at=float(i), frame_shape=(360, 640),
                                     faces=(TrackedFace(1, f, rec.vertices(f, name)),), timings={}, detected=False,
                                     frame=None, detail=name)
                         for i, f in enumerate(faces)]
        # No page here: with ack_timeout 0 every update is sent at once instead of waiting for an acknowledgement.
        viewers[name] = FaceViewer(rec.levels, ack_timeout=0.0, transport="positions")
        viewers[name].show(results[name][0])
        times[name] = {"decode": [], "basis": [], "viewer": [], "bytes": []}
    # Levels take turns within each pass, so load from elsewhere on the machine hits them alike.
    for _ in range(args.repeat):
        for name in LEVELS:
            small = synthetic_levels.model(name)
            times[name]["decode"] += timed_ms(lambda f, n=name: rec.vertices(f, n), faces)
            times[name]["basis"] += timed_ms(lambda f, m=small: m.vertices(f.params, f.roi_box), faces)
            with SentBytes() as sent:
                times[name]["viewer"] += timed_ms(viewers[name].show, results[name])
            times[name]["bytes"].append(sent.total / len(faces))
    rows = {}
    for name, viewer in viewers.items():
        viewer.close()
        detail = rec.levels.detail(name)
        rows[name] = (len(detail.vertices), len(detail.triangles), *(float(np.median(times[name][k]))
                                                                     for k in ("bytes", "decode", "basis", "viewer")))

    kind = "full BFM" if model.full else "mean-shape model"
    print(f"face3d_nb mesh detail benchmark: {len(faces)} faces from obama.mp4 x {args.repeat}, regressor "
          f"{rec.paths.arch}, {kind}")
    print(f"{'level':<8}{'vertices':>10}{'triangles':>11}{'bytes/update':>14}{'decode ms':>11}"
          f"{'decode ms (full basis)':>24}{'viewer ms':>11}")
    for name, (nv, nt, size, decode, decode_basis, show) in rows.items():
        print(f"{name:<8}{nv:>10}{nt:>11}{size:>14,.0f}{decode:>11.3f}{decode_basis:>24.3f}{show:>11.2f}")
    full = rows["full"]
    for name in ("medium", "low"):
        ratios = [rows[name][k] / full[k] for k in range(6)]
        print(f"{name} / full: vertices {ratios[0]:.3f}, triangles {ratios[1]:.3f}, bytes {ratios[2]:.3f}, "
              f"decode {ratios[3]:.2f}, decode (full basis) {ratios[4]:.2f}, viewer {ratios[5]:.2f}")
    order = list(LEVELS)
    falls = {label: all(rows[a][k] > rows[b][k] for a, b in zip(order, order[1:]))
             for k, label in enumerate(("vertices", "triangles", "bytes/update", "decode", "decode (full basis)",
                                        "viewer"))}
    print("falls with the level: " + ", ".join(f"{label} {'yes' if ok else 'NO'}" for label, ok in falls.items()))


if __name__ == "__main__":
    main()
