"""The page link's hello and round-trip timing, Python side, and the defaults chosen from them.

No browser here: ``send`` is replaced by a list and the page's answers are fed by hand (the page
side is tested in tests/browser).
"""

import math

import pytest

from face3d_nb.view.page_defaults import defaults_for
from face3d_nb.widgets.page_link import FIRST_PINGS, PageLink


@pytest.mark.parametrize(("rtt", "detail", "size"), [(2.0, "full", 320), (30.0, "full", 320), (31.0, "medium", 320),
                                                    (120.0, "medium", 320), (400.0, "low", 256),
                                                    (math.nan, "low", 256)])
def test_defaults_fall_with_distance(rtt, detail, size):
    chosen = defaults_for(rtt)
    assert (chosen.detail, chosen.input_size) == (detail, size)
    assert f"{detail} mesh detail" in chosen.reason and f"{size} px" in chosen.reason


@pytest.mark.parametrize(("rtt", "detail"), [(2.0, "medium"), (60.0, "medium"), (400.0, "low")])
def test_a_page_drawing_without_a_gpu_gets_at_most_medium_detail(rtt, detail):
    chosen = defaults_for(rtt, software=True)
    assert chosen.detail == detail
    assert ("without a GPU" in chosen.reason) == (rtt < 30)


def test_hello_counts_the_page_and_times_the_link_to_it():
    now = [10.0]
    link = PageLink(clock=lambda: now[0])
    sent = []
    link.send = lambda content, buffers=None: sent.append((content, buffers))
    try:
        link._handle_message(link, {"type": "hello", "renderer": "ANGLE (Google, Vulkan (SwiftShader Device))"}, [])
        assert (link.pages, link.software) == (1, True)
        for delay in (0.020, 0.008, 0.500, 0.300):
            content, buffers = sent[-1]
            now[0] += delay
            assert math.isnan(link.rtt_ms)
            link._handle_message(link, {"type": "pong", "id": content["id"] + 100}, [])  # unknown: ignored
            link._handle_message(link, {"type": "pong", "id": content["id"]}, [])
        assert [len(b[0]) if b else 0 for _, b in sent] == list(FIRST_PINGS)
        assert link.rtt_ms == pytest.approx(8.0)

        # A reload says hello again: counted and timed again; a page hiding its renderer is not software.
        link._handle_message(link, {"type": "hello", "renderer": ["not", "a", "string"]}, [])
        assert (link.pages, link.renderer, link.software, link.measuring) == (2, "", False, True)
    finally:
        link.close()
