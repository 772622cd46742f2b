"""Reliability: what the page controls. Its clock (each frame's ``captured_at``), the traits it can
set and how often it says hello must not freeze smoothing, grow the pose plot or queue pings without
bound. Python side only: ``send`` is stubbed and the page's messages are fed by hand, the way
ipywidgets delivers them (the page itself is tested in tests/browser).
"""

import math
import time

import cv2
import numpy as np
import pytest
import traitlets

from face3d_nb.core.smoothing import OneEuroFilter, OneEuroParams
from face3d_nb.live.events import FrameResult
from face3d_nb.testing.media import face_picture
from face3d_nb.widgets.camera import FrameGrabber
from face3d_nb.widgets.page_link import FIRST_PINGS, PageLink
from face3d_nb.widgets.plots import PosePlot

NOW = 1_750_000_000.0  # the kernel's clock in these tests, seconds since the epoch


class Clock:
    def __init__(self, t: float = NOW):
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    return cv2.imencode(".jpg", face_picture(320, 180))[1].tobytes()


def _stubbed(widget):
    widget.sent = []
    widget.send = lambda content, buffers=None: widget.sent.append((content, [bytes(b) for b in buffers or []]))
    return widget


@pytest.mark.parametrize("wild_ms", [9e15, -1e12, 0.0, 1e308, (NOW - 3600) * 1000, (NOW + 86_400) * 1000],
                         ids=["9e15", "negative", "epoch", "1e308", "an-hour-ago", "tomorrow"])
def test_a_wild_capture_time_reaches_the_kernel_near_now_and_in_order(jpeg, wild_ms):
    clock = Clock()
    grabber = _stubbed(FrameGrabber(clock=clock))
    times = []
    grabber.on_frame(lambda _data, captured_at, _seq: times.append((captured_at, clock.t)))
    try:
        stamps = [NOW - 0.030, wild_ms / 1000, NOW + 0.040 - 0.030, NOW + 0.080 - 0.030]
        for seq, stamp in enumerate(stamps, start=1):
            grabber._handle_message(grabber, {"type": "frame", "page": "tab", "seq": seq, "captured_at": stamp * 1000,
                                              "width": 320, "height": 180}, [memoryview(jpeg)])
            clock.t += 0.040
        assert len(times) == 4 and grabber.rejected == 0
        kernel = [t for t, _ in times]
        assert all(now - 5.0 <= t <= now for t, now in times)  # near now, never ahead
        assert kernel == sorted(kernel)  # monotonic
        assert kernel[0] == pytest.approx(NOW - 0.030)  # same clock: taken as stamped
        assert kernel[-1] > kernel[1]  # time moves on after the wild frame
    finally:
        grabber.close()


def test_the_app_gives_the_engine_and_plot_kernel_time_after_a_frame_stamped_far_ahead(synthetic_reconstructor, jpeg):
    from face3d_nb.apps.live_app import FaceApp

    app = FaceApp(reconstructor=synthetic_reconstructor, link_defaults=False)
    app.grabber.send = lambda content, buffers=None: None
    _stubbed(app.plot)
    results = []
    app.engine.subscribe(lambda event: isinstance(event, FrameResult) and results.append(event))
    try:
        for seq, stamp_ms in enumerate([None, 9e15, None, None, None], start=1):
            before = time.time()
            stamp_ms = before * 1000 if stamp_ms is None else stamp_ms
            app.grabber._handle_message(app.grabber, {"type": "frame", "page": "tab", "seq": seq,
                                                      "captured_at": stamp_ms, "width": 320, "height": 180},
                                        [memoryview(jpeg)])
            assert app.engine.drain(60)
            assert before - 5.0 <= results[-1].captured_at <= time.time()
        times = [r.captured_at for r in results]
        assert len(times) == 5 and times == sorted(times)
        app.plot.sent.clear()
        app.plot._handle_message(app.plot, {"type": "hello"}, [])
        rows = np.frombuffer(app.plot.sent[-1][1][0], np.float64).reshape(-1, 4 + app.plot.n_expression)
        assert len(rows) == 5 and rows[:, 0].max() <= time.time()  # every frame kept, none from 9e15
    finally:
        app.close()


def test_smoothing_still_moves_after_a_frame_stamped_far_ahead():
    smoother = OneEuroFilter(OneEuroParams.from_strength(0.5))
    smoother.filter(np.zeros(3), NOW, 0.0)
    smoother.filter(np.zeros(3), 9e12, 0.0)  # 9e15 ms from a page, taken as is
    out = [smoother.filter(np.full(3, float(k)), NOW + 0.04 * k, 1.0).copy() for k in range(1, 30)]
    # Not frozen at the wild frame's estimate: the output follows the input as it climbs.
    assert out[-1][0] > out[0][0] > 0 and np.all(np.diff([o[0] for o in out]) > 0)
    assert out[-1][0] <= 29.0
    with pytest.raises(ValueError, match="finite"):
        smoother.filter(np.zeros(3), math.nan, 0.0)


def test_the_pose_plot_stays_trimmed_after_a_frame_stamped_far_ahead():
    plot = _stubbed(PosePlot(clock=Clock(), window=2.0, rate=1e6))
    try:
        plot.add(NOW, (0.0, 0.0, 0.0), [0.0] * 4)
        plot.add(9e12, (1.0, 1.0, 1.0), [0.0] * 4)
        for k in range(1, 301):  # 12 s at 25 frames/s
            plot.add(NOW + 0.04 * k, (2.0, 2.0, 2.0), [0.0] * 4)
        # The page is told to start over from what is kept, and kept no wild sample.
        assert any(content == {"type": "clear"} for content, _ in plot.sent)
        plot.sent.clear()
        plot._handle_message(plot, {"type": "hello"}, [])  # a page that shows up now gets the last 2 s
        [(clear, _), (samples, [buffer])] = plot.sent
        rows = np.frombuffer(buffer, np.float64).reshape(samples["rows"], samples["columns"])
        assert clear == {"type": "clear"} and len(rows) <= 2.0 / 0.04 + 1
        assert rows[:, 0].max() == pytest.approx(NOW + 12.0) and rows[:, 0].min() >= NOW + 10.0 - 1e-6
    finally:
        plot.close()


@pytest.mark.parametrize(("make", "state"), [
    (lambda: PosePlot(), {"window": 1e9}),
    (lambda: PosePlot(), {"width": 10**9}),
    (lambda: PageLink(), {"gpu_decode": "x" * 1_000_000}),
    (lambda: FrameGrabber(), {"status": "x" * 100}),
    (lambda: FrameGrabber(), {"message": "x" * 1_000_000}),
    (lambda: FrameGrabber(), {"device_id": "x" * 1_000_000}),
    (lambda: FrameGrabber(), {"cameras": [{"id": str(i), "label": "cam"} for i in range(10_000)]}),
    (lambda: FrameGrabber(), {"cameras": [{"id": "a", "label": "b", "extra": "x" * 100}]}),
    (lambda: FrameGrabber(), {"max_in_flight": 10**9}),
    (lambda: FrameGrabber(), {"max_fps": 1e300}),
], ids=["plot-window", "plot-width", "link-gpu_decode", "grabber-status", "grabber-message", "grabber-device_id",
        "grabber-cameras", "grabber-camera-fields", "grabber-max_in_flight", "grabber-max_fps"])
def test_traits_the_page_sets_are_bounded(make, state):
    widget = make()
    try:
        [(name, value)] = state.items()
        before = getattr(widget, name)
        with pytest.raises(traitlets.TraitError, match=name):
            widget.set_state(state)  # as a page's update arrives
        assert getattr(widget, name) == before
    finally:
        widget.close()


def test_a_page_saying_hello_in_a_loop_leaves_at_most_one_ping_outstanding():
    clock = Clock()
    link = _stubbed(PageLink(clock=clock))
    try:
        for _ in range(1000):
            link._handle_message(link, {"type": "hello", "renderer": "r"}, [])
        assert link.pages == 1000 and len(link.sent) == 1  # one ping in flight
        while link.measuring:  # answer until the link is done measuring
            content, _ = link.sent[-1]
            sent = len(link.sent)
            clock.t += 0.010
            link._handle_message(link, {"type": "pong", "id": content["id"]}, [])
            assert len(link.sent) <= sent + 1  # never more than one outstanding
        # The first hello's ping and one measurement after it, not a thousand measurements.
        assert len(link.sent) <= 1 + len(FIRST_PINGS) and not math.isnan(link.rtt_ms)
    finally:
        link.close()
