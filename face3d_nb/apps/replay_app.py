"""ReplayApp: a recorded session played back into the 3D viewer and the pose plots, as one widget.

``face3d-nb replay FILE`` serves ``notebooks/replay.ipynb`` with Voila and passes the recording in
the ``FACE3D_REPLAY`` environment variable (and the detail level in ``FACE3D_REPLAY_DETAIL``); the
notebook calls :meth:`ReplayApp.from_env`. In a notebook, ``ReplayApp("session.jsonl")`` does the same.
"""

from __future__ import annotations

import html
import logging
import os
import threading
import time
from pathlib import Path

import ipywidgets as widgets

from ..core.detail import DetailLevels
from ..core.pipeline import load_morphable_model
from ..live.events import ErrorEvent, Event, FrameResult
from ..live.recording import read_recording
from ..live.replayer import Replayer
from ..models.store import ModelStore
from ..view.view_modes import VIEWS
from ..widgets.controls import view_controls
from ..widgets.plots import PosePlot
from ..widgets.viewer import FaceViewer
from .open_apps import widget_tree

__all__ = ["ENV_DETAIL", "ENV_FILE", "ReplayApp"]

log = logging.getLogger(__name__)

ENV_FILE, ENV_DETAIL = "FACE3D_REPLAY", "FACE3D_REPLAY_DETAIL"
SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0)
# The position line changes every frame; a few updates a second are plenty for people.
_STATUS_INTERVAL = 0.25


class ReplayApp(widgets.VBox):
    """Plays the recording at ``path`` into a 3D view and pose plots, starting at once.

    ``detail``: mesh detail level (``"full"``, ``"medium"``, ``"low"``); ``store``: where the models
    live (default :class:`~face3d_nb.models.store.ModelStore` ()); ``autoplay``: start playing as soon as
    a page shows the app (the viewer's link hears from it), not before: in Voila the notebook
    runs before the page has loaded.
    Raises :class:`~face3d_nb.live.recording.RecordingError` for a file that is not a recording and
    :class:`~face3d_nb.models.store.ModelsMissingError` when the models are not installed.

    Under the player, the viewer's view controls (:func:`~face3d_nb.widgets.controls.view_controls`):
    every view but the camera texture, as a recording keeps no pictures (over the frame, the faces
    are drawn in its pixel space on a blank background).

    Attributes: ``replayer`` (:class:`~face3d_nb.live.replayer.Replayer`), ``viewer``, ``plot``,
    ``header`` (the recording's header line).
    """

    def __init__(self, path: str | Path, detail: str = "full", *, store: ModelStore | None = None,
                 autoplay: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.add_class("face3d-replay")
        self.path = Path(path)
        self.header, frames = read_recording(self.path)
        levels = DetailLevels(load_morphable_model((store or ModelStore()).resolve()))
        mesh = levels.detail(detail)
        # At most MAX_FACES: read_recording refuses frames with more.
        self.viewer = FaceViewer(levels, max_faces=max([len(f.faces) for f in frames] + [1]))
        self.plot = PosePlot()
        self.replayer = Replayer(frames, levels, detail)
        self._closed = False
        self._error = ""
        self._last_status = 0.0
        self._status_lock = threading.Lock()

        self.play_button = widgets.ToggleButton(description="Play")
        self.play_button.add_class("face3d-replay-play")
        restart = widgets.Button(description="Restart")
        restart.add_class("face3d-replay-restart")
        speed = widgets.Dropdown(description="Speed", options=[(f"{s:g}x", s) for s in SPEEDS], value=1.0,
                                 layout=widgets.Layout(width="11em"), style={"description_width": "4em"})
        loop = widgets.Checkbox(description="Loop", indent=False, layout=widgets.Layout(width="6em"))
        self.status = widgets.HTML()
        self.status.add_class("face3d-replay-status")
        self.play_button.observe(self._on_play, "value")
        restart.on_click(lambda _button: self._restart())
        speed.observe(lambda change: setattr(self.replayer, "speed", change["new"]), "value")
        loop.observe(lambda change: setattr(self.replayer, "loop", change["new"]), "value")

        self.replayer.subscribe(self._show)
        self.replayer.subscribe(self.plot)
        self.replayer.subscribe(self._on_frame)
        duration = frames[-1].t if frames else 0.0
        title = (f"<b>Replay</b> of {html.escape(self.path.name)}: {len(frames)} frames, {duration:.1f} s, "
                 f"{detail} mesh detail ({len(mesh.vertices):,} vertices)")
        # A recording keeps no pictures: no camera texture, and the frame's space is blank behind the faces.
        views, self._view_links = view_controls(self.viewer, tuple(v for v in VIEWS if v != "texture"))
        self.children = [widgets.HTML(title), widgets.HBox([self.viewer.renderer, self.plot]),
                         widgets.HBox([self.play_button, restart, speed, loop, self.status]), widgets.HBox(views),
                         self.viewer.link]
        self._render_status()
        if autoplay and frames:
            self.viewer.link.observe(self._page_ready, "pages")

    def _page_ready(self, _change) -> None:
        self.viewer.link.unobserve(self._page_ready, "pages")
        self.play_button.value = True

    @classmethod
    def from_env(cls, **kwargs) -> ReplayApp:
        """The app for the recording named by ``$FACE3D_REPLAY`` (detail from ``$FACE3D_REPLAY_DETAIL``)."""
        path = os.environ.get(ENV_FILE)
        if not path:
            raise RuntimeError(f"set {ENV_FILE} to the recording to play (face3d-nb replay FILE does this)")
        return cls(path, os.environ.get(ENV_DETAIL, "full"), **kwargs)

    def _on_play(self, change) -> None:
        if change["new"]:
            self.replayer.play()
        else:
            self.replayer.pause()
        self.play_button.description = "Pause" if change["new"] else "Play"

    def _restart(self) -> None:
        self._error = ""
        self.plot.clear()
        self.replayer.restart()
        self.play_button.value = True

    def _show(self, event: Event) -> None:
        if isinstance(event, FrameResult):
            self.viewer.show(event)

    def _on_frame(self, event: Event) -> None:
        # On the replay thread: throttle, say at once when a frame could not be played, and when
        # the last frame has gone (played or not).
        if isinstance(event, ErrorEvent):
            self._error = event.error
        done = self.replayer.position + 1 >= len(self.replayer.frames) and not self.replayer.loop
        now = time.monotonic()
        if done or isinstance(event, ErrorEvent) or now - self._last_status >= _STATUS_INTERVAL:
            self._last_status = now
            self._render_status(self.replayer.position + 1)
        if done:
            self.play_button.value = False

    def _render_status(self, shown: int = 0) -> None:
        with self._status_lock:
            frames = self.replayer.frames
            t = frames[shown - 1].t if shown else 0.0
            error = f" <span class='face3d-replay-error'>{html.escape(self._error)}</span>" if self._error else ""
            self.status.value = (f"<span class='face3d-replay-frame'>{shown}</span> / {len(frames)} frames · "
                                 f"{t:.2f} s{error}")

    def close(self) -> None:
        """Stop playing and close every widget."""
        if self._closed:
            return
        self._closed = True
        self.replayer.pause()
        for link in self._view_links:
            link.unlink()
        self.plot.close()
        self.viewer.close()
        for widget in widget_tree(self):
            if widget is not self:
                widget.close()
        super().close()
