"""What the live pose plots cost the kernel, next to the mesh updates they must not slow down.

    python benchmarks/bench_plots.py [--rounds 5] [--detail full]

Runs inside a real IPython kernel (started here with jupyter_client), so widget messages go through
the kernel's real comm and ZMQ session as in the app (no page is attached; nothing waits for one).
The test video's frames go through the live engine one after another; its subscribers are the 3D
viewer (positions transport, ``ack_timeout`` 0: every mesh is sent, as with a page that keeps up)
and, in alternate rounds, the pose plot. Printed, per frame: time spent in the viewer's callback
and in the plot's, the plot's messages per second and bytes per frame, and the engine's processed
frames/s with and without the plot (rounds alternate; the ratio is taken between neighbouring
rounds, since load from elsewhere on this shared machine changes from minute to minute).

The plot's drawing cost in the page is reported by the page itself (``PosePlot.draw_ms``); the
browser tests print it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def measure(rounds: int, detail: str) -> dict:
    """Run in the kernel: returns the figures as plain values."""
    import threading  # noqa: PLC0415
    import time  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415
    from common import model_paths, video_frames  # noqa: PLC0415

    from face3d_nb.core.pipeline import Reconstructor  # noqa: PLC0415
    from face3d_nb.live.config import EngineConfig  # noqa: PLC0415
    from face3d_nb.live.engine import Engine  # noqa: PLC0415
    from face3d_nb.live.events import FrameResult  # noqa: PLC0415
    from face3d_nb.widgets.plots import PosePlot  # noqa: PLC0415
    from face3d_nb.widgets.viewer import FaceViewer  # noqa: PLC0415

    rec = Reconstructor(model_paths())
    frames = video_frames()
    level = rec.levels.detail(detail)
    viewer = FaceViewer(rec.levels, ack_timeout=0.0, transport="positions")
    plot = PosePlot()
    spent = {"viewer": [], "plot": []}
    fps = {"with plot": [], "without plot": []}
    done = threading.Semaphore(0)

    def timed(name, callback):
        def call(event):
            if isinstance(event, FrameResult):
                start = time.perf_counter()
                callback(event)
                spent[name].append((time.perf_counter() - start) * 1000)
        return call

    engine = Engine(EngineConfig(detail=detail), reconstructor=rec)
    engine.subscribe(timed("viewer", viewer.show))
    engine.subscribe(lambda _event: done.release())
    unsubscribe = None
    plotted_frames, plotted_seconds = 0, 0.0
    with engine:
        for r in range(2 * rounds):
            with_plot = r % 2 == 0
            if with_plot:
                unsubscribe = engine.subscribe(timed("plot", plot))
            start = time.perf_counter()
            for frame in frames:
                engine.submit(frame)
                done.acquire(timeout=60)
            elapsed = time.perf_counter() - start
            fps["with plot" if with_plot else "without plot"].append(len(frames) / elapsed)
            if with_plot:
                unsubscribe()
                plotted_frames += len(frames)
                plotted_seconds += elapsed
    viewer.close()
    plot.close()
    return {
        "frames": len(frames), "rounds": rounds, "detail": detail, "vertices": len(level.vertices),
        "viewer_ms": float(np.median(spent["viewer"])), "plot_ms": float(np.median(spent["plot"])),
        "plot_mean_ms": float(np.mean(spent["plot"])),
        "messages_per_s": plot.sent_messages / plotted_seconds, "bytes_per_frame": plot.sent_bytes / plotted_frames,
        "fps": {k: float(np.median(v)) for k, v in fps.items()}, "fps_rounds": fps,
    }


def main() -> None:
    from jupyter_client.manager import start_new_kernel  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="rounds with and without the plot, alternating")
    parser.add_argument("--detail", choices=("full", "medium", "low"), default="full")
    args = parser.parse_args()
    manager, client = start_new_kernel(kernel_name="python3")
    outputs: list[str] = []
    try:
        code = (f"import sys; sys.path[:0] = [{str(HERE)!r}, {str(HERE.parent)!r}]\n"
                f"import json, bench_plots\n"
                f"print('RESULT' + json.dumps(bench_plots.measure({args.rounds}, {args.detail!r})))")
        reply = client.execute_interactive(code, timeout=1800, output_hook=lambda msg: outputs.append(
            msg["content"].get("text", "")) if msg["msg_type"] == "stream" else None)
        if reply["content"]["status"] != "ok":
            sys.exit(f"the measurement failed in the kernel: {reply['content'].get('evalue')}")
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    line = next(line for line in "".join(outputs).splitlines() if line.startswith("RESULT"))
    r = json.loads(line[len("RESULT"):])
    print(f"face3d_nb pose plot cost: {r['frames']} frames of obama.mp4 x {r['rounds']} rounds each way, "
          f"{r['detail']} mesh ({r['vertices']} vertices), inside a real kernel")
    print(f"kernel time per frame: viewer {r['viewer_ms']:.2f} ms (median), plot {r['plot_ms'] * 1000:.0f} us "
          f"(median; mean {r['plot_mean_ms'] * 1000:.0f} us with its batched sends) = "
          f"{100 * r['plot_mean_ms'] / r['viewer_ms']:.1f}% of the viewer's")
    print(f"plot traffic: {r['messages_per_s']:.1f} messages/s (rate cap 10) while frames came at "
          f"{r['fps']['with plot']:.0f}/s; {r['bytes_per_frame']:.0f} payload bytes per frame "
          f"({25 * r['bytes_per_frame'] / 1000:.1f} kB/s at 25 frames/s)")
    # Each round with the plot is paired with the round after it: load from elsewhere on the machine
    # changes from minute to minute, much less between neighbours.
    pairs = [w / wo for w, wo in zip(r["fps_rounds"]["with plot"], r["fps_rounds"]["without plot"])]
    print(f"engine processed frames/s: without plot {r['fps']['without plot']:.1f}, with plot "
          f"{r['fps']['with plot']:.1f} (medians); with/without in neighbouring rounds: median "
          f"{sorted(pairs)[len(pairs) // 2]:.3f} of {', '.join(f'{x:.2f}' for x in pairs)}")


if __name__ == "__main__":
    main()
