"""FaceApp: camera -> engine -> 3D mesh, with controls and live stats, as one widget.

Data flows one way: the page's frame grabber hands JPEG frames to :meth:`Engine.submit` (kernel
main thread, never blocks); the engine's worker reconstructs and calls back with each result, which
goes to the viewer (ack-paced mesh updates, sent from the worker as the engine's subscriber
contract allows), the pose plots and, when the 2D landmark view is shown, an overlay thread that
draws and encodes the newest result a few times a second; a stats thread refreshes the panel once a
second. Settings flow from the controls to the engine and the grabber. Once the page has loaded,
the round trip to it is measured and sets the mesh detail and camera input size (the page says
so). The save buttons deliver the current mesh, its UV texture, a screenshot and session
recordings as browser downloads.

When the models are not installed the app shows what is missing and a button that downloads them
(with a progress bar), then starts; running without the Basel Face Model, it offers that too, with
the same consent checkbox. :meth:`FaceApp.close` stops the engine, the overlay and stats
threads and the camera, stops any download in progress, keeps a running recording on disk, and
closes every widget.

One app runs per kernel: a new app closes the ones before it, and apps still open when the kernel
shuts down are closed then (:mod:`~face3d_nb.apps.open_apps`).
"""

from __future__ import annotations

import dataclasses
import html
import logging
import threading
import time
from pathlib import Path

import cv2
import ipywidgets as widgets
import numpy as np
from ipywebrtc import CameraStream

from ..core.export import draw_overlay
from ..core.pipeline import Reconstructor
from ..core.runtime import CUDA_FALLBACK, cuda_available
from ..live.config import EngineConfig
from ..live.engine import Engine
from ..live.events import ErrorEvent, FrameResult
from ..live.handoff import Handoff
from ..live.performance_log import PerformanceLog
from ..models.store import ModelsMissingError, ModelStore
from ..models.uv_layout import uv_layout
from ..view.page_defaults import defaults_for
from ..widgets.camera import FrameGrabber, camera_constraints
from ..widgets.controls import ControlPanel, StatsPanel
from ..widgets.model_download import ModelDownload
from ..widgets.plots import PosePlot
from ..widgets.save_panel import SavePanel
from ..widgets.viewer import FaceViewer
from .app_settings import app_settings, verbose_logging
from .open_apps import release, take_over, widget_tree

__all__ = ["FaceApp"]

log = logging.getLogger(__name__)

# The 2D view is a convenience: a few pictures a second are enough.
_OVERLAY_INTERVAL = 0.2
_STATS_INTERVAL = 1.0
_JOIN_TIMEOUT = 10.0
# Frames from the page are untrusted: far above any camera we ask for (640x480), far below memory trouble.
_MAX_FRAME_BYTES = 1_000_000
_MAX_FRAME_PIXELS = 1920 * 1080
# A worker busy this long with one frame is stuck (a frame takes milliseconds): close the rest anyway.
_STOP_TIMEOUT = 5.0
_BFM_OFFER = ("The mesh is the mean face: the Basel Face Model, which adds identity and expressions, is not "
              "installed. It is for academic use only; tick the box to agree and download it.")


class FaceApp(widgets.VBox):
    """The live 3D face app: ``display(FaceApp())`` in a notebook or Voila.

    ``config``: engine settings (default :class:`EngineConfig` ()), or the path of a settings file
    (:mod:`~face3d_nb.live.settings_file`: our keys or the seed's sections) whose camera input size,
    mesh transport and mesh detail, where it sets them, the app keeps over its own choices;
    ``store``: where models live (default :class:`ModelStore` ()); ``reconstructor``: already
    loaded models to use instead; ``camera_width``: the width in pixels asked of the camera;
    ``link_defaults``: once the page has loaded, choose the mesh detail and camera input size from
    the measured round trip to it and whether it draws 3D without a GPU (False keeps
    ``config.detail`` and the default input size).

    Attributes once running: ``engine``, ``viewer``, ``camera`` (ipywebrtc ``CameraStream``),
    ``grabber``, ``controls``, ``stats_panel``, ``frame_view``, ``plot`` (pose plots), ``save_panel``
    (save buttons), ``provider_note``; ``viewer.link`` shows why the app starts with its settings.
    Until the models are installed they are None and the app shows the download panel.

    ``start_settings``: the starting settings the app chose from the page's first round-trip
    measurement (:func:`~face3d_nb.view.page_defaults.defaults_for`: ``rtt_ms``, ``detail``,
    ``input_size`` and the ``reason`` the page shows) and applied to the controls; None until that
    measurement arrives, and always None with ``link_defaults=False``. ``settings``: what ``config``
    came to (:class:`~face3d_nb.live.settings_file.Settings`); ``performance_log``: the per-frame
    :class:`~face3d_nb.live.performance_log.PerformanceLog` the file asked for (closed by
    :meth:`close`), or None.
    """

    def __init__(self, config: EngineConfig | str | Path | None = None, *, store: ModelStore | None = None,
                 reconstructor: Reconstructor | None = None, camera_width: int = 640, link_defaults: bool = True,
                 **kwargs):
        super().__init__(**kwargs)
        self.add_class("face3d-app")
        self.settings = app_settings(config)
        take_over(self)
        if self.settings.verbose:
            verbose_logging()
        self.config = self.settings.engine.replace(max_encoded_bytes=_MAX_FRAME_BYTES, max_pixels=_MAX_FRAME_PIXELS)
        self.store = store or ModelStore()
        self.camera_width = camera_width
        self.engine: Engine | None = None
        self.viewer: FaceViewer | None = None
        self.camera: CameraStream | None = None
        self.grabber: FrameGrabber | None = None
        self.controls: ControlPanel | None = None
        self.stats_panel: StatsPanel | None = None
        self.frame_view: widgets.Image | None = None
        self.plot: PosePlot | None = None
        self.save_panel: SavePanel | None = None
        self.provider_note: widgets.HTML | None = None
        self.performance_log: PerformanceLog | None = None
        self.link_defaults = link_defaults
        self.start_settings = None
        self._levels = None
        self._latest: FrameResult | None = None
        self._uv: np.ndarray | None = None
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._unsubscribe = None
        self._overlay: Handoff[FrameResult] | None = None
        try:
            reconstructor = reconstructor or self._load_models(self.config.provider)
        except ModelsMissingError as exc:
            self.children = [self._download_panel(str(exc))]
            return
        self._start(reconstructor)

    def _load_models(self, provider: str) -> Reconstructor:
        return Reconstructor.installed(self.config.arch, threads=self.config.threads, provider=provider,
                                       store=self.store, detect_size=self.config.detect_size)

    # -- running ---------------------------------------------------------------------------
    def _start(self, reconstructor: Reconstructor) -> None:
        with self._lock:
            if self._closed.is_set():
                return
            constraints = camera_constraints(self.camera_width)
            self.viewer = FaceViewer(reconstructor.levels, max_faces=self.config.max_faces)
            self.controls = ControlPanel(self.viewer, smoothing=self.config.smoothing, max_fps=self.config.max_fps,
                                         frame_skip=self.config.frame_skip, detail=self.config.detail,
                                         provider=self.config.provider)
            self.controls.input_size = self.settings.input_size or self.controls.input_size
            self.viewer.transport = self.settings.transport or self.viewer.transport
            self.viewer.view = self.settings.view or self.viewer.view
            if self.settings.over_frame is not None:
                self.viewer.over_frame = self.settings.over_frame
            self.camera = CameraStream(constraints=constraints)
            self.grabber = FrameGrabber(self.camera, constraints=constraints, width=self.controls.input_size,
                                        max_fps=self.config.max_fps, max_bytes=_MAX_FRAME_BYTES)
            self.frame_view = widgets.Image(format="jpeg", layout=widgets.Layout(width="320px", display="none"))
            self.frame_view.add_class("face3d-frame-view")
            self.stats_panel = StatsPanel()
            self.plot = PosePlot()
            self.provider_note = widgets.HTML()
            self.provider_note.add_class("face3d-provider-note")
            self._show_provider(self.config.provider)
            self._levels = reconstructor.levels
            self.engine = Engine(self.config, reconstructor=reconstructor, clock=time.time)
            self._overlay = Handoff(self._draw_overlay, interval=_OVERLAY_INTERVAL, name="face3d-overlay")
            self.save_panel = SavePanel(self.viewer.renderer, lambda: self._latest,
                                        lambda detail: self._levels.detail(detail).triangles, self.engine.subscribe,
                                        uv=self._uv_layout,
                                        header={"arch": reconstructor.paths.arch,
                                                "model": "bfm" if reconstructor.model.full else "mean"})
            self._unsubscribe = self.engine.subscribe(self._on_event)
            if self.settings.performance_log is not None:
                self.performance_log = PerformanceLog.attach(self.engine, self.settings.performance_log)
            self.engine.subscribe(self.plot)
            if self.link_defaults:
                self.viewer.link.observe(self._on_link, "rtt_ms")
            self.grabber.on_frame(self._on_frame)
            self.controls.observe(self._on_setting, ["paused", "input_size", "max_fps", "frame_skip", "smoothing",
                                                     "detail", "provider", "show_frame"])
            self.engine.start()
            self._spawn(self._refresh_stats, "face3d-stats")
            # The grabber's preview shows the camera; the CameraStream's own <video> view would
            # redraw the page at the camera's full frame rate for nothing.
            side = widgets.VBox([self.grabber, self.frame_view],
                                layout=widgets.Layout(padding="0 0 0 1em"))
            self.children = [
                widgets.HBox([self.viewer.renderer, side]),
                self.save_panel,
                # Says why the app starts with its settings, and when the page cannot decode meshes on
                # its GPU or the link is slow.
                self.viewer.link,
                self.provider_note,
                *([] if reconstructor.model.full else [self._download_panel(_BFM_OFFER, bfm_only=True)]),
                self.controls,
                widgets.HBox([widgets.VBox([widgets.HTML("<b>Live stats</b>"), self.stats_panel],
                                           layout=widgets.Layout(padding="0 2em 0 0")),
                              widgets.VBox([widgets.HTML("<b>Pose and expression</b>"), self.plot])]),
            ]

    def _on_frame(self, jpeg: bytes, captured_at: float, seq: int) -> None:
        self.engine.submit(jpeg, captured_at=captured_at, seq=seq)

    def _on_event(self, event: FrameResult | ErrorEvent) -> None:
        # On the engine's worker: only what the subscriber contract allows there (the mesh update
        # is a widget message); the 2D view's drawing and JPEG encoding go to the overlay thread.
        if isinstance(event, ErrorEvent):
            return
        self._latest = event
        self.viewer.show(event, self.grabber.frame_name(event.seq))
        if self.controls.show_frame and event.frame is not None:
            self._overlay.offer(event)

    def _draw_overlay(self, event: FrameResult) -> None:
        ok, jpeg = cv2.imencode(".jpg", draw_overlay(event.frame, [f.face for f in event.faces]))
        if ok:
            self.frame_view.value = jpeg.tobytes()

    def _on_setting(self, change) -> None:
        name, value = change["name"], change["new"]
        if name == "paused":
            self.grabber.enabled = not value
            (self.engine.pause if value else self.engine.resume)()
        elif name == "input_size":
            self.grabber.width = value
        elif name == "show_frame":
            self.frame_view.layout.display = None if value else "none"
        elif name == "provider":
            self._switch_provider(value)
        else:
            self.engine.update_config(**{name: value})
            if name == "max_fps":
                # No point in the page sending more than the engine will process.
                self.grabber.max_fps = value

    def _switch_provider(self, provider: str) -> None:
        # New ONNX sessions (a second or two), loaded before anything stops: when that fails the app
        # goes on as it was and the dropdown goes back to what runs.
        running = self.engine.config.provider
        if provider == running:
            return
        try:
            reconstructor = self._load_models(provider)
            self.engine.stop(_STOP_TIMEOUT)
            self.engine.set_reconstructor(reconstructor)
            self.engine.update_config(provider=provider)
            self.engine.start()
        except Exception as exc:  # noqa: BLE001 - say it in the page; the app goes on
            log.exception("could not switch to %s", provider)
            self.controls.provider = running
            self._show_provider(running, f"Could not switch to {provider}: {exc}")
            return
        if self.controls.paused:
            self.engine.pause()
        self._show_provider(provider)

    def _show_provider(self, provider: str, problem: str = "") -> None:
        if not problem and provider == "cuda" and not cuda_available():
            problem = CUDA_FALLBACK
        self.provider_note.value = f"<div class='face3d-notice'>{html.escape(problem)}</div>" if problem else ""

    def _on_link(self, change) -> None:
        # The first measurement only: later ones must not undo the user's choices.
        self.viewer.link.unobserve(self._on_link, "rtt_ms")
        # Kept before it is applied: whoever sees the page's note finds the settings behind it.
        self.start_settings = chosen = defaults_for(change["new"], software=self.viewer.link.software)
        # What the settings file set stays as it said, and the page says so.
        kept = [name for name in ("detail", "input_size") if name in self.settings.given]
        for name in {"detail", "input_size"} - set(kept):
            setattr(self.controls, name, getattr(chosen, name))
        self.viewer.link.note = chosen.reason + "".join(
            f" The settings file's {name} ({getattr(self.controls, name)}) is kept." for name in kept)

    def _uv_layout(self, detail: str) -> np.ndarray:
        # Fetched (a few hundred KB) the first time someone saves a UV texture, then kept.
        if self._uv is None:
            self._uv = uv_layout(self.store)
        return self._uv[self._levels.detail(detail).vertices]

    def _refresh_stats(self) -> None:
        while not self._closed.wait(_STATS_INTERVAL):
            self.stats_panel.render(self.engine.stats(), self.viewer.stats(), rejected=self.grabber.rejected)

    def stats(self) -> dict:
        """Engine, mesh and camera figures now, as plain values (for scripts and benchmarks)."""
        if self.engine is None:
            return {}
        return {"engine": self.engine.stats().to_dict(), "mesh": dataclasses.asdict(self.viewer.stats()),
                "camera": {"received": self.grabber.received, "rejected": self.grabber.rejected,
                           "status": self.grabber.status},
                "plot": {"draws": self.plot.draws, "draw_ms": self.plot.draw_ms}, "rtt_ms": self.viewer.link.rtt_ms}

    def _spawn(self, target, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    # -- models missing --------------------------------------------------------------------
    def _download_panel(self, reason: str, bfm_only: bool = False) -> ModelDownload:
        def keys(bfm: bool) -> list[str]:
            return ["bfm"] if bfm_only else self.store.keys_for(self.config.arch, bfm=bfm)

        def start() -> None:
            if not bfm_only:
                self._start(self._load_models(self.config.provider))

        return ModelDownload(self.store, keys, reason, self._spawn, on_installed=start, bfm_only=bfm_only)

    # -- ending ----------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the engine, the camera and every thread of the app, and close all its widgets.

        Every step runs even when one before it fails (the failure is logged), so one call releases
        everything; later calls do nothing.
        """
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
        release(self)
        steps = [self._unsubscribe, self.engine and (lambda: self.engine.stop(_STOP_TIMEOUT)),
                 self.performance_log and self.performance_log.close, self._overlay and self._overlay.close,
                 *(widget.close for widget in (self.grabber, self.camera, self.controls, self.stats_panel,
                                               self.frame_view, self.plot, self.save_panel, self.provider_note,
                                               self.viewer) if widget is not None),
                 # After the components' own close: closing the download panel stops a download.
                 *(widget.close for widget in widget_tree(self) if widget is not self), super().close,
                 self._join_threads]
        for step in steps:
            if step is None:
                continue
            try:
                step()
            except Exception:  # noqa: BLE001 - the remaining steps must still run
                log.exception("closing the app: %s failed", getattr(step, "__qualname__", step))

    def _join_threads(self) -> None:
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=_JOIN_TIMEOUT)
                if thread.is_alive():
                    log.warning("%s is still finishing; it will exit on its own", thread.name)
