"""Mesh transports compared in a real page: positions (decoded in the kernel) vs coefficients (decoded by the page's GPU).

    python benchmarks/bench_transport.py [--seconds 10] [--slow-seconds 15] [--rate 30] [--detail full] [--no-basis]
    python benchmarks/bench_transport.py --load [--baseline DIR] [--rounds 2]

Voila serves a small notebook: a FaceViewer of the Basel Face Model when installed, else of the real
mean shape with a synthetic basis of the real size (face3d_nb/testing/basis.py), fed on a kernel thread
with the reference parameters of obama.mp4 (55 real frames, played forwards and backwards) at
``--rate`` frames/s, decoding each frame on the CPU as the engine would when the viewer sends
positions. Headless Chromium (software WebGL) shows it. Each transport, forced through the page's
URL, gets its own page in the same run, then the same page with a slow link: Chromium's network
emulation (``Network.emulateNetworkConditions`` over CDP) at 40 ms latency and 1 Mbit/s each way,
which throttles the page's websocket. Last, an "auto" page shows the automatic choice before and
after the link slows down.

Figures per transport: bytes per update (everything the kernel sent to the page, per update
applied), updates applied per second, latency p50/p95 from the frame being handed to the viewer to
the page's acknowledgement, and from the update being sent to that acknowledgement, kernel CPU per
update (the whole kernel process, CPU decode included), one-time load (bytes the kernel sent until
the first update was applied, and bytes the page received over its websockets until then: what
crosses the link) and page-ready time (navigation to the first applied update).

Target (issue 6): on the slow link, coefficients >= 10 updates/s where positions fall below 2.

``--load`` measures the coefficient page's one-time load only, A/B in one run, pages interleaved over
``--rounds``: "before" (the kernel imports face3d_nb from ``--baseline DIR``, a checkout of the previous
code, e.g. ``git worktree add /tmp/face3d_before <commit>``), "half" (this code, basis in half floats as
for a page drawing on the CPU: the send-once fix alone) and "u12" (this code, 12-bit basis as for a
page with a GPU). Targets (issue 14): one copy of the model, and less.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

from common import ASSETS, model_paths

from face3d_nb.testing.browser import (
    NotebookServer,
    chromium_missing,
    launch_chromium,
    probe_for,
    wait_until,
    write_notebook,
)

REFERENCE = ASSETS / "reference" / "obama.npz"
# Counts the page's WebGL draw calls: one per face mesh per frame drawn.
COUNT_DRAWS = """
window.face3dDraws = 0;
for (const Context of [WebGLRenderingContext, WebGL2RenderingContext]) {
  const drawElements = Context.prototype.drawElements;
  Context.prototype.drawElements = function (...args) {
    window.face3dDraws += 1;
    return drawElements.apply(this, args);
  };
}
"""
SLOW_LINK = {"offline": False, "latency": 40, "downloadThroughput": 125_000, "uploadThroughput": 125_000}
FAST_LINK = {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}

KERNEL = """
import json, os, sys, threading, time
from urllib.parse import parse_qs
query = parse_qs(os.environ.get("QUERY_STRING", ""))
if query.get("code") == ["baseline"]:
    sys.path.insert(0, {baseline!r})
import numpy as np
from IPython.display import display
from face3d_nb.core.morphable import MorphableModel, pose_from_params
from face3d_nb.core.detail import DetailLevels
from face3d_nb.live.events import FrameResult, TrackedFace
from face3d_nb.core.pipeline import Face
from face3d_nb.widgets.viewer import FaceViewer
from face3d_nb.testing.basis import with_synthetic_basis

# Every byte the kernel sends to the page on comms (widgets created, updated, custom messages).
import ipykernel.comm.comm
sent_bytes = 0
_publish = ipykernel.comm.comm.BaseComm.publish_msg
def _counting_publish(self, msg_type, data=None, metadata=None, buffers=None, **keys):
    global sent_bytes
    sent_bytes += len(json.dumps(data, default=str)) + sum(memoryview(b).nbytes for b in buffers or ())
    return _publish(self, msg_type, data, metadata, buffers, **keys)
ipykernel.comm.comm.BaseComm.publish_msg = _counting_publish

transport = query.get("transport", ["auto"])[0]
if query.get("encoding"):
    from face3d_nb.widgets.coefficient_transport import CoefficientTransport
    CoefficientTransport.encoding = query["encoding"][0]
if {bfm!r}:
    full = MorphableModel.from_bfm({bfm!r}, {tri!r})
else:
    full = MorphableModel.from_mean(*{mean_shape!r}, {indices!r}, {tri!r})
    full = with_synthetic_basis(full) if {basis!r} else full
levels = DetailLevels(full)
model = levels.model({detail!r})
reference = np.load({reference!r})
order = list(range(len(reference["params"]))) + list(range(len(reference["params"]) - 2, 0, -1))
viewer = FaceViewer(levels, transport=transport)

class Feeder(threading.Thread):
    def __init__(self, rate):
        super().__init__(daemon=True)
        self.rate, self.shown, self.ready_at, self.ready_bytes, self.stop = rate, 0, None, None, False

    def run(self):
        next_at = time.monotonic()
        while not self.stop:
            i = order[self.shown % len(order)]
            p, roi = reference["params"][i], reference["roi_boxes"][i]
            face = Face(box=np.array([*roi, 1.0], np.float32), roi_box=roi, params=p, pose=pose_from_params(p),
                        landmarks=model.landmarks_3d(p, roi))
            # The engine decodes on the CPU only for the position transport.
            vertices = model.vertices(p, roi) if viewer.active_transport == "positions" else None
            viewer.show(FrameResult(seq=self.shown, captured_at=time.time(), frame_shape=(720, 1280), detected=True,
                                    frame=None, timings={{}}, faces=(TrackedFace(1, face, vertices),),
                                    detail={detail!r}))
            self.shown += 1
            if self.ready_at is None and viewer.stats().applied and transport in ("auto", viewer.active_transport):
                self.ready_at, self.ready_bytes = time.time(), sent_bytes
            next_at += 1 / self.rate
            time.sleep(max(0.0, next_at - time.monotonic()))

def snapshot():
    stats = viewer.stats()
    return dict(time=time.monotonic(), cpu=time.process_time(), bytes=sent_bytes, applied=stats.applied,
                shown=feeder.shown, active=viewer.active_transport, latency=(stats.latency_p50, stats.latency_p95),
                flight=(stats.flight_p50, stats.flight_p95), lost=stats.lost)

feeder = Feeder({rate})
display(viewer.renderer)
feeder.start()
"""


def figures(before: dict, after: dict) -> dict:
    applied = max(after["applied"] - before["applied"], 1)
    seconds = after["time"] - before["time"]
    return {
        "draws/s": (after["draws"] - before["draws"]) / seconds,
        "bytes/update": (after["bytes"] - before["bytes"]) / applied,
        "updates/s": (after["applied"] - before["applied"]) / seconds,
        "latency ms p50/p95": after["latency"],
        "send-to-applied ms p50/p95": after["flight"],
        "kernel CPU ms/update": (after["cpu"] - before["cpu"]) / applied * 1000,
        "kernel CPU ms/frame": (after["cpu"] - before["cpu"]) / max(after["shown"] - before["shown"], 1) * 1000,
        "kernel CPU %": (after["cpu"] - before["cpu"]) / seconds * 100,
        "active": after["active"],
    }


def snapshot(probe, page) -> dict:
    return {**probe.eval("snapshot()"), "draws": page.evaluate("window.face3dDraws")}


class Received:
    """Bytes the page receives over its websockets, as Chromium reports them (CDP), with the time."""

    def __init__(self, cdp):
        self.frames: list[tuple[float, int]] = []
        self.offset = 0.0
        cdp.on("Network.webSocketWillSendHandshakeRequest", self._handshake)
        cdp.on("Network.webSocketFrameReceived", self._frame)

    def _handshake(self, event: dict) -> None:
        # Frames carry CDP's monotonic time; the handshake gives its wall-clock equivalent.
        self.offset = event["wallTime"] - event["timestamp"]

    def _frame(self, event: dict) -> None:
        data = event["response"]["payloadData"]  # text, or base64 of binary frames
        size = len(data.encode()) if event["response"]["opcode"] == 1 else len(data) * 3 // 4 - data[-2:].count("=")
        self.frames.append((event["timestamp"], size))

    def until(self, page, wall_time: float) -> int:
        """Bytes received up to ``wall_time`` (time.time()); ``page`` delivers the events pending."""
        page.evaluate("0")
        return sum(n for t, n in self.frames if t + self.offset <= wall_time)


def open_page(browser, server, query: str, what: str):
    """A page of ``query`` once its first update was applied: the page, its CDP session, a probe on
    its kernel and the load figures."""
    known = set(server.connection_files())
    page = browser.new_page(viewport={"width": 700, "height": 700})
    page.add_init_script(COUNT_DRAWS)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    received = Received(cdp)
    started = time.time()
    page.goto(f"{server.url}/?{query}", timeout=180_000)
    probe = probe_for(server, known)
    wait_until(lambda: probe.eval("feeder.ready_at"), 180, message=f"the first {what} update")
    ready_at, ready_bytes, module = probe.eval("(feeder.ready_at, feeder.ready_bytes, sys.modules['face3d_nb'].__file__)")
    load = {"page ready s": ready_at - started, "one-time load MB": ready_bytes / 1e6,
            "page received MB": received.until(page, ready_at) / 1e6, "code": str(Path(module).parent.parent)}
    return page, cdp, probe, load


def close_page(page, probe) -> None:
    probe.run("feeder.stop = True")
    probe.close()
    page.close()


class BenchServer(NotebookServer):
    """The app's Voila with room for every page of a run: its kernels outlive their pages here (Voila's
    shutdown request on unload is refused for want of an XSRF token)."""

    def command(self) -> list[str]:
        cap = "--CappedKernelManager.max_kernels="
        return [a for a in super().command() if not a.startswith(cap)] + [f"{cap}64"]


def run_page(browser, server, transport: str, args) -> dict:
    page, cdp, probe, out = open_page(browser, server, f"transport={transport}", transport)
    try:
        time.sleep(2.0)
        before = snapshot(probe, page)
        time.sleep(args.seconds)
        out["fast"] = figures(before, snapshot(probe, page))
        cdp.send("Network.emulateNetworkConditions", SLOW_LINK)
        # Let what was queued before the throttle drain, and "auto" measure and decide.
        time.sleep(args.settle)
        before = snapshot(probe, page)
        time.sleep(args.slow_seconds)
        out["slow"] = figures(before, snapshot(probe, page))
        cdp.send("Network.emulateNetworkConditions", FAST_LINK)
        out["message"] = probe.eval("viewer.transport_message")
        return out
    finally:
        close_page(page, probe)


def run_load(browser, server, args) -> None:
    """The coefficient page's one-time load, A/B (see the module docstring), interleaved."""
    variants = {"before": "transport=coefficients&code=baseline"} if args.baseline else {}
    variants |= {e: f"transport=coefficients&encoding={e}" for e in ("half", "u12")}
    results: dict[str, list[dict]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, query in variants.items():
            page, _cdp, probe, load = open_page(browser, server, query, name)
            close_page(page, probe)
            results[name].append(load)
    first = next(iter(variants))
    medians = {name: {key: statistics.median(r[key] for r in runs) for key in runs[0] if key != "code"}
               for name, runs in results.items()}
    print(f"\none-time load of the coefficient page, medians of {args.rounds} interleaved rounds "
          f"(ratios against {first}):")
    for name, m in medians.items():
        ratio = {key: medians[first][key] / m[key] for key in m}
        print(f"  {name:6s} ({results[name][0]['code']}): kernel sent {m['one-time load MB']:.2f} MB "
              f"(x{ratio['one-time load MB']:.2f} less), page received {m['page received MB']:.2f} MB "
              f"(x{ratio['page received MB']:.2f} less), page ready {m['page ready s']:.1f} s "
              f"(x{ratio['page ready s']:.2f} faster)")


def load_sizes(paths, detail: str, basis: bool) -> dict[str, float]:
    """What each transport's page loads once (MB): the view index plus the first positions, or the
    model for the GPU (basis texture, mean shape, vertex index) plus the index."""
    from face3d_nb.core.detail import DetailLevels  # noqa: PLC0415
    from face3d_nb.core.pipeline import load_morphable_model  # noqa: PLC0415
    from face3d_nb.testing.basis import with_synthetic_basis  # noqa: PLC0415
    from face3d_nb.view.gpu_packing import pack_basis  # noqa: PLC0415

    model = load_morphable_model(paths)
    model = with_synthetic_basis(model) if basis and model.basis is None else model
    level = DetailLevels(model).model(detail)
    index, positions = level.triangles.nbytes, level.mean.nbytes
    texture = {e: 0 if level.basis is None else pack_basis(level.basis, level.n_vertices, e).nbytes / 1e6
               for e in ("half", "u12")}
    return {"positions": (index + positions) / 1e6, "texture": texture["u12"],
            "coefficients": (index + positions + 4 * level.n_vertices) / 1e6 + texture["u12"],
            "encoding": f"12-bit, for GPU pages; {texture['half']:.2f} MB in half floats for pages drawing on the CPU"}


def show(name: str, result: dict) -> None:
    print(f"\n{name}: page ready {result['page ready s']:.1f} s (navigation to first update applied), kernel sent "
          f"{result['one-time load MB']:.2f} MB until then, page received {result['page received MB']:.2f} MB")
    for link in ("fast", "slow"):
        f = result[link]
        print(f"  {link} link ({f['active']}): {f['bytes/update']:,.0f} bytes/update, {f['updates/s']:.1f} updates/s, "
              f"latency p50/p95 {f['latency ms p50/p95'][0]:.0f}/{f['latency ms p50/p95'][1]:.0f} ms, "
              f"send-to-applied p50/p95 {f['send-to-applied ms p50/p95'][0]:.0f}/"
              f"{f['send-to-applied ms p50/p95'][1]:.0f} ms, kernel CPU {f['kernel CPU ms/update']:.1f} ms/update "
              f"({f['kernel CPU ms/frame']:.1f} ms/frame shown, {f['kernel CPU %']:.0f}% of a core), "
              f"page drew {f['draws/s']:.1f} frames/s")
    if result["message"]:
        print(f"  viewer says: {result['message']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring time on the fast link")
    parser.add_argument("--slow-seconds", type=float, default=15.0, help="measuring time on the slow link")
    parser.add_argument("--settle", type=float, default=6.0, help="seconds after slowing the link before measuring")
    parser.add_argument("--rate", type=float, default=30.0, help="frames per second handed to the viewer")
    parser.add_argument("--detail", choices=("full", "medium", "low"), default="full")
    parser.add_argument("--no-basis", action="store_true",
                        help="without the BFM, decode the mean shape only (no synthetic basis)")
    parser.add_argument("--load", action="store_true", help="the coefficient page's one-time load only, A/B")
    parser.add_argument("--baseline", type=Path, help="with --load: a checkout of the previous code, measured as 'before'")
    parser.add_argument("--rounds", type=int, default=2, help="with --load: interleaved rounds")
    args = parser.parse_args()
    if args.baseline and not (args.baseline / "face3d_nb" / "__init__.py").is_file():
        raise SystemExit(f"--baseline {args.baseline}: no face3d_nb package there")
    logging.basicConfig(level=logging.WARNING)
    missing = chromium_missing()
    if missing:
        raise SystemExit(missing)
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    paths = model_paths()
    work = Path(tempfile.mkdtemp(prefix="face3d_bench_transport_"))
    code = KERNEL.format(reference=str(REFERENCE), rate=args.rate, detail=args.detail,
                         bfm=str(paths.bfm or ""), tri=str(paths.tri), indices=str(paths.indices),
                         basis=not args.no_basis, mean_shape=[str(p) for p in paths.mean_shape or ()],
                         baseline=str((args.baseline or Path()).resolve()))
    notebook = write_notebook(work / "bench_transport.ipynb", code)
    sizes = load_sizes(paths, args.detail, not args.no_basis)
    print(f"one-time load: positions {sizes['positions']:.2f} MB (index, first positions); coefficients "
          f"{sizes['coefficients']:.2f} MB (of which basis texture {sizes['texture']:.2f} MB, {sizes['encoding']})")
    print("(headless Chromium renders with SwiftShader on the CPU here: 'page drew' counts frames actually drawn)")
    results = {}
    with BenchServer(notebook, work, work / "home") as server, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        if args.load:
            return run_load(browser, server, args)  # leaving sync_playwright() closes the browser
        for transport in ("positions", "coefficients", "auto"):
            results[transport] = run_page(browser, server, transport, args)
            show(transport, results[transport])
        browser.close()
    positions, coefficients = results["positions"]["slow"]["updates/s"], results["coefficients"]["slow"]["updates/s"]
    ok = coefficients >= 10 and positions < 2
    print(f"\nslow link: coefficients {coefficients:.1f} updates/s (target >= 10), positions {positions:.1f} "
          f"(target < 2): {'PASS' if ok else 'FAIL'}")
    auto = results["auto"]
    print(f"auto: {auto['fast']['active']} on the fast link ({auto['fast']['updates/s']:.1f} updates/s), "
          f"{auto['slow']['active']} on the slow one ({auto['slow']['updates/s']:.1f} updates/s)")


if __name__ == "__main__":
    main()
