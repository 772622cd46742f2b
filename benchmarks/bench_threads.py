"""Threads and spinning per ONNX Runtime session: the figures that chose each session's options.

    python benchmarks/bench_threads.py [--runs 100] [--rounds 2] [--gap-ms 10] [--arch mb05]

Each session (the regressor on one face, the detector on a 640x360 frame and on a 320x180 search
pass) runs under each policy below, each policy in a process of its own (a spinning pool would
otherwise take the cores from the next policy's runs), the processes taking turns over
``--rounds``. Between runs the process waits ``--gap-ms`` (a frame interval less the frame's
other work), asleep (``--busy``: busy in Python, the other stages of a frame). Printed per policy:
wall time of a run, p50 and p90, and the process's CPU time per run, gap included (what a
spinning pool takes from the browser and the kernel in the live app).

Policies: one thread (no pool); two threads whose idle thread sleeps (``allow_spinning`` 0, our
default); two threads that spin (ONNX Runtime's default); two threads that spin at most
``spin_duration_us`` (1000 and 200); two threads that stop spinning when a run ends
(``session.force_spinning_stop``).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
from common import model_paths

SPIN = "session.intra_op.allow_spinning"
POLICIES = {
    "1 thread": (1, {SPIN: "0"}),
    "2 threads, no spin": (2, {SPIN: "0"}),
    "2 threads, spin": (2, {SPIN: "1"}),
    "2 threads, spin <= 1000 us": (2, {SPIN: "1", "session.intra_op.spin_duration_us": "1000"}),
    "2 threads, spin <= 200 us": (2, {SPIN: "1", "session.intra_op.spin_duration_us": "200"}),
    "2 threads, spin, stop after run": (2, {SPIN: "1", "session.force_spinning_stop": "1"}),
}
SESSIONS = {"regressor, 1 face": ("regressor", (1, 120, 120, 3)), "detector, 640x360": ("detector", (360, 640, 3)),
            "detector, 320x180 (search)": ("detector", (180, 320, 3))}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(model: str, shape: tuple[int, ...], policy: str, runs: int, gap_s: float, busy: bool) -> dict:
    """One policy in this process: wall ms per run and CPU ms per run (gap included)."""
    import onnxruntime as ort

    threads, entries = POLICIES[policy]
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    for key, value in entries.items():
        options.add_session_config_entry(key, value)
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)}
    for _ in range(10):
        session.run(None, feed)
    times = []
    cpu = cpu_seconds()
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - start) * 1000)
        if busy:
            end = time.perf_counter() + gap_s
            while time.perf_counter() < end:
                pass
        else:
            time.sleep(gap_s)
    return {"times": times, "cpu": (cpu_seconds() - cpu) * 1000 / runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=("mb1", "mb05"))
    parser.add_argument("--runs", type=int, default=100, help="runs per policy and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--gap-ms", type=float, default=10.0, help="wait between runs")
    parser.add_argument("--busy", action="store_true", help="busy-wait the gap instead of sleeping")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        model, shape, policy = json.loads(args.child)
        print(json.dumps(child(model, tuple(shape), policy, args.runs, args.gap_ms / 1000, args.busy)))
        return
    paths = model_paths(args.arch)
    print(f"ONNX Runtime threads and spinning, {args.runs} runs x {args.rounds} rounds per policy, "
          f"{args.gap_ms:g} ms {'busy' if args.busy else 'asleep'} between runs, regressor {paths.arch}")
    for session, (which, shape) in SESSIONS.items():
        model = str(getattr(paths, which))
        results: dict[str, dict[str, list[float]]] = {p: {"times": [], "cpu": []} for p in POLICIES}
        for _ in range(args.rounds):
            for policy in POLICIES:
                argv = [sys.executable, __file__, "--runs", str(args.runs), "--gap-ms", str(args.gap_ms),
                        "--child", json.dumps([model, shape, policy])] + (["--busy"] if args.busy else [])
                out = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)
                results[policy]["times"] += out["times"]
                results[policy]["cpu"].append(out["cpu"])
        print(f"\n{session}")
        print(f"  {'policy':<34}{'p50 ms':>8}{'p90 ms':>8}{'CPU ms/run':>12}")
        for policy, r in results.items():
            print(f"  {policy:<34}{np.median(r['times']):8.3f}{np.percentile(r['times'], 90):8.3f}"
                  f"{np.median(r['cpu']):12.2f}")


if __name__ == "__main__":
    main()
