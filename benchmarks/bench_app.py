"""The live app in Voila with a fake camera, against a baseline camera loop built on ipywebrtc's ImageRecorder.

    python benchmarks/bench_app.py [--seconds 30] [--warmup 8] [--detail LEVEL] [--baseline DIR]
    python benchmarks/bench_app.py --views [--seconds 15] [--warmup 5] [--detail medium]

Both cases run in this one invocation, one after the other, each in its own Voila server (echo off)
and headless Chromium (Debian's, software WebGL) whose fake camera plays the test video:

- ``app``: ``face3d-nb app`` serving notebooks/face3d_app.ipynb (our frame grabber, JPEG over
  binary messages with acknowledgement pacing).
- ``ImageRecorder``: a notebook with the same engine and the same 3D view, but frames taken with
  ipywebrtc's ``ImageRecorder``, one snapshot per kernel request, the next one requested as soon as
  the previous one arrives.

Printed per case, over ``--seconds`` after ``--warmup`` seconds of streaming: camera frames/s into
the kernel, processed frames/s, mesh updates applied in the page per second (the page's
acknowledgements), capture-to-mesh-applied latency p50/p95 (capture on the page's clock, or the
snapshot request for ImageRecorder, which gives no capture time; applied when the page's
acknowledgement reaches the kernel, same machine clock; over the last 300 updates), and the
kernel's RSS at start and end. Then the app/baseline ratio of mesh updates/s.

Targets (issue 4) on the 2-core machine: >= 10 mesh updates/s, p50 < 150 ms, >= 1.5x the baseline,
kernel memory flat.

``--baseline DIR`` (a checkout of the previous main, e.g. a git worktree) compares the app with the
app of that source tree instead of with ImageRecorder: the same measurement on each, the baseline's
Voila and kernel importing face3d_nb from ``DIR``, this tree's case first; then before/now of mesh
updates/s and of capture-to-applied p50 (issue 14: at least as good as before).

``--views`` runs the app once per view of the 3D viewer (issue 15) and mesh transport, each with a
settings file (the view, over the frame or not, the transport, ``--detail``, default medium), and
prints per case mesh updates/s, capture-to-applied p50 and the bytes of one mesh update (the
positions array, or the uniforms as JSON without the shared basis, plus the frame when the kernel
sends it). Two more cases measure the other way to get the frame to the page: the kernel sends
each processed frame as a JPEG instead of the page keeping its camera frames. Target: every view
>= 10 mesh updates/s.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from common import VIDEO, model_home

from face3d_nb.apps.serve import voila_argv
from face3d_nb.testing.browser import (
    APP_RUNNING,
    KernelProbe,
    Server,
    chromium_missing,
    launch_chromium,
    probe_for,
    wait_until,
    write_y4m,
)

log = logging.getLogger("bench_app")

BASELINE = """\
import time
import ipywidgets as widgets
from ipywebrtc import CameraStream, ImageRecorder
from face3d_nb.widgets.camera import camera_constraints
from face3d_nb.live.config import EngineConfig
from face3d_nb.live.engine import Engine
from face3d_nb.live.events import FrameResult
from face3d_nb.core.pipeline import Reconstructor
from face3d_nb.widgets.viewer import FaceViewer

reconstructor = Reconstructor()
viewer = FaceViewer(reconstructor.levels)
engine = Engine(EngineConfig(detail=DETAIL), reconstructor=reconstructor, clock=time.time)
engine.subscribe(lambda event: viewer.show(event) if isinstance(event, FrameResult) else None)
engine.start()
camera = CameraStream(constraints=camera_constraints())
recorder = ImageRecorder(stream=camera, format="jpeg")
received, requested_at = 0, 0.0

def request():
    global requested_at
    requested_at = time.time()
    recorder.recording = True

def on_image(change):
    global received
    received += 1
    engine.submit(bytes(change["new"]), captured_at=requested_at)

def on_recording(change):
    # The page sets `recording` back to False once the snapshot is taken: ask for the next one.
    if not change["new"]:
        request()

recorder.image.observe(on_image, "value")
recorder.observe(on_recording, "recording")
widgets.HBox([viewer.renderer, recorder])
"""

# Kernel-side figures of each case, as JSON (NaN latencies included): frames received from the
# page, frames processed, the view's mesh stats, the kernel's resident memory.
FIGURES = """__import__('json').dumps({{'received': {received}, 'processed': {engine}.stats().processed,
    'mesh': __import__('dataclasses').asdict({viewer}.stats()),
    'rss': __import__('psutil').Process().memory_info().rss}})"""
NAMES = {
    "app": {"received": "app.grabber.received", "engine": "app.engine", "viewer": "app.viewer"},
    "ImageRecorder": {"received": "received", "engine": "engine", "viewer": "viewer"},
}
NAMES["app before"] = NAMES["app"]

# Runs in the app's kernel in a --views case: the bytes of one mesh update, and of the frames the
# kernel sends (when the page is made to lack its own).
UPDATE_BYTES = """
import json
frame_bytes = [0, 0]
def _counted(send, name, jpeg):
    frame_bytes[0] += len(jpeg)
    frame_bytes[1] += 1
    send(name, jpeg)
app.viewer.link.send_frame = __import__('functools').partial(_counted, app.viewer.link.send_frame)
def update_bytes():
    mesh = app.viewer._pool.meshes[0]
    if app.viewer.active_transport == "positions":
        size = mesh.last.nbytes
    else:
        size = len(json.dumps({k: v for k, v in mesh.material.get_state()["uniforms"].items() if k != "basis"}))
    return size + (frame_bytes[0] / frame_bytes[1] if frame_bytes[1] else 0)
"""
KERNEL_FRAMES = "app.grabber.frame_name = lambda seq: ''"
# (name, view, over the frame, the kernel sends the frames) of each --views case.
LOOKS = [("3D shaded", "shaded", False, False), ("overlay", "shaded", True, False),
         ("texture 3D", "texture", False, False), ("texture over", "texture", True, False),
         ("depth over", "depth", True, False), ("PNCC over", "pncc", True, False),
         ("points over", "points", True, False), ("texture, kernel frames", "texture", True, True)]


class BaselineServer(Server):
    """Plain Voila on the baseline notebook, with the settings `face3d-nb app` uses."""

    def __init__(self, notebook: Path, *args, **kwargs):
        super().__init__("voila", *args, **kwargs)
        self.notebook = notebook
        self.env["JUPYTER_WIDGETS_ECHO"] = "0"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "voila", *voila_argv(self.notebook, self.port, "127.0.0.1")]


def snapshot(probe: KernelProbe, case: str) -> dict:
    return {"t": time.monotonic(), **json.loads(probe.eval(FIGURES.format(**NAMES[case])))}


def run_case(case: str, server: Server, playwright, camera: Path, seconds: float, warmup: float,
             setup: str = "") -> dict:
    browser = launch_chromium(playwright, camera)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{server.url}/", timeout=240_000)
        probe = probe_for(server)
        try:
            if case == "ImageRecorder":
                # The first snapshot is requested once the page (and its recorder) is there.
                page.wait_for_selector(".jupyter-widgets", timeout=240_000)
                wait_until(lambda: probe.eval("recorder.comm is not None"), 60)
                time.sleep(2)
                probe.run("request()")
            if setup:
                wait_until(lambda: probe.eval(APP_RUNNING), 240, 0.5, "the app")
                probe.run(setup)
            rss_start = snapshot(probe, case)["rss"]
            wait_until(lambda: snapshot(probe, case)["mesh"]["applied"] > 0, 240, 1.0, f"{case}: first mesh update")
            time.sleep(warmup)
            start = snapshot(probe, case)
            time.sleep(seconds)
            end = snapshot(probe, case)
            detail = probe.eval(f"{NAMES[case]['engine']}.config.detail")
            update_bytes = probe.eval("update_bytes()") if setup else None
        finally:
            probe.close()
    finally:
        browser.close()
    span = end["t"] - start["t"]
    return {
        "camera_fps": (end["received"] - start["received"]) / span,
        "processed_fps": (end["processed"] - start["processed"]) / span,
        "mesh_fps": (end["mesh"]["applied"] - start["mesh"]["applied"]) / span,
        "latency_p50_ms": end["mesh"]["latency_p50"],
        "latency_p95_ms": end["mesh"]["latency_p95"],
        "rss_start_mb": rss_start / 2**20,
        "rss_end_mb": end["rss"] / 2**20,
        "detail": detail,
        "update_bytes": update_bytes,
    }


def run_views(args, playwright, home: Path, work: Path, camera: Path) -> None:
    """One app run per view and transport (``--views``), and its table."""
    results = {}
    for transport in ("positions", "coefficients"):
        for name, view, over, kernel_frames in LOOKS:
            case = f"{name} / {transport}"
            folder = work / case.replace(" ", "_").replace("/", "").replace(",", "")
            folder.mkdir()
            config = folder / "settings.yaml"
            config.write_text(f"detail: {args.detail or 'medium'}\ntransport: {transport}\nview: {view}\n"
                              f"over_frame: {str(over).lower()}\n")
            setup = UPDATE_BYTES + (KERNEL_FRAMES if kernel_frames else "")
            with Server("voila", folder, home, config=config) as server:
                log.info("%s: streaming %.0f s (+%.0f s warm-up)…", case, args.seconds, args.warmup)
                results[case] = run_case("app", server, playwright, camera, args.seconds, args.warmup, setup)
    print(f"\nviews of the live app in Voila, fake camera ({VIDEO.name}), {args.seconds:.0f} s each, Chromium "
          f"software WebGL, {os.cpu_count()} cores")
    print(f"{'':36}{'detail':>8}{'processed':>11}{'mesh upd/s':>11}{'p50 ms':>8}{'bytes/update':>14}")
    for case, r in results.items():
        print(f"{case:36}{r['detail']:>8}{r['processed_fps']:11.1f}{r['mesh_fps']:11.1f}{r['latency_p50_ms']:8.0f}"
              f"{r['update_bytes']:14,.0f}")
    slow = [case for case, r in results.items() if r["mesh_fps"] < 10]
    print("target >= 10 mesh updates/s in every view: " + ("met" if not slow else f"NOT met by {', '.join(slow)}"))
    if args.json:
        print(json.dumps(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measuring window per case")
    parser.add_argument("--warmup", type=float, default=8.0, help="streaming before the window opens")
    parser.add_argument("--detail", help="mesh detail of the baseline (default: the one the app ran with)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    parser.add_argument("--baseline", type=Path, help="source tree of the previous main: compare its app with this one")
    parser.add_argument("--views", action="store_true", help="measure the app in each view of the 3D viewer")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if (missing := chromium_missing()) is not None:
        raise SystemExit(f"cannot run: {missing}")
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    home = model_home()
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="face3d_bench_app_"))
    camera = write_y4m(VIDEO, work / "camera.y4m")
    if args.views:
        with sync_playwright() as playwright:
            run_views(args, playwright, home, work, camera)
        return
    notebook = work / "baseline" / "baseline.ipynb"
    notebook.parent.mkdir()
    results = {}
    cases = ("app", "app before") if args.baseline else ("app", "ImageRecorder")
    with sync_playwright() as playwright:
        for case in cases:
            (work / case).mkdir(exist_ok=True)
            if case.startswith("app"):
                server = Server("voila", work / case, home)
                if case == "app before":
                    server.env["PYTHONPATH"] = str(args.baseline.resolve())
            else:
                # Same mesh detail as the app, so the two differ only in how frames reach the kernel.
                detail = args.detail or results["app"]["detail"]
                cell = nbformat.v4.new_code_cell(BASELINE.replace("DETAIL", repr(detail)))
                nbformat.write(nbformat.v4.new_notebook(cells=[cell], metadata={"kernelspec": {
                    "name": "python3", "language": "python", "display_name": "Python 3"}}), notebook)
                server = BaselineServer(notebook, work / case, home)
            with server:
                log.info("%s: streaming %.0f s (+%.0f s warm-up)…", case, args.seconds, args.warmup)
                results[case] = run_case(case, server, playwright, camera, args.seconds, args.warmup)

    print(f"\nlive app in Voila, fake camera ({VIDEO.name}), {args.seconds:.0f} s per case, Chromium software WebGL; "
          f"1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after (on {os.cpu_count()} cores)")
    print(f"{'':16}{'detail':>8}{'camera fps':>11}{'processed':>11}{'mesh upd/s':>11}{'p50 ms':>8}{'p95 ms':>8}"
          f"{'RSS start MB':>14}{'RSS end MB':>12}")
    for case, r in results.items():
        print(f"{case:16}{r['detail']:>8}{r['camera_fps']:11.1f}{r['processed_fps']:11.1f}{r['mesh_fps']:11.1f}"
              f"{r['latency_p50_ms']:8.0f}{r['latency_p95_ms']:8.0f}{r['rss_start_mb']:14.0f}{r['rss_end_mb']:12.0f}")
    if args.baseline:
        now, before = results["app"], results["app before"]
        print(f"\napp now vs before ({args.baseline}): mesh updates/s {now['mesh_fps']:.1f} vs {before['mesh_fps']:.1f} "
              f"({'as good or better' if now['mesh_fps'] >= before['mesh_fps'] else 'WORSE'}), capture-to-applied p50 "
              f"{now['latency_p50_ms']:.0f} vs {before['latency_p50_ms']:.0f} ms "
              f"({'as good or better' if now['latency_p50_ms'] <= before['latency_p50_ms'] else 'WORSE'})")
        if args.json:
            print(json.dumps(results))
        return
    app, base = results["app"], results["ImageRecorder"]
    ratio = app["mesh_fps"] / base["mesh_fps"] if base["mesh_fps"] > 0 else float("inf")
    print(f"\nmesh updates/s, app vs ImageRecorder: {ratio:.2f}x")
    checks = [
        (">= 10 mesh updates/s", app["mesh_fps"] >= 10),
        ("p50 < 150 ms", app["latency_p50_ms"] < 150),
        (">= 1.5x ImageRecorder", ratio >= 1.5),
        ("kernel RSS flat (< +50 MB)", app["rss_end_mb"] - app["rss_start_mb"] < 50),
    ]
    print("targets: " + "; ".join(f"{name}: {'met' if ok else 'NOT met'}" for name, ok in checks))
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
