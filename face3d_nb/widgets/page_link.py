"""PageLink: the kernel's line to the page that shows the viewer.

A small anywidget (front end ``static/page_link.js``) that tells the kernel when a page has loaded,
what its GPU can do and how fast it answers, acknowledges coefficient updates, and gives each
update the camera frame it names. The viewer chooses and paces its mesh transport with it; the app
chooses its starting settings.

The protocol between the kernel and the page
--------------------------------------------
One table for the viewer's whole conversation with the page (``static/page_link.js`` and
``static/face.vert`` point here). "Applied" means three.js has the update; it is drawn at the
next animation frame.

===================  ==============================================  ==========================================
direction            message or trait                                answer, and what the kernel does with it
===================  ==============================================  ==========================================
page -> kernel       ``{"type": "hello", "renderer": str}``, once    the kernel counts the page (``pages``),
                     per page load; the WebGL renderer's name ("" if  keeps ``renderer`` and times the link to
                     hidden)                                         the page with :data:`FIRST_PINGS`
page -> kernel       trait ``gpu_decode``, once per page: ``"ok"``   the viewer may send coefficients (found
                     or why the page cannot decode on its GPU        out by drawing: a vertex shader fetches a
                                                                     half-float texel that is read back)
kernel -> page       ``{"type": "ping", "id": int}``, zero or one    ``{"type": "pong", "id": int}`` at once;
                     buffer of any size                              the round trip goes to ``round_trips``
kernel -> page       position update: a face's ``position``          pythreejs's front end bumps the
                     ``BufferAttribute.array`` reassigned            attribute's ``version`` trait: applied
kernel -> page       coefficient update: a face material's           ``{"type": "applied", "seq": float}``,
                     ``uniforms``, with a ``seq`` uniform            for materials listed in ``materials``
                                                                     (and for a material's current uniforms
                                                                     when it starts being watched)
kernel -> page       ``{"type": "frame", "name": "0:n"}`` with one   none: the page decodes it and keeps the
                     buffer, a JPEG: a frame the page does not have  last four; sent before the updates
                     (the kernel's own, e.g. of an image)            naming it
page (camera)        each frame the grabber sends, named             kept (the last 16), while ``keep_frames``
                     ``"tag:seq"`` (its page tag and ``seq``)        (a look that draws the frame)
kernel -> page       an update naming a frame: the ``frameName``     before the update is drawn, the page puts
                     uniform (coefficients, and the uniforms of a    that frame in the update's material's
                     position mesh), or the array's header rows      ``frame`` texture and in ``frame_texture``
                     (positions with ``headers``)                    (the frame quad): exactly the frame the
                                                                     parameters came from; a frame not (yet)
                                                                     there draws blank, and is drawn when it
                                                                     arrives unless a newer update came first
===================  ==============================================  ==========================================

Windows, what may be unanswered at once: one ping, and one measurement's pings queued (a hello
while some are queued adds none, so a page saying hello in a loop queues nothing more); per face
mesh, the transport's ``window`` of updates
(:class:`~face3d_nb.widgets.position_transport.PositionTransport`: 1,
:class:`~face3d_nb.widgets.coefficient_transport.CoefficientTransport`: 3). Updates produced
meanwhile wait, newest wins.

Acknowledgements: every update has a ``seq``; an acknowledgement of ``seq`` ends that update and
any older one of the same face mesh (:meth:`~face3d_nb.widgets.mesh_pool.MeshPool.applied`).

Timeout: :data:`ACK_TIMEOUT` seconds, for every answer above (the defaults of the link's
``ping_timeout`` and the viewer's ``ack_timeout``). An unanswered ping is given up; an unacknowledged
update counts as lost and makes room for the next one, so a page that comes back is served again.

Every page showing the widgets answers, so with several pages open the first answer counts.

What the page sends is untrusted: messages of unknown shape are ignored, ``renderer`` is cut to 200
characters and the strings the page can set (``gpu_decode``, ``note``, ``message``) are refused
beyond :data:`~face3d_nb.widgets.MAX_TEXT` characters.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

import anywidget
import pythreejs as three
import traitlets
from ipywidgets import CallbackDispatcher, widget_serialization

from ..view.transport_choice import RoundTrips
from . import MAX_TEXT, STATIC, check_text

__all__ = ["ACK_TIMEOUT", "FIRST_PINGS", "MAX_TEXT", "PageLink"]

log = logging.getLogger(__name__)

#: Seconds after which an unanswered ping or mesh update is given up (see the protocol above).
ACK_TIMEOUT = 5.0
#: A first measurement: three small pings for the round trip, one of 256 KB for the throughput.
FIRST_PINGS = (0, 0, 0, 262_144)
# WebGL renderer names of the CPU rasterisers browsers fall back to without a usable GPU.
_SOFTWARE = re.compile(r"swiftshader|llvmpipe|softpipe|software|basic render", re.IGNORECASE)


class PageLink(anywidget.AnyWidget):
    """Capability check, round-trip timing and update acknowledgements; see the module docstring.
    ``clock`` times the pings (seconds); ``round_trips`` (a
    :class:`~face3d_nb.view.transport_choice.RoundTrips`) keeps what they measured.

    Traits:

    - ``materials`` (()): ``ShaderMaterial`` s whose uniform updates the page acknowledges (and
      whose ``frameName`` uniform names their frame).
    - ``headers`` (()): ``[position BufferAttribute, ShaderMaterial]`` pairs: the position meshes whose
      arrays end with a frame header (:meth:`~face3d_nb.view.view_modes.FaceFrame.header`), which the
      page copies into the material's uniforms.
    - ``frame_texture`` (None): the texture the page shows the newest drawn update's frame in.
    - ``keep_frames`` (False): whether the page keeps its camera's frames for the view.
    - ``gpu_decode`` ("", set by the page): ``"ok"`` or why the page cannot decode on its GPU.
    - ``note`` (""): a line shown where the widget is displayed (hidden when empty): the app says
      there why it starts with its settings.
    - ``message`` (""): a line shown below it (hidden when empty); the viewer's transport message.
    - ``ping_timeout`` (:data:`ACK_TIMEOUT`, kernel only): seconds after which an unanswered ping is
      given up.
    - ``pages`` (0, read-only): page loads so far (each says hello).
    - ``renderer`` ("", read-only): the last page's WebGL renderer name; see :attr:`software`.
    - ``rtt_ms`` (NaN, read-only): the round trip to the page, ms, as of the last measurement.
    """

    _esm = "".join((STATIC / name).read_text(encoding="utf-8") for name in ("frame_store.js", "page_link.js"))
    _css = STATIC / "face3d.css"

    materials = traitlets.List(traitlets.Instance(three.ShaderMaterial)).tag(sync=True, **widget_serialization)
    headers = traitlets.List(traitlets.List()).tag(sync=True, **widget_serialization)
    frame_texture = traitlets.Instance(three.Texture, allow_none=True).tag(sync=True, **widget_serialization)
    keep_frames = traitlets.Bool(False).tag(sync=True)
    gpu_decode = traitlets.Unicode("").tag(sync=True)
    note = traitlets.Unicode("").tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)
    ping_timeout = traitlets.Float(ACK_TIMEOUT)
    pages = traitlets.Int(0, read_only=True)
    renderer = traitlets.Unicode("", read_only=True)
    rtt_ms = traitlets.Float(math.nan, read_only=True)

    def __init__(self, clock: Callable[[], float] = time.monotonic, **kwargs):
        super().__init__(**kwargs)
        self._clock = clock
        self.round_trips = RoundTrips()
        self._lock = threading.Lock()
        self._queue: deque[int] = deque()
        self._in_flight: tuple[int, int, float] | None = None
        self._next_id = 0
        self._applied = CallbackDispatcher()
        self.on_msg(self._handle_message)

    _check_text = traitlets.validate("gpu_decode", "note", "message")(check_text)

    def on_applied(self, callback: Callable[[float], None], remove: bool = False) -> None:
        """Register ``callback(seq)`` for every acknowledged uniforms update (kernel main thread)."""
        self._applied.register_callback(callback, remove=remove)

    def measure(self, sizes: Iterable[int] = FIRST_PINGS) -> None:
        """Time the link with pings of ``sizes`` bytes (any thread); they go out one at a time, after
        the one in flight, if any. While pings of an earlier measurement are still queued, those serve
        this request too (they time whichever page answers), so requests (one per hello) never pile up."""
        with self._lock:
            if not self._queue:
                self._queue.extend(int(n) for n in sizes)
            self._send_next()

    def send_frame(self, name: str, jpeg: bytes) -> None:
        """Give the page the frame ``name`` (``"0:n"``), a JPEG, for the updates that name it (any thread)."""
        self.send({"type": "frame", "name": name}, buffers=[jpeg])

    @property
    def software(self) -> bool:
        """Whether the page draws 3D on the CPU (no usable GPU): every frame drawn is costly there."""
        return bool(_SOFTWARE.search(self.renderer))

    @property
    def measuring(self) -> bool:
        with self._lock:
            return bool(self._queue) or self._in_flight is not None

    def _send_next(self) -> None:
        if self._in_flight is not None:
            if self._clock() - self._in_flight[2] < self.ping_timeout:
                return
            log.debug("ping %d unanswered, given up", self._in_flight[0])
            self._in_flight = None
        if not self._queue:
            return
        nbytes = self._queue.popleft()
        self._next_id += 1
        self._in_flight = (self._next_id, nbytes, self._clock())
        self.send({"type": "ping", "id": self._next_id}, buffers=[bytes(nbytes)] if nbytes else None)

    def _handle_message(self, _widget, content, _buffers) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "applied" and isinstance(content.get("seq"), (int, float)):
            self._applied(content["seq"])
        elif kind == "hello":
            renderer = content.get("renderer")
            self.set_trait("renderer", renderer[:200] if isinstance(renderer, str) else "")
            self.set_trait("pages", self.pages + 1)
            self.measure()
        elif kind == "pong":
            with self._lock:
                if self._in_flight is None or content.get("id") != self._in_flight[0]:
                    return
                _, nbytes, sent = self._in_flight
                self.round_trips.add(nbytes, self._clock() - sent)
                self._in_flight = None
                self._send_next()
                finished = self._in_flight is None
            if finished:
                # Observers may use the link: not under the lock.
                round_trip = self.round_trips.round_trip
                self.set_trait("rtt_ms", math.nan if round_trip is None else round_trip * 1000)
        else:
            log.debug("ignored a page message %r", content)
