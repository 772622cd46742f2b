"""PosePlot, Python side: samples from engine events, batched to at most ``rate`` messages a second.

No browser here: ``send`` is replaced by a list (the page side is tested in tests/browser).
"""

import math

import numpy as np
import pytest

from face3d_nb.core.morphable import pose_from_params
from face3d_nb.core.pipeline import Face
from face3d_nb.live.events import ErrorEvent, FrameResult, TrackedFace
from face3d_nb.widgets.plots import PosePlot


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def _plot(clock, **traits):
    plot = PosePlot(clock=clock, **traits)
    plot.sent = []
    plot.send = lambda content, buffers=None: plot.sent.append((content, [bytes(b) for b in buffers or []]))
    return plot


def _rows(plot):
    rows = [np.frombuffer(b[0], np.float64).reshape(c["rows"], c["columns"]) for c, b in plot.sent
            if c["type"] == "samples"]
    return np.concatenate(rows) if rows else np.zeros((0, 4 + plot.n_expression))


def _face(track_id, yaw_params_seed):
    params = np.random.default_rng(yaw_params_seed).standard_normal(62).astype(np.float32)
    params[:12] = [1, 0, 0, 10, 0, 1, 0, 20, 0, 0, 1, 30]
    return TrackedFace(track_id, Face(np.zeros(5, np.float32), np.array([0, 0, 100, 100.0]), params,
                                      pose_from_params(params), np.zeros((68, 3), np.float32)), None)


def _result(t, *faces):
    return FrameResult(seq=0, captured_at=t, frame_shape=(480, 640), faces=faces, timings={}, detected=False,
                       frame=None)


def test_samples_are_batched_to_the_rate_and_none_is_lost():
    clock = Clock()
    plot = _plot(clock, rate=10.0)
    for i in range(90):  # 3 s at 30 frames/s
        plot.add(float(i), (i, -i, 0.5 * i), [i, i + 1, i + 2, i + 3])
        clock.t += 1 / 30
    assert 20 <= len(plot.sent) <= 31  # at most 10 a second, and batches of a few frames, not one
    plot.flush()
    rows = _rows(plot)
    assert rows[:, 0].tolist() == [float(i) for i in range(90)]
    np.testing.assert_array_equal(rows[:, 1:4], [[i, -i, 0.5 * i] for i in range(90)])
    assert plot.sent_messages == len(plot.sent) and plot.sent_bytes == rows.nbytes


def test_engine_events_give_the_lowest_track_and_gaps():
    plot = _plot(Clock(), n_expression=3)
    second, first = _face(7, 1), _face(3, 2)
    plot(_result(1.0, second, first))
    plot(_result(2.0))
    plot(ErrorEvent(5, 3.0, "bad frame"))
    plot.flush()
    rows = _rows(plot)
    assert rows.shape == (2, 7)
    pose = first.face.pose
    np.testing.assert_allclose(rows[0, 1:4], [pose.yaw, pose.pitch, pose.roll])
    np.testing.assert_allclose(rows[0, 4:], first.face.params[52:55])
    assert rows[1, 0] == 2.0 and np.isnan(rows[1, 1:]).all()


def test_clear_and_settings():
    plot = _plot(Clock())
    plot.add(1.0, (1, 2, 3), [0, 0, 0, 0])
    plot.n_expression = 2  # a new width: the page starts over
    assert plot.sent[-1] == ({"type": "clear"}, [])
    plot.add(2.0, (1, 2, 3), [9, 8, 7, 6])
    plot.flush()
    content, (buffer,) = plot.sent[-1]
    assert (content["rows"], content["columns"]) == (1, 6)
    assert np.frombuffer(buffer, np.float64).tolist() == [2.0, 1, 2, 3, 9, 8]
    for trait, value in (("window", 0.0), ("rate", -1.0), ("n_expression", 11)):
        with pytest.raises(Exception, match=trait):
            setattr(plot, trait, value)


def test_the_page_reports_its_drawing_cost():
    plot = _plot(Clock())
    assert math.isnan(plot.draw_ms)
    plot._handle_message(plot, {"type": "cost", "draws": 20, "draw_ms": 0.4}, [])
    plot._handle_message(plot, {"type": "cost", "draws": "x", "draw_ms": 1e9}, [])
    assert (plot.draws, plot.draw_ms) == (20, 0.4)


def test_a_page_that_arrives_later_gets_the_last_window():
    clock = Clock()
    plot = _plot(clock, window=2.05)
    for i in range(50):  # 5 s at 10 frames/s
        plot.add(i / 10, (i, 0, 0), [0, 0, 0, 0])
        clock.t += 0.1
    plot.sent.clear()
    plot._handle_message(plot, {"type": "hello"}, [])
    assert plot.sent[0] == ({"type": "clear"}, [])
    rows = _rows(plot)
    assert rows[0, 0] == pytest.approx(2.9) and rows[-1, 0] == pytest.approx(4.9) and len(rows) == 21
