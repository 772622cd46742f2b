"""Churn: app pages loaded and closed, and the app cell re-run in JupyterLab; nothing may be left behind.

    python benchmarks/bench_churn.py [--loads 20] [--reruns 5]

Headless Chromium (Debian's, software WebGL) whose fake camera plays the test video.

- Voila (``face3d-nb app``): ``--loads`` times, a page is opened, streams until the page has
  applied a mesh update, and is left as when its tab closes (unload handlers run: Voila's page asks
  the server to shut its kernel down). Before and after: the server's threads and open file
  descriptors, and the kernels it runs (kernel processes and connection files); after each close,
  the kernel count must come back.
- JupyterLab: the app notebook is run once, then ``--reruns`` more times in the same kernel
  (``app = FaceApp()`` again, without ``app.close()``); after the first run and after the last:
  the kernel's face3d threads, open comms and live widgets, and the kernels the server runs.

Prints the figures; exit status 1 when something is left behind (the leftovers are named).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import psutil
from common import VIDEO, kernel_processes, model_home

from face3d_nb.testing.browser import (
    KernelProbe,
    Server,
    chromium_missing,
    launch_chromium,
    probe_for,
    wait_until,
    write_y4m,
)

log = logging.getLogger("bench_churn")
PAGE_TIMEOUT_MS = 240_000

# What one kernel holds of the app: its threads by name, open comms, live widgets.
KERNEL_FIGURES = """__import__('json').dumps({
    'threads': sorted(t.name for t in __import__('threading').enumerate() if t.name.startswith('face3d')),
    'comms': len(__import__('comm').get_comm_manager().comms),
    'widgets': len(__import__('ipywidgets').widgets.widget._instances)})"""


def server_figures(server: Server) -> dict:
    process = psutil.Process(server.process.pid)
    return {"threads": process.num_threads(), "fds": process.num_fds(), "kernels": len(kernel_processes(server)),
            "connection_files": len(server.connection_files()), "rss_mb": round(process.memory_info().rss / 2**20, 1)}


def voila_churn(playwright, camera: Path, home: Path, work: Path, loads: int) -> list[str]:
    """Open and close ``loads`` app pages; the leftovers, described."""
    left: list[str] = []
    with Server("voila", work / "voila", home) as server:
        before = server_figures(server)
        # The first page starts what the server keeps for all (the ZeroMQ context's threads and
        # sockets): threads and descriptors count from after it.
        warm = None
        print(f"Voila before: {before}", flush=True)
        browser = launch_chromium(playwright, camera)
        try:
            for i in range(loads):
                start = time.monotonic()
                known = set(server.connection_files())
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                if page.goto(f"{server.url}/", timeout=PAGE_TIMEOUT_MS).status == 503:
                    left.append(f"load {i + 1}: the app is busy, the kernels of closed pages still run")
                    break
                probe = probe_for(server, known)
                try:
                    wait_until(lambda probe=probe: probe.eval("app.viewer.stats().applied") > 0, 240, 1.0, "a mesh update")
                finally:
                    probe.close()
                # Leaving the page runs its unload handlers as closing the tab does, and lets the request
                # they send go out (Playwright's close(run_before_unload=True) tears the page down first).
                page.goto("about:blank")
                page.close()
                try:
                    wait_until(lambda: len(kernel_processes(server)) == before["kernels"], 60, 0.5,
                               "the page's kernel to end")
                except TimeoutError:
                    left.append(f"load {i + 1}: its kernel still runs a minute after the page closed")
                figures = server_figures(server)
                warm = warm or figures
                print(f"load {i + 1:2d}: {time.monotonic() - start:5.1f} s, {figures}", flush=True)
        finally:
            browser.close()
        after = wait_until(lambda: (f := server_figures(server))["connection_files"] == before["connection_files"] and f,
                           30, 0.5, "connection files removed") if not left else server_figures(server)
        print(f"Voila after {loads} loads: {after}", flush=True)
        for key in ("kernels", "connection_files"):
            if after[key] > before[key]:
                left.append(f"Voila server: {key} {before[key]} -> {after[key]}")
        if warm is not None and after["threads"] > warm["threads"]:
            left.append(f"Voila server: threads {warm['threads']} after the first page -> {after['threads']}")
        # Descriptors come and go with the log and sockets: more than a few means some per page.
        if warm is not None and after["fds"] > warm["fds"] + 4:
            left.append(f"Voila server: open file descriptors {warm['fds']} after the first page -> {after['fds']}")
    return left


def lab_reruns(playwright, camera: Path, home: Path, work: Path, reruns: int) -> list[str]:
    """Run the app notebook 1 + ``reruns`` times in one JupyterLab kernel; the leftovers, described."""
    left: list[str] = []
    with Server("lab", work / "lab", home) as server:
        browser = launch_chromium(playwright, camera)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{server.url}/lab/tree/face3d_app.ipynb?token={server.token}", timeout=PAGE_TIMEOUT_MS)
            page.wait_for_function("() => window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel",
                                   timeout=PAGE_TIMEOUT_MS)
            probe = None
            figures = []
            for run in range(1 + reruns):
                previous = probe.eval("id(app)") if probe is not None else None
                page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
                if probe is None:
                    [session] = wait_until(lambda: server.api("/api/sessions"), 60, message="the notebook's session")
                    probe = KernelProbe(server.runtime_dir / f"kernel-{session['kernel']['id']}.json")
                new_app = f"'app' in globals() and id(app) != {previous} and app.viewer.stats().applied > 0"
                wait_until(lambda probe=probe, new_app=new_app: probe.eval(new_app), 240, 1.0, f"run {run + 1} streaming")
                figures.append({**json.loads(probe.eval(KERNEL_FIGURES)), "kernels": len(kernel_processes(server))})
                print(f"JupyterLab run {run + 1}: {figures[-1]}", flush=True)
            probe.close()
        finally:
            browser.close()
    # The baseline is the first re-run when there is one: the first run's count depends on when it is
    # taken (seen once: 157 widgets, then 160 in every later run; 160 from the first in another run),
    # and what a re-run leaves behind still adds up in every later one.
    first, last = figures[min(1, reruns - 1)], figures[-1]
    if last["threads"] != first["threads"]:
        extra = sorted(set(last["threads"]) - set(first["threads"])) or last["threads"]
        left.append(f"JupyterLab kernel after {reruns} re-runs: threads {first['threads']} -> {last['threads']} "
                    f"(extra: {extra})")
    for key in ("comms", "widgets", "kernels"):
        if last[key] > first[key]:
            left.append(f"JupyterLab after {reruns} re-runs: {key} {first[key]} -> {last[key]}")
    return left


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=20, help="Voila page loads and closes")
    parser.add_argument("--reruns", type=int, default=5, help="JupyterLab re-runs of the app cell (0: skip)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if (missing := chromium_missing()) is not None:
        raise SystemExit(f"cannot run: {missing}")
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    home = model_home()
    work = Path(tempfile.mkdtemp(prefix="face3d_bench_churn_"))
    camera = write_y4m(VIDEO, work / "camera.y4m")
    left: list[str] = []
    with sync_playwright() as playwright:
        if args.loads:
            left += voila_churn(playwright, camera, home, work, args.loads)
        if args.reruns:
            left += lab_reruns(playwright, camera, home, work, args.reruns)
    print("\nleft behind: " + ("nothing" if not left else "\n  " + "\n  ".join(left)))
    sys.exit(1 if left else 0)


if __name__ == "__main__":
    main()
