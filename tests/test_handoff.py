"""Handoff: work moved off a producer thread, newest item wins, at most once per interval."""

import threading
import time

import pytest

from face3d_nb.live.handoff import Handoff
from face3d_nb.testing.polling import wait_for


def test_work_runs_on_its_own_thread_with_the_newest_item():
    release, seen = threading.Event(), []

    def work(item):
        seen.append((item, threading.current_thread().name))
        release.wait(5)

    handoff = Handoff(work, name="test-handoff")
    try:
        handoff.offer(0)
        wait_for(lambda: seen)
        for item in range(1, 6):  # while 0 is being worked on: only the newest waits
            handoff.offer(item)
        release.set()
        wait_for(lambda: handoff.handled == 2)
        assert seen == [(0, "test-handoff"), (5, "test-handoff")]
        assert handoff.replaced == 4
    finally:
        handoff.close()


def test_calls_are_at_least_an_interval_apart():
    starts = []
    handoff = Handoff(lambda item: starts.append(time.monotonic()), interval=0.1)
    try:
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            handoff.offer(object())
            time.sleep(0.002)
        wait_for(lambda: len(starts) >= 4)
    finally:
        handoff.close()
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert len(starts) <= 6 and min(gaps) >= 0.095


def test_a_failing_call_is_logged_and_the_next_item_still_runs(caplog):
    done = []

    def work(item):
        if item == "bad":
            raise RuntimeError("boom")
        done.append(item)

    handoff = Handoff(work)
    try:
        handoff.offer("bad")
        wait_for(lambda: handoff.handled == 1)
        handoff.offer("good")
        wait_for(lambda: done == ["good"])
    finally:
        handoff.close()
    assert "boom" in caplog.text


def test_close_ends_the_thread_and_later_offers_are_ignored():
    done = []
    handoff = Handoff(done.append, name="test-closing")
    handoff.close()
    assert not any(t.name == "test-closing" for t in threading.enumerate())
    handoff.offer(1)
    time.sleep(0.05)
    assert done == [] and handoff.handled == 0


def test_interval_must_not_be_negative():
    with pytest.raises(ValueError, match="interval"):
        Handoff(print, interval=-1)
