"""The frame grabber's kernel side: the frame/ack protocol and the checks on untrusted frames.

No browser here: messages are delivered the way ipywidgets delivers them (``_handle_message`` with
the content dict and a list of memoryviews) and ``send`` is stubbed to record what goes back to
the page. The JPEGs are generated camera-sized pictures.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import traitlets

import face3d_nb.widgets.camera
from face3d_nb.testing.media import face_picture
from face3d_nb.widgets.camera import INPUT_SIZES, FrameGrabber, camera_constraints


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    return cv2.imencode(".jpg", face_picture(320, 180))[1].tobytes()


@pytest.fixture
def grabber():
    # The kernel's clock at the time the test frames say they were captured (1.7e12 ms, late 2023).
    g = FrameGrabber(clock=lambda: 1_700_000_000.5)
    g.sent = []
    g.send = lambda content, buffers=None: g.sent.append(content)
    g.frames = []
    g.on_frame(lambda data, captured_at, seq: g.frames.append((data, captured_at, seq)))
    yield g
    g.close()


def frame_message(seq=1, captured_at=1.7e12, page="tab-1", **extra):
    return {"type": "frame", "page": page, "seq": seq, "captured_at": captured_at, "width": 320, "height": 180, **extra}


def test_a_frame_is_acknowledged_and_handed_on(grabber, jpeg):
    grabber._handle_message(grabber, frame_message(seq=7, captured_at=1_700_000_000_123.0), [memoryview(jpeg)])
    assert grabber.sent == [{"type": "ack", "seq": 7, "page": "tab-1", "accepted": True}]
    [(data, captured_at, seq)] = grabber.frames
    assert data == jpeg and isinstance(data, bytes)
    # The page's clock is in ms since the epoch; the kernel side works in seconds.
    assert captured_at == pytest.approx(1_700_000_000.123) and seq == 7
    assert (grabber.received, grabber.rejected) == (1, 0)


@pytest.mark.parametrize(
    "content, buffers",
    [
        (frame_message(seq="7"), "jpeg"),
        (frame_message(seq=True), "jpeg"),
        (frame_message(captured_at=math.nan), "jpeg"),
        (frame_message(captured_at="now"), "jpeg"),
        (frame_message(), []),
        (frame_message(), ["jpeg", "jpeg"]),
        (frame_message(), [b"\x89PNG\r\n\x1a\n" + bytes(100)]),
        (frame_message(), [b"\xff\xd8\xff"[:2] + bytes(100)]),
    ],
    ids=["seq-string", "seq-bool", "time-nan", "time-string", "no-buffer", "two-buffers", "png", "truncated-signature"],
)
def test_malformed_frames_are_dropped_counted_and_still_acknowledged(grabber, jpeg, content, buffers):
    buffers = [memoryview(jpeg)] if buffers == "jpeg" else [memoryview(jpeg if b == "jpeg" else b) for b in buffers]
    grabber._handle_message(grabber, content, buffers)
    assert grabber.frames == []
    assert (grabber.received, grabber.rejected) == (0, 1)
    # Acknowledged all the same, or a page that sent junk would stall its in-flight window.
    seq = content["seq"] if type(content["seq"]) is int else None
    assert grabber.sent == [{"type": "ack", "seq": seq, "page": "tab-1", "accepted": True}]


def test_two_pages_get_their_own_acks_and_one_streams_at_a_time(grabber, jpeg, monkeypatch):
    # One widget shown in two JupyterLab tabs: both grabbers number their frames from 1.
    grabber._handle_message(grabber, frame_message(seq=1, page="tab-1"), [memoryview(jpeg)])
    grabber._handle_message(grabber, frame_message(seq=1, page="tab-2"), [memoryview(jpeg)])
    grabber._handle_message(grabber, frame_message(seq=2, page="tab-1"), [memoryview(jpeg)])
    assert grabber.sent == [{"type": "ack", "seq": 1, "page": "tab-1", "accepted": True},
                            {"type": "ack", "seq": 1, "page": "tab-2", "accepted": False},
                            {"type": "ack", "seq": 2, "page": "tab-1", "accepted": True}]
    assert [seq for _, _, seq in grabber.frames] == [1, 2]
    assert (grabber.received, grabber.ignored, grabber.rejected) == (2, 1, 0)
    # Once the streaming page falls silent (its tab hidden), the other one takes over.
    monkeypatch.setattr(face3d_nb.widgets.camera, "_HANDOVER_S", 0.0)
    grabber._handle_message(grabber, frame_message(seq=5, page="tab-2"), [memoryview(jpeg)])
    assert grabber.sent[-1]["accepted"] and grabber.frames[-1][2] == 5


def test_acks_echo_only_well_formed_page_ids_and_seqs(grabber, jpeg):
    grabber._handle_message(grabber, frame_message(seq="x" * 10_000, page="p" * 10_000), [memoryview(jpeg)])
    assert grabber.sent == [{"type": "ack", "seq": None, "page": None, "accepted": True}]
    assert grabber.rejected == 1


def test_the_page_keeps_only_its_own_acks():
    grabber = (Path(face3d_nb.widgets.camera.__file__).parent / "static" / "grabber.js").read_text()
    assert 'msg.type === "ack" && msg.page === this.page' in grabber
    assert "page: this.page, seq" in grabber


def test_unknown_messages_are_dropped_without_reply(grabber, jpeg):
    grabber._handle_message(grabber, {"type": "hello"}, [])
    grabber._handle_message(grabber, ["not", "a", "dict"], [memoryview(jpeg)])
    assert grabber.frames == [] and grabber.sent == [] and grabber.rejected == 2


def test_oversized_frames_are_rejected_before_copying(grabber, jpeg):
    grabber.max_bytes = len(jpeg) - 1
    grabber._handle_message(grabber, frame_message(seq=1), [memoryview(jpeg)])
    grabber.max_bytes = len(jpeg)
    grabber._handle_message(grabber, frame_message(seq=2), [memoryview(jpeg)])
    assert [seq for _, _, seq in grabber.frames] == [2]
    assert (grabber.received, grabber.rejected) == (1, 1)


def test_callbacks_can_be_removed(grabber, jpeg):
    calls = []

    def callback(*args):
        calls.append(args)

    grabber.on_frame(callback)
    grabber._handle_message(grabber, frame_message(seq=1), [memoryview(jpeg)])
    grabber.on_frame(callback, remove=True)
    grabber._handle_message(grabber, frame_message(seq=2), [memoryview(jpeg)])
    assert [args[2] for args in calls] == [1]


@pytest.mark.parametrize("name, value", [("width", 16), ("width", 10_000), ("quality", 0.0), ("quality", 1.5),
                                         ("max_in_flight", 0), ("max_fps", -1.0), ("max_fps", math.inf),
                                         ("preview_fps", -1.0)])
def test_settings_are_validated(grabber, name, value):
    with pytest.raises(traitlets.TraitError, match=name):
        setattr(grabber, name, value)


def test_settings_reach_the_page_state(grabber):
    grabber.width, grabber.max_fps, grabber.enabled, grabber.device_id = 640, 12.0, False, "cam-2"
    state = grabber.get_state()
    assert (state["width"], state["max_fps"], state["enabled"], state["device_id"]) == (640, 12.0, False, "cam-2")
    # Kernel-side limits and counters are not the page's business.
    assert not {"max_bytes", "received", "rejected"} & set(state)


def test_front_end_ships_as_package_files():
    static = Path(face3d_nb.widgets.camera.__file__).parent / "static"
    sources, grabber = (static / "frame_sources.js").read_text(), (static / "grabber.js").read_text()
    assert ".face3d-stat" in (static / "face3d.css").read_text()
    # One module out of two files: the frame sources first, then the code using them and the only export.
    assert FrameGrabber._esm == sources + grabber
    assert not re.search(r"^(import|export) ", sources, re.MULTILINE) and grabber.count("export default") == 1
    assert "class TrackFrames" in sources and "new TrackFrames" in grabber


def test_the_page_reports_where_frames_come_from(grabber):
    assert (grabber.source, grabber.cameras, grabber.device_id) == ("", [], "")
    cameras = [{"id": "cam-1", "label": "Front"}, {"id": "cam-2", "label": "Back"}]
    grabber.set_state({"source": "camera_stream", "cameras": cameras})
    assert (grabber.source, grabber.cameras) == ("camera_stream", cameras)
    grabber.set_state({"source": "direct", "device_id": "cam-2"})
    assert (grabber.source, grabber.device_id) == ("direct", "cam-2")
    # Only the page knows which path it took; a path we do not know is refused.
    with pytest.raises(traitlets.TraitError, match="read-only"):
        grabber.source = "camera_stream"
    with pytest.raises(traitlets.TraitError, match="source"):
        grabber.set_state({"source": "webcam"})
    assert grabber.source == "direct"


def test_camera_constraints():
    assert camera_constraints() == {"audio": False, "video": {"width": {"ideal": 640}}}
    assert camera_constraints(320, "cam-2")["video"] == {"width": {"ideal": 320}, "deviceId": {"exact": "cam-2"}}
    assert all(32 <= size <= 4096 for size in INPUT_SIZES) and np.all(np.diff(INPUT_SIZES) > 0)
