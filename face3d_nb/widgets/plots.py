"""Live plots of head pose and expression over the last seconds, drawn on a canvas in the page.

:class:`PosePlot` is an engine subscriber (``engine.subscribe(plot)``): per processed frame it keeps
yaw, pitch and roll (degrees) and the first ``n_expression`` expression parameters of one face (the
lowest track id; gaps when there is none). It batches them and sends at most ``rate`` small binary
messages a second, so the mesh updates do not wait for it and the page redraws at most that often.
The front end (``static/plots.js``) keeps the last ``window`` seconds and draws two panels.

The protocol (custom messages)
------------------------------
- kernel -> page: ``{"type": "samples", "rows": n, "columns": 4 + n_expression}`` with one buffer
  of ``rows x columns`` float64, row-major: time (seconds since the epoch on the engine's clock,
  ``time.time`` in the app), yaw, pitch, roll, expression 1..n; NaN where there was no face.
- kernel -> page: ``{"type": "clear"}`` forgets every sample.
- page -> kernel: ``{"type": "hello"}`` when the page first shows the plot (also after a reload):
  the kernel answers with a clear and the samples of the last ``window`` seconds it keeps.
- page -> kernel: ``{"type": "cost", "draws": int, "draw_ms": float}`` about every 2 s while it
  draws: draws since the last report and their mean time (the plot's cost in the page).

Times are the caller's; the kernel keeps what it holds bounded whatever they are. A sample earlier
than the newest one held (the clock went back, or the newest was a wild stamp far ahead) drops the
samples after it, here and, with a clear and a resend, in the page; otherwise neither side would
trim again until time caught up with the wild stamp. The synced traits are bounded too (``window``
at most :data:`MAX_WINDOW` seconds), so a page cannot make the kernel keep hours of samples.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable

import anywidget
import numpy as np
import traitlets

from ..core.morphable import N_SHAPE
from . import STATIC

__all__ = ["MAX_WINDOW", "PosePlot"]

log = logging.getLogger(__name__)

#: Longest ``window`` in seconds: at 30 frames/s, 18,000 samples kept for a page that shows up.
MAX_WINDOW = 600.0
_MAX_SIDE = 4096

_EXPRESSION_START = 12 + N_SHAPE


class PosePlot(anywidget.AnyWidget):
    """Head pose and expression of the tracked face over the last ``window`` seconds.

    Call it with each engine event (it is an engine subscriber), or :meth:`add` samples directly.

    Traits:

    - ``window`` (10.0, synced): seconds shown, up to :data:`MAX_WINDOW`.
    - ``n_expression`` (4, synced): expression parameters plotted (the first ones), 0..10.
    - ``width``, ``height`` (480, 220, synced): canvas size in CSS pixels, 1..4096.
    - ``rate`` (10.0, kernel only): most messages sent per second; samples wait in a batch between.
    - ``sent_messages``, ``sent_bytes`` (0, read-only): messages and payload bytes sent so far.
    - ``draw_ms`` (NaN, read-only): mean time the page took per redraw, as it last reported.
    - ``draws`` (0, read-only): redraws the page reported.
    """

    _esm = STATIC / "plots.js"

    window = traitlets.Float(10.0).tag(sync=True)
    n_expression = traitlets.Int(4).tag(sync=True)
    width = traitlets.Int(480).tag(sync=True)
    height = traitlets.Int(220).tag(sync=True)
    rate = traitlets.Float(10.0)
    sent_messages = traitlets.Int(0, read_only=True)
    sent_bytes = traitlets.Int(0, read_only=True)
    draw_ms = traitlets.Float(math.nan, read_only=True)
    draws = traitlets.Int(0, read_only=True)

    def __init__(self, clock: Callable[[], float] = time.monotonic, **kwargs):
        self._clock = clock
        self._lock = threading.Lock()
        self._batch: list[np.ndarray] = []
        # The last ``window`` seconds, for a page that shows the plot later (or again).
        self._history: deque[np.ndarray] = deque()
        self._last_sent = -math.inf
        super().__init__(**kwargs)
        self.on_msg(self._handle_message)

    @traitlets.validate("window", "rate")
    def _check_positive(self, proposal):
        if not (math.isfinite(proposal["value"]) and proposal["value"] > 0):
            raise traitlets.TraitError(f"{proposal['trait'].name} must be positive, got {proposal['value']}")
        if proposal["trait"].name == "window" and proposal["value"] > MAX_WINDOW:
            raise traitlets.TraitError(f"window must be at most {MAX_WINDOW:g} s, got {proposal['value']}")
        return proposal["value"]

    @traitlets.validate("width", "height")
    def _check_size(self, proposal):
        if not 1 <= proposal["value"] <= _MAX_SIDE:
            raise traitlets.TraitError(f"{proposal['trait'].name} must be within 1..{_MAX_SIDE}, "
                                       f"got {proposal['value']}")
        return proposal["value"]

    @traitlets.validate("n_expression")
    def _check_expression(self, proposal):
        if not 0 <= proposal["value"] <= 10:
            raise traitlets.TraitError(f"n_expression must be within 0..10, got {proposal['value']}")
        return proposal["value"]

    @traitlets.observe("n_expression")
    def _columns_changed(self, _change):
        if self.comm is not None:
            self.clear()

    def __call__(self, event) -> None:
        """An engine event: a result adds one sample (NaN values when it has no face); errors are ignored."""
        faces = getattr(event, "faces", None)
        if faces is None:
            return
        if faces:
            face = min(faces, key=lambda f: f.track_id).face
            pose = (face.pose.yaw, face.pose.pitch, face.pose.roll)
            self.add(event.captured_at, pose, face.params[_EXPRESSION_START:_EXPRESSION_START + self.n_expression])
        else:
            self.add(event.captured_at, None, None)

    def add(self, t: float, pose: tuple[float, float, float] | None, expression) -> None:
        """One sample at ``t`` seconds: ``pose`` (yaw, pitch, roll) degrees and ``expression``
        (the first ``n_expression`` parameters), or None for a gap. Any thread; never blocks on the page.
        A sample earlier than the newest one drops those after it (see the module docstring); a ``t``
        that is not finite is a ``ValueError``."""
        if not math.isfinite(t):
            raise ValueError(f"sample time must be finite, got {t}")
        row = np.full(4 + self.n_expression, np.nan)
        row[0] = t
        if pose is not None:
            row[1:4] = pose
            values = np.asarray(expression, np.float64).reshape(-1)[: self.n_expression]
            row[4:4 + len(values)] = values
        with self._lock:
            if self._history and self._history[-1][0] > t:
                self._went_back(t)
            self._batch.append(row)
            self._history.append(row)
            while self._history and self._history[0][0] < t - self.window:
                self._history.popleft()
            now = self._clock()
            if now - self._last_sent < 1.0 / self.rate:
                return
            self._last_sent = now
            batch, self._batch = self._batch, []
            self._send_batch(batch)

    def flush(self) -> None:
        """Send the samples waiting in the batch now."""
        with self._lock:
            batch, self._batch = self._batch, []
            if batch:
                self._last_sent = self._clock()
                self._send_batch(batch)

    def _went_back(self, t: float) -> None:
        # Under the lock. The page trims by its newest sample too: it starts over from what is kept.
        while self._history and self._history[-1][0] > t:
            self._history.pop()
        self._resend()

    def _resend(self) -> None:
        # Under the lock: the page forgets its samples and gets those kept here, the batch's among them.
        self._batch = []
        self.send({"type": "clear"})
        if self._history:
            self._send_batch(list(self._history))

    def clear(self) -> None:
        """Forget every sample, here and in the page."""
        with self._lock:
            self._batch = []
            self._history.clear()
            self.send({"type": "clear"})

    def _send_batch(self, batch: list[np.ndarray]) -> None:
        # A change of n_expression mid-batch leaves rows of two widths: keep the current ones.
        columns = 4 + self.n_expression
        data = np.ascontiguousarray([row for row in batch if len(row) == columns], np.float64).reshape(-1, columns)
        self.send({"type": "samples", "rows": len(data), "columns": columns}, [data.tobytes()])
        self.set_trait("sent_messages", self.sent_messages + 1)
        self.set_trait("sent_bytes", self.sent_bytes + data.nbytes)

    def _handle_message(self, _widget, content, _buffers) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "hello":
            with self._lock:
                self._resend()
            return
        if kind != "cost":
            log.debug("ignored a message from the page: %r", content)
            return
        draws, draw_ms = content.get("draws"), content.get("draw_ms")
        if isinstance(draws, int) and isinstance(draw_ms, (int, float)) and math.isfinite(draw_ms):
            self.set_trait("draws", self.draws + draws)
            self.set_trait("draw_ms", float(draw_ms))
