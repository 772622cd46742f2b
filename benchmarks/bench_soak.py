"""Soak: the live app in Voila with the fake camera for minutes; memory and throughput over time.

    python benchmarks/bench_soak.py [--minutes 10] [--warmup 1] [--trace]

``face3d-nb app`` (Voila) and headless Chromium (Debian's, software WebGL) whose fake camera plays
the test video, one page. Every ``--interval`` seconds (default 60) it prints the Voila server's
and the page kernel's resident memory, the mesh updates the page acknowledged per second over
that interval and the errors so far: the engine's failed frames and subscriber errors, page errors
and console errors, error lines in the server's log.

At the end: growth of both RSS from the end of the ``--warmup`` minutes to the end, and mesh
updates/s in the first interval after warm-up against the last. Targets (issue 12): kernel growth
< 20 MB, server growth < 2 MB over 10 minutes, no error, last interval's mesh updates/s within 10%
of the first's. Exit status 1 when one is not met.

``--trace`` runs the server under ``tracemalloc`` and prints, at each sample, the ten source lines
whose live allocations grew most since the end of warm-up: where server memory goes (the server
runs slower traced, so its RSS figures are not the untraced ones).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from common import VIDEO, kernel_processes, model_home

from face3d_nb.testing.browser import Server, chromium_missing, launch_chromium, probe_for, wait_until, write_y4m

log = logging.getLogger("bench_soak")
MB = 2**20

# The server under tracemalloc: a thread writes the allocation sites' sizes to a JSON file on request
# (the file "request" appearing), then the CLI serves as usual.
TRACED_SERVER = """
import json, pathlib, sys, threading, time, tracemalloc
out = pathlib.Path(sys.argv[1])
def dump():
    while True:
        request = out / "request"
        if request.exists():
            ours = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<string>")]
            stats = tracemalloc.take_snapshot().filter_traces(ours).statistics("lineno")
            sites = {f"{s.traceback[0].filename}:{s.traceback[0].lineno}": [s.size, s.count] for s in stats}
            (out / "sites.tmp").write_text(json.dumps(sites))
            (out / "sites.tmp").rename(out / "sites.json")
            request.unlink()
        time.sleep(0.5)
threading.Thread(target=dump, daemon=True).start()
from face3d_nb.cli import main
sys.exit(main(sys.argv[2:]))
"""

FIGURES = """__import__('json').dumps({'applied': app.viewer.stats().applied,
    'errors': (lambda s: s.errors + s.callback_errors)(app.engine.stats())})"""


class SoakServer(Server):
    """``face3d-nb app`` on a free port, under tracemalloc when ``trace_dir`` is given."""

    def __init__(self, workdir: Path, face3d_home: Path, trace_dir: Path | None = None):
        super().__init__("voila", workdir, face3d_home)
        self.trace_dir = trace_dir

    def command(self) -> list[str]:
        command = super().command()
        if self.trace_dir is None:
            return command
        return [sys.executable, "-X", "tracemalloc=1", "-c", TRACED_SERVER, str(self.trace_dir), *command[3:]]

    def kernel(self) -> psutil.Process | None:
        kernels = kernel_processes(self)
        return kernels[0] if kernels else None

    def error_lines(self) -> int:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return sum(1 for line in text.splitlines() if "Traceback" in line or line.startswith(("[E ", "ERROR")))

    def allocation_sites(self) -> dict[str, list[int]]:
        """Live allocations per source line of the traced server: {"file:line": [bytes, blocks]}."""
        (self.trace_dir / "sites.json").unlink(missing_ok=True)
        (self.trace_dir / "request").touch()
        path = wait_until(lambda: (p := self.trace_dir / "sites.json").exists() and p, 120, 0.5, "a tracemalloc dump")
        return json.loads(path.read_text())


@dataclass(frozen=True)
class Sample:
    t: float
    server_mb: float
    kernel_mb: float
    applied: int
    errors: int


def top_growth(before: dict, after: dict, n: int = 10) -> list[str]:
    growth = sorted(((after[k][0] - before.get(k, [0, 0])[0], k, after[k][1]) for k in after), reverse=True)[:n]
    return [f"    {size / 1024:+9.0f} KiB {blocks:8d} blocks  {site}" for size, site, blocks in growth]


def soak(args, server: SoakServer, camera: Path) -> list[Sample]:
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    page_errors: list[str] = []
    failed: list[str] = []  # requests that failed; those that leave this machine are not errors (no network)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright, camera)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("pageerror", lambda exc: page_errors.append(str(exc)))
            page.on("console", lambda msg: msg.type == "error" and not msg.text.startswith("Failed to load resource")
                    and page_errors.append(msg.text))
            page.on("requestfailed", lambda request: failed.append(request.url))
            page.goto(f"{server.url}/", timeout=240_000)
            probe = probe_for(server)
            try:
                wait_until(lambda: probe.eval("app.viewer.stats().applied") > 0, 240, 1.0, "the first mesh update")
                samples, baseline_sites = [], None
                start = time.monotonic()
                for i in range(int(args.minutes * 60 / args.interval) + 1):
                    wait_until(lambda i=i: time.monotonic() >= start + i * args.interval, args.interval + 5, 0.5)
                    figures = json.loads(probe.eval(FIGURES))
                    kernel = server.kernel()
                    sample = Sample(time.monotonic() - start, psutil.Process(server.process.pid).memory_info().rss / MB,
                                    kernel.memory_info().rss / MB if kernel else float("nan"), figures["applied"],
                                    figures["errors"] + len(page_errors) + server.error_lines()
                                    + sum(url.startswith(server.url) for url in failed))
                    rate = (sample.applied - samples[-1].applied) / (sample.t - samples[-1].t) if samples else float("nan")
                    samples.append(sample)
                    print(f"{sample.t / 60:5.1f} min  server {sample.server_mb:6.1f} MB  kernel {sample.kernel_mb:6.1f} MB"
                          f"  {rate:5.1f} mesh updates/s  errors {sample.errors}", flush=True)
                    if server.trace_dir is not None and sample.t >= args.warmup * 60 - 1:
                        sites = server.allocation_sites()
                        if baseline_sites is None:
                            baseline_sites = sites
                        else:
                            print("\n".join(top_growth(baseline_sites, sites)), flush=True)
            finally:
                probe.close()
        finally:
            browser.close()
    for text in page_errors[:5]:
        print(f"page error: {text}")
    for url in sorted(set(failed)):
        print(f"request failed{'' if url.startswith(server.url) else ' (off this machine: no error)'}: {url}")
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to stream")
    parser.add_argument("--warmup", type=float, default=1.0, help="minutes before growth is counted")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between samples")
    parser.add_argument("--trace", action="store_true", help="trace the server's allocations (tracemalloc)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if (missing := chromium_missing()) is not None:
        raise SystemExit(f"cannot run: {missing}")
    if args.minutes <= args.warmup or args.warmup * 60 < args.interval:
        raise SystemExit("--minutes must exceed --warmup, and --warmup span at least one --interval")
    home = model_home()
    work = Path(tempfile.mkdtemp(prefix="face3d_bench_soak_"))
    camera = write_y4m(VIDEO, work / "camera.y4m")
    trace_dir = work / "trace" if args.trace else None
    if trace_dir is not None:
        trace_dir.mkdir()
    load_before = os.getloadavg()[0]
    log.info("soak: %.0f min (%.0f min warm-up), %s as the camera%s", args.minutes, args.warmup, VIDEO.name,
             ", server traced" if args.trace else "")
    with SoakServer(work / "server", home, trace_dir) as server:
        samples = soak(args, server, camera)
    warm = next(s for s in samples if s.t >= args.warmup * 60 - 1)
    after_warm = samples[samples.index(warm) + 1]
    first_rate = (after_warm.applied - warm.applied) / (after_warm.t - warm.t)
    last_rate = (samples[-1].applied - samples[-2].applied) / (samples[-1].t - samples[-2].t)
    server_growth, kernel_growth = samples[-1].server_mb - warm.server_mb, samples[-1].kernel_mb - warm.kernel_mb
    print(f"\nsoak {samples[-1].t / 60:.1f} min, growth after {args.warmup:.0f} min warm-up: server {server_growth:+.1f} MB"
          f" ({warm.server_mb:.1f} -> {samples[-1].server_mb:.1f}), kernel {kernel_growth:+.1f} MB "
          f"({warm.kernel_mb:.1f} -> {samples[-1].kernel_mb:.1f}); mesh updates/s first {first_rate:.1f}, last "
          f"{last_rate:.1f}; errors {samples[-1].errors}; 1-min load {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after ({os.cpu_count()} cores)")
    checks = [
        ("kernel growth < 20 MB", kernel_growth < 20),
        ("server growth < 2 MB", server_growth < 2),
        ("no error", samples[-1].errors == 0),
        ("last mesh updates/s within 10% of the first", abs(last_rate - first_rate) <= 0.1 * first_rate),
    ]
    print("targets: " + "; ".join(f"{name}: {'met' if ok else 'NOT met'}" for name, ok in checks))
    sys.exit(0 if all(ok for _, ok in checks) else 1)


if __name__ == "__main__":
    main()
