"""The camera: an ipywebrtc ``CameraStream`` read by a small anywidget frame grabber of ours.

ipywebrtc's own ``ImageRecorder`` takes one snapshot per kernel request (a few frames/s). The
:class:`FrameGrabber` front end (``static/grabber.js``) instead reads the camera's MediaStream
continuously, scales each new video frame so its long side is at most ``width`` pixels, encodes it
as JPEG and sends it to the kernel as a binary buffer on a custom message (custom messages are
never echoed back, unlike synced traits).

Flow control (the protocol)
---------------------------
- page -> kernel: ``{"type": "frame", "page": str, "seq": int, "captured_at": float, "width": int,
  "height": int}`` with exactly one buffer, the JPEG. ``page`` is a random id each page picks once
  (a widget shown in two JupyterLab tabs has one grabber per tab), an integer 1..2**24-1 as a decimal
  string, which also names the page's frames (:meth:`FrameGrabber.frame_name`); ``captured_at`` is the page's wall
  clock (ms since the Unix epoch) when the camera frame reached the page; ``seq`` increases by one
  per frame.
- kernel -> page: ``{"type": "ack", "page": str, "seq": int, "accepted": bool}`` for every message
  received, as soon as it has been handed on (the engine's ``submit`` never blocks). Every page gets
  every ack and keeps only its own. One page streams at a time: while it sends, another page's frames
  are acknowledged with ``accepted: false`` (counted in ``ignored``) and that page waits a second
  before it tries again.
- The page keeps at most ``max_in_flight`` frames unacknowledged, grabs only when a new video frame
  has arrived since the last grab, and never more often than ``max_fps`` (0 = no cap). A frame not
  acknowledged within 5 s is taken as lost, so a restarted kernel does not stall the page.
- The page grabs only while at least one view of the grabber is attached, the page is visible
  and ``enabled`` is true; otherwise nothing is sent and the engine idles.

Frames are untrusted input: a message with a wrong shape, no or several buffers, more than
``max_bytes`` bytes or no JPEG signature is dropped and counted in ``rejected`` (still
acknowledged). So are the page's clock and the traits it sets: ``captured_at`` goes to the
callbacks mapped onto the kernel's ``clock`` by a :class:`~face3d_nb.live.capture_clock.CaptureClock`
(monotonic, never in the future, at most 5 s old), and every trait the page sets is bounded
(``status`` one of its values, strings and the camera list of limited length). Decoded dimensions
are capped by the engine (``EngineConfig.max_pixels``), which decodes in its worker thread.

The grabber's view shows the frames it sends as the camera preview (at most ``preview_fps``), so
the page need not also play the camera in a ``<video>``, which would redraw the whole page at the
camera's frame rate. Camera denied, no camera or a stream that ends put a clear message in the
page (and in ``status``/``message``), never a traceback.

Where frames come from (``source``, and a line in the page): ipywebrtc's ``CameraStream``
(``camera_stream``) when one is given and ipywebrtc's front end is loaded in the page; otherwise the
page opens the camera itself with ``constraints`` (``direct``). When the browser offers several
cameras the view shows a picker; choosing one sets ``device_id`` and the page opens that camera
itself, also where a ``CameraStream`` was in use: ipywebrtc's ``CameraStream`` opens its stream once,
with the constraints it was made with, and has no way to switch cameras from the page (its
stream stays open until that widget is closed: it is not the grabber's to stop).

The front end is two files joined into one module (anywidget loads one): ``frame_sources.js`` (how
frames are read from a camera track) and ``grabber.js`` (the camera, the protocol and the view).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import anywidget
import traitlets
from ipywebrtc import CameraStream
from ipywidgets import CallbackDispatcher, widget_serialization

from ..live.capture_clock import CaptureClock
from . import MAX_TEXT, STATIC, check_text

__all__ = ["INPUT_SIZES", "STATUSES", "FrameCallback", "FrameGrabber", "camera_constraints"]

log = logging.getLogger(__name__)


#: Input resolutions offered in the app (long side of the frames sent, in pixels).
INPUT_SIZES = (256, 320, 480, 640)

_JPEG_SIGNATURE = b"\xff\xd8\xff"
#: What the page says the camera is doing (``status``).
STATUSES = ("idle", "starting", "streaming", "paused", "hidden", "denied", "no-camera", "ended", "error")
# Bounds on what the page sets: far above any real value, far below trouble.
_MAX_CAMERAS, _MAX_IN_FLIGHT, _MAX_FPS = 32, 16, 240.0
# How long the page streaming now must be silent before another page's frames are taken.
_HANDOVER_S = 1.0
_MAX_PAGE_ID = 64

#: ``callback(jpeg: bytes, captured_at: float seconds on the grabber's ``clock`` (the page's capture
#: time mapped onto it), seq: int)``
FrameCallback = Callable[[bytes, float, int], None]


def camera_constraints(width: int = 640, device_id: str | None = None) -> dict:
    """MediaStream constraints for a video-only camera about ``width`` pixels wide.

    Only the width is asked for: asking for a height too makes browsers crop the camera's picture
    to that aspect ratio.
    """
    video: dict = {"width": {"ideal": width}}
    if device_id:
        video["deviceId"] = {"exact": device_id}
    return {"audio": False, "video": video}


class FrameGrabber(anywidget.AnyWidget):
    """Sends camera frames from the page to the kernel; see the module docstring for the protocol.

    ``clock``: the kernel's clock, seconds, that the frames' capture times are mapped onto
    (``time.time``, the live app engine's, by default).

    Synced traits (set from Python unless noted):

    - ``camera`` (None): the ipywebrtc ``CameraStream`` to read; None opens the camera directly.
    - ``constraints`` (:func:`camera_constraints` ``()``): MediaStream constraints used when the page
      opens the camera itself (no ``camera``, no ipywebrtc front end, or a ``device_id`` chosen).
    - ``width`` (320): long side, in pixels, of the frames sent; frames are never enlarged.
    - ``quality`` (0.8): JPEG quality, 0..1.
    - ``max_in_flight`` (2): most frames sent and not yet acknowledged, 1..16.
    - ``max_fps`` (0.0): most frames sent per second, up to 240; 0 = as many as acknowledgements allow.
    - ``preview_fps`` (5.0): most preview pictures per second shown in the page (the frames sent,
      as sent), up to 240; 0 = no preview. Each one redraws the page, which is costly without a GPU.
    - ``enabled`` (True): False stops grabbing (the camera stays open).
    - ``status`` ("idle", set by the page): ``starting``, ``streaming``, ``paused``, ``hidden``,
      ``denied``, ``no-camera``, ``ended`` or ``error``.
    - ``message`` ("", set by the page): what the page shows the user when something is wrong.
    - ``source`` ("", read-only, set by the page): which path delivers frames, once the camera is
      open: ``camera_stream`` (ipywebrtc's ``CameraStream``) or ``direct`` (the page opened the
      camera itself with getUserMedia); "" until the page reports.
    - ``cameras`` ([], read-only, set by the page): the browser's video inputs, ``{"id", "label"}``
      each, listed once the camera is allowed; with two or more the view shows a picker.
    - ``device_id`` (""): the camera chosen, by its ``id`` in ``cameras``; "" is the browser's
      choice (or the ``CameraStream``'s). Set by the picker, or from Python: the page then opens that
      camera itself (``source`` becomes ``direct``).

    Kernel-only traits:

    - ``max_bytes`` (1_000_000): larger encoded frames are rejected.
    - ``received`` (0): frames accepted and handed to the callbacks.
    - ``rejected`` (0): messages dropped as malformed or oversized.
    - ``ignored`` (0): frames dropped because another page was streaming.
    """

    _esm = "".join((STATIC / name).read_text(encoding="utf-8") for name in ("frame_sources.js", "grabber.js"))
    _css = STATIC / "grabber.css"

    camera = traitlets.Instance(CameraStream, allow_none=True).tag(sync=True, **widget_serialization)
    constraints = traitlets.Dict(camera_constraints()).tag(sync=True)
    width = traitlets.Int(320).tag(sync=True)
    quality = traitlets.Float(0.8).tag(sync=True)
    max_in_flight = traitlets.Int(2).tag(sync=True)
    max_fps = traitlets.Float(0.0).tag(sync=True)
    preview_fps = traitlets.Float(5.0).tag(sync=True)
    enabled = traitlets.Bool(True).tag(sync=True)
    status = traitlets.Enum(STATUSES, "idle").tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)
    source = traitlets.Enum(["", "camera_stream", "direct"], "", read_only=True).tag(sync=True)
    cameras = traitlets.List(traitlets.Dict(), read_only=True).tag(sync=True)
    device_id = traitlets.Unicode("").tag(sync=True)

    max_bytes = traitlets.Int(1_000_000)
    received = traitlets.Int(0, read_only=True)
    rejected = traitlets.Int(0, read_only=True)
    ignored = traitlets.Int(0, read_only=True)

    def __init__(self, camera: CameraStream | None = None, clock: Callable[[], float] = time.time, **kwargs):
        super().__init__(camera=camera, **kwargs)
        self._callbacks = CallbackDispatcher()
        self._capture_clock = CaptureClock(clock)
        self._page, self._page_seen = None, float("-inf")
        self.on_msg(self._handle_message)

    @traitlets.validate("width")
    def _check_width(self, proposal):
        if not 32 <= proposal["value"] <= 4096:
            raise traitlets.TraitError(f"width must be between 32 and 4096 pixels, got {proposal['value']}")
        return proposal["value"]

    @traitlets.validate("quality")
    def _check_quality(self, proposal):
        if not 0.0 < proposal["value"] <= 1.0:
            raise traitlets.TraitError(f"quality must be in (0, 1], got {proposal['value']}")
        return proposal["value"]

    @traitlets.validate("max_in_flight")
    def _check_in_flight(self, proposal):
        if not 1 <= proposal["value"] <= _MAX_IN_FLIGHT:
            raise traitlets.TraitError(f"max_in_flight must be within 1..{_MAX_IN_FLIGHT}, got {proposal['value']}")
        return proposal["value"]

    @traitlets.validate("max_fps", "preview_fps")
    def _check_fps(self, proposal):
        if not (math.isfinite(proposal["value"]) and 0 <= proposal["value"] <= _MAX_FPS):
            raise traitlets.TraitError(f"{proposal['trait'].name} must be within 0..{_MAX_FPS:g}, "
                                       f"got {proposal['value']}")
        return proposal["value"]

    _check_text = traitlets.validate("message", "device_id")(check_text)

    @traitlets.validate("cameras")
    def _check_cameras(self, proposal):
        cameras = proposal["value"]
        if len(cameras) > _MAX_CAMERAS or not all(
                set(c) == {"id", "label"} and all(isinstance(v, str) and len(v) <= MAX_TEXT for v in c.values())
                for c in cameras):
            raise traitlets.TraitError(f"cameras must be at most {_MAX_CAMERAS} {{'id': str, 'label': str}}")
        return cameras

    def on_frame(self, callback: FrameCallback, remove: bool = False) -> None:
        """Register (or with ``remove=True`` unregister) ``callback`` for every accepted frame.

        Callbacks run on the kernel's main thread, in the order frames arrive; keep them short.
        """
        self._callbacks.register_callback(callback, remove=remove)

    def frame_name(self, seq: int) -> str:
        """What the page streaming now calls its frame ``seq``, ``"tag:seq"`` (the page keeps its last
        frames by that name for the 3D view); "" when its id is not such a tag."""
        page = self._page
        # ASCII digits only: int() also reads other scripts' digits, and refuses superscripts isdigit() lets by.
        tagged = isinstance(page, str) and page.isascii() and page.isdecimal() and 0 < int(page) < 2 ** 24
        if tagged and 0 <= seq < 2 ** 24:
            return f"{int(page)}:{seq}"
        return ""

    def _handle_message(self, _widget, content, buffers) -> None:
        if not isinstance(content, dict) or content.get("type") != "frame":
            self._reject("unexpected message %r", content if isinstance(content, dict) else type(content))
            return
        seq, page = content.get("seq"), content.get("page")
        # Echoed to every page: only values a well-behaved page sends go back.
        if not isinstance(page, str) or len(page) > _MAX_PAGE_ID:
            page = None
        if not isinstance(seq, int) or isinstance(seq, bool):
            seq = None
        accepted = self._take_turn(page)
        self.send({"type": "ack", "seq": seq, "page": page, "accepted": accepted})
        captured_ms = content.get("captured_at")
        if not accepted:
            self.set_trait("ignored", self.ignored + 1)
        elif seq is None:
            self._reject("frame without an integer seq")
        elif not isinstance(captured_ms, (int, float)) or not math.isfinite(captured_ms):
            self._reject("frame %s without a valid captured_at", seq)
        elif len(buffers) != 1:
            self._reject("frame %s with %d buffers", seq, len(buffers))
        elif memoryview(buffers[0]).nbytes > self.max_bytes:
            self._reject("frame %s of %d bytes (limit %d)", seq, memoryview(buffers[0]).nbytes, self.max_bytes)
        else:
            data = memoryview(buffers[0]).tobytes()
            if not data.startswith(_JPEG_SIGNATURE):
                self._reject("frame %s is not a JPEG", seq)
                return
            self.set_trait("received", self.received + 1)
            self._callbacks(data, self._capture_clock(captured_ms / 1000.0), seq)

    def _take_turn(self, page) -> bool:
        # Frames from two pages would interleave two cameras in one track: the page streaming now
        # keeps the camera until it has been silent for _HANDOVER_S (e.g. its tab was hidden).
        now = time.monotonic()
        if page != self._page and now - self._page_seen < _HANDOVER_S:
            return False
        self._page, self._page_seen = page, now
        return True

    def _reject(self, reason: str, *args) -> None:
        self.set_trait("rejected", self.rejected + 1)
        # A misbehaving page may send many; say it loudly once, then keep the log readable.
        level = logging.WARNING if self.rejected == 1 else logging.DEBUG
        log.log(level, "dropped a camera message: " + reason, *args)
