"""The app's save buttons: the current mesh as .obj or .ply, the face's UV texture, a picture of the 3D
view, a recording.

Everything is delivered to the browser as a download (:class:`~face3d_nb.widgets.download.Downloader`),
since the kernel may run on another machine. Meshes are the faces of the newest result shown, at
its detail level, in the processed frame's pixels (y up), each vertex coloured by the camera pixel
under it. The UV texture is the first of those faces' (the one with the lowest track id), unwrapped
from the camera frame into the model's UV layout (:func:`~face3d_nb.core.uv_texture.uv_texture`), as
a 512x512 PNG. A recording (:class:`~face3d_nb.live.recording.Recorder`) is written to a temporary file on
the kernel's machine while it runs and downloaded when stopped; the last one stays there, at
``recording_path``, until the panel is closed. A recording still running when the panel closes (the
app closed, the kernel shutting down) cannot be downloaded any more: it is moved to ``keep_dir``
instead, and the log says where.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import ipywidgets as widgets
import numpy as np

from ..core.export import MESH_FORMATS, mesh_bytes, vertex_colors
from ..core.uv_texture import uv_texture
from ..live.events import FrameResult
from ..live.recording import Recorder
from .download import Downloader

__all__ = ["SavePanel", "result_mesh_file", "result_uv_texture"]

log = logging.getLogger(__name__)


def result_mesh_file(result: FrameResult, triangles: np.ndarray, fmt: str) -> bytes:
    """The faces of ``result`` (with vertices) as one ``fmt`` ("obj"/"ply") file; ``triangles``
    (T, 3) are its detail level's. Vertex colours come from ``result.frame`` when it is kept."""
    meshes = [f.vertices for f in result.faces if f.vertices is not None]
    colors = None if result.frame is None else [vertex_colors(result.frame, m) for m in meshes]
    return mesh_bytes(fmt, meshes, triangles, result.frame_shape[0], colors)


def result_uv_texture(result: FrameResult, triangles: np.ndarray, uv: np.ndarray, size: int = 512) -> bytes:
    """PNG (size x size) of the first face of ``result`` with vertices, unwrapped from ``result.frame``;
    ``triangles`` (T, 3) and ``uv`` (K, 2) are its detail level's. ``ValueError`` when the result has
    no such face or no frame."""
    face = next((f for f in result.faces if f.vertices is not None), None)
    if face is None or result.frame is None:
        raise ValueError("no face" if face is None else "no camera frame")
    ok, png = cv2.imencode(".png", uv_texture(result.frame, face.vertices, triangles, uv, size))
    if not ok:
        raise ValueError("the texture could not be encoded as PNG")
    return png.tobytes()


def _stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


class SavePanel(widgets.VBox):
    """Save buttons and their status line.

    ``renderer``: the pythreejs ``Renderer`` the screenshot is taken of; ``latest()``: the newest
    :class:`~face3d_nb.live.events.FrameResult` shown, or None; ``triangles(detail)``: (T, 3)
    triangles of a detail level; ``subscribe(callback)``: subscribes to the engine and returns the
    unsubscriber (``Engine.subscribe``); ``uv(detail)``: (K, 2) UV layout of a detail level's vertices
    (:func:`~face3d_nb.models.uv_layout.uv_layout` indexed with the level's vertices; it may download
    the layout, so it runs off the main thread), or None for no UV texture button; ``header``: extra
    fields for recordings' header line;
    ``keep_dir``: where a recording still running at :meth:`close` is kept (relative paths are taken
    from the working directory at that moment, the notebook's folder in Jupyter and Voila).

    Attributes: ``downloader``; ``buttons`` by name (``obj``, ``ply``, ``uv`` when ``uv`` is given,
    ``screenshot``, ``record``);
    ``recording_path``: the last recording's file on the kernel's machine, or None.
    """

    def __init__(self, renderer: widgets.Widget, latest: Callable[[], FrameResult | None],
                 triangles: Callable[[str], np.ndarray], subscribe: Callable[[Callable], Callable[[], None]],
                 header: dict | None = None, keep_dir: str | Path = "face3d-recordings",
                 uv: Callable[[str], np.ndarray] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.add_class("face3d-save")
        self.downloader = Downloader(target=renderer)
        self._latest = latest
        self._triangles = triangles
        self._uv = uv
        self._subscribe = subscribe
        self._header = header or {}
        self._recorder: Recorder | None = None
        self._unsubscribe: Callable[[], None] | None = None
        # Not a TemporaryDirectory: its clean-up at interpreter exit could run before close() keeps
        # a running recording.
        self._folder = Path(tempfile.mkdtemp(prefix="face3d-recordings-"))
        self._keep_dir = Path(keep_dir)
        self.recording_path: Path | None = None

        self.buttons = {
            fmt: widgets.Button(description=f"Save .{fmt}",
                                tooltip=f"download the current mesh as .{fmt} with colours from the camera")
            for fmt in MESH_FORMATS
        }
        if uv is not None:
            self.buttons["uv"] = widgets.Button(description="Save UV texture",
                                                tooltip="download the face's texture in the model's UV layout (PNG)")
        self.buttons["screenshot"] = widgets.Button(description="Screenshot",
                                                    tooltip="download a PNG of the 3D view")
        self.buttons["record"] = widgets.ToggleButton(description="Record",
                                                      tooltip="record poses and parameters; stop to download")
        for name, button in self.buttons.items():
            button.add_class(f"face3d-save-{name}")
        for fmt in MESH_FORMATS:
            self.buttons[fmt].on_click(lambda _button, f=fmt: self._in_background(self.save_mesh, f))
        if uv is not None:
            self.buttons["uv"].on_click(lambda _button: self._in_background(self.save_uv_texture))
        self.buttons["screenshot"].on_click(lambda _button: self.downloader.screenshot(f"face3d-{_stamp()}.png"))
        self.buttons["record"].observe(self._on_record, "value")
        self.children = [widgets.HBox(list(self.buttons.values())), self.downloader]

    def save_mesh(self, fmt: str) -> None:
        """Download the newest faces shown as ``fmt`` ("obj" or "ply")."""
        result = self._latest()
        if result is None or not any(f.vertices is not None for f in result.faces):
            self.downloader.message = "no face to save yet"
            return
        data = result_mesh_file(result, self._triangles(result.detail), fmt)
        self.downloader.deliver(f"face3d-{_stamp()}.{fmt}", data, MESH_FORMATS[fmt])

    def save_uv_texture(self) -> None:
        """Download the UV texture of the first face shown, as PNG."""
        result = self._latest()
        if result is None or not any(f.vertices is not None for f in result.faces):
            self.downloader.message = "no face to save yet"
            return
        if result.frame is None:
            self.downloader.message = "no camera frame to take the texture from (the engine keeps none)"
            return
        data = result_uv_texture(result, self._triangles(result.detail), self._uv(result.detail))
        self.downloader.deliver(f"face3d-uv-{_stamp()}.png", data, "image/png")

    def _in_background(self, work: Callable, *args) -> None:
        # Writing a full-detail .obj takes a good part of a second: not on the kernel's main
        # thread, where camera frames and mesh acknowledgements would wait for it.
        def run() -> None:
            try:
                work(*args)
            except Exception as exc:  # noqa: BLE001 - say it in the page; the app goes on
                log.exception("saving failed")
                self.downloader.message = f"could not save: {exc}"

        threading.Thread(target=run, name="face3d-save", daemon=True).start()

    @property
    def recording(self) -> bool:
        return self._recorder is not None

    def _on_record(self, change) -> None:
        button = self.buttons["record"]
        if change["new"]:
            self.recording_path = self._folder / f"face3d-session-{_stamp()}.jsonl"
            self._recorder = Recorder(self.recording_path, **self._header)
            self._unsubscribe = self._subscribe(self._recorder)
            button.description, button.button_style = "Stop and save", "danger"
            self.downloader.message = "recording…"
        else:
            self._stop_recording()
            button.description, button.button_style = "Record", ""
            self.downloader.deliver(self.recording_path.name, self.recording_path.read_bytes(),
                                    "application/jsonl")

    def _stop_recording(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._recorder is not None:
            self._recorder.close()
            log.info("recorded %d frames to %s", self._recorder.frames, self.recording_path)
            self._recorder = None

    def close(self) -> None:
        """Stop recording and keep a running recording in ``keep_dir`` (it can no longer be downloaded),
        delete the temporary recordings' folder, close every widget."""
        if self.recording:
            self._stop_recording()
            self._keep_dir.mkdir(parents=True, exist_ok=True)
            self.recording_path = Path(shutil.move(self.recording_path, self._keep_dir / self.recording_path.name))
            log.warning("the recording in progress was saved to %s", self.recording_path.resolve())
        shutil.rmtree(self._folder, ignore_errors=True)
        for button in self.buttons.values():
            button.close()
        self.downloader.close()
        for child in self.children:
            child.close()
        super().close()
