"""LinkProbe, Python side, and the defaults chosen from the round trip.

No browser here: ``send`` is replaced by a list and the page's answers are fed by hand (the page
side is tested in tests/browser).
"""

import math

import pytest

from face3d_nb.link import LinkProbe, defaults_for


@pytest.mark.parametrize(("rtt", "detail", "size"), [(2.0, "full", 320), (30.0, "full", 320), (31.0, "medium", 320),
                                                    (120.0, "medium", 320), (400.0, "low", 256),
                                                    (math.nan, "low", 256)])
def test_defaults_fall_with_distance(rtt, detail, size):
    chosen = defaults_for(rtt)
    assert (chosen.detail, chosen.input_size) == (detail, size)
    assert f"{detail} mesh detail" in chosen.reason and f"{size} px" in chosen.reason


def test_probe_times_round_trips_after_the_page_says_hello():
    now = [10.0]
    probe = LinkProbe(clock=lambda: now[0], pings=3)
    sent = []
    probe.send = lambda content, buffers=None: sent.append(content)
    probe._handle_message(probe, {"type": "hello"}, [])
    for delay in (0.020, 0.008, 0.500):
        (ping,) = [m for m in sent if m["type"] == "ping"][-1:]
        now[0] += delay
        assert math.isnan(probe.rtt_ms)
        probe._handle_message(probe, {"type": "pong", "n": ping["n"]}, [])
        probe._handle_message(probe, {"type": "pong", "n": 999}, [])  # unknown: ignored
    assert len(sent) == 3
    assert probe.rtt_ms == pytest.approx(8.0)
