"""The app's knobs and its stats panel, as ipywidgets.

:class:`ControlPanel` is UI only: appearance widgets are linked straight to a
:class:`~face3d_nb.widgets.viewer.FaceViewer`'s traits; capture settings are exposed as the panel's own
traits, which :class:`~face3d_nb.apps.live_app.FaceApp` applies to the engine and the camera.
:class:`StatsPanel` renders figures it is given into HTML whose elements carry stable CSS classes
(``face3d-stat-<name>``), each holding a plain number, for people and for tests.
"""

from __future__ import annotations

import html
import math

import ipywidgets as widgets
import traitlets

from ..core.detail import LEVELS
from ..core.runtime import PROVIDERS
from ..live.stats import EngineStats
from ..view.view_modes import VIEWS
from .camera import INPUT_SIZES
from .viewer import FaceViewer, MeshStats

__all__ = ["VIEW_LABELS", "ControlPanel", "StatsPanel", "view_controls"]

_WIDE = {"description_width": "9em"}


def _group(title: str, *children: widgets.Widget) -> widgets.VBox:
    box = widgets.VBox([widgets.HTML(f"<b>{html.escape(title)}</b>"), *children],
                       layout=widgets.Layout(padding="0 1.5em 0 0", min_width="22em"))
    box.add_class("face3d-group")
    return box


def _tagged(widget: widgets.Widget, name: str) -> widgets.Widget:
    widget.add_class(f"face3d-{name}")
    return widget


#: What the View dropdown calls each of the viewer's views.
VIEW_LABELS = dict(zip(VIEWS, ("shaded mesh", "camera texture", "depth", "PNCC", "dense points"), strict=True))


def view_controls(viewer: FaceViewer, views=tuple(VIEW_LABELS)) -> tuple[list[widgets.Widget], list[traitlets.link]]:
    """The widgets choosing what ``viewer`` draws (``views`` offered), whether over the camera frame,
    the pose box and the opacity, and their links to its traits (unlink them when closing)."""
    view = _tagged(widgets.Dropdown(description="View", style=_WIDE, options=[(VIEW_LABELS[v], v) for v in views]),
                   "view")
    over_frame = _tagged(widgets.Checkbox(description="Over the camera frame", indent=False), "over-frame")
    pose_box = _tagged(widgets.Checkbox(description="Pose box", indent=False), "pose-box")
    opacity = _tagged(widgets.FloatSlider(description="Opacity", min=0.0, max=1.0, step=0.05, style=_WIDE), "opacity")
    pairs = ((view, "view"), (over_frame, "over_frame"), (pose_box, "pose_box"), (opacity, "opacity"))
    return [w for w, _ in pairs], [traitlets.link((viewer, name), (w, "value")) for w, name in pairs]


class ControlPanel(widgets.HBox):
    """Grouped, labelled controls: mesh and lights, camera and engine.

    ``viewer``: the view whose appearance traits (what it draws, over the frame or not, pose box,
    opacity, colour, wireframe, lights, mesh transport) the mesh and light widgets drive.

    Traits (each follows its widget; set them to move the widget):

    - ``paused`` (False): pause processing and frame grabbing.
    - ``input_size`` (320): long side in pixels of the frames the page sends, one of ``INPUT_SIZES``.
    - ``max_fps`` (0.0): most frames per second processed; 0 = as many as possible.
    - ``frame_skip`` (1): process every k-th frame.
    - ``smoothing`` (0.5): temporal smoothing strength, 0..1.
    - ``detail`` ("full"): mesh detail level, one of :data:`~face3d_nb.core.detail.LEVELS`.
    - ``provider`` ("cpu"): ONNX Runtime execution provider, ``"cpu"`` or ``"cuda"``.
    - ``show_frame`` (False): show the camera frame with the 68 landmarks and boxes.

    ``reset_button`` puts the 3D view's camera back (wired here to ``viewer.reset_view``).
    """

    paused = traitlets.Bool(False)
    input_size = traitlets.Int(320)
    max_fps = traitlets.Float(0.0)
    frame_skip = traitlets.Int(1)
    smoothing = traitlets.Float(0.5)
    detail = traitlets.Enum(tuple(LEVELS), default_value="full")
    provider = traitlets.Enum(tuple(PROVIDERS), default_value="cpu")
    show_frame = traitlets.Bool(False)

    def __init__(self, viewer: FaceViewer, **kwargs):
        super().__init__(**kwargs)
        self.add_class("face3d-controls")

        color = _tagged(widgets.ColorPicker(description="Mesh colour", concise=False, style=_WIDE), "color")
        wireframe = _tagged(widgets.Checkbox(description="Wireframe", indent=False), "wireframe")
        view_widgets, self._links = view_controls(viewer)
        transport = _tagged(widgets.Dropdown(description="Mesh transport", style=_WIDE, options=[
            ("automatic", "auto"), ("positions (kernel decodes)", "positions"),
            ("coefficients (page's GPU decodes)", "coefficients")]), "transport")
        self.reset_button = _tagged(widgets.Button(description="Reset view"), "reset-view")
        self.reset_button.on_click(lambda _button: viewer.reset_view())
        sliders = {
            "ambient_intensity": ("Ambient light", 0.0, 2.0, 0.05),
            "key_intensity": ("Key light", 0.0, 3.0, 0.05),
            "point_intensity": ("Camera light", 0.0, 3.0, 0.05),
            "light_azimuth": ("Light azimuth °", -180.0, 180.0, 5.0),
            "light_elevation": ("Light elevation °", -90.0, 90.0, 5.0),
        }
        light_widgets = []
        for name, (label, low, high, step) in sliders.items():
            slider = widgets.FloatSlider(description=label, min=low, max=high, step=step, style=_WIDE,
                                         continuous_update=True)
            light_widgets.append(_tagged(slider, name.replace("_", "-")))
            self._links.append(traitlets.link((viewer, name), (slider, "value")))
        self._links += [traitlets.link((viewer, "color"), (color, "value")),
                        traitlets.link((viewer, "wireframe"), (wireframe, "value")),
                        traitlets.link((viewer, "transport"), (transport, "value"))]

        pause = _tagged(widgets.ToggleButton(description="Pause", tooltip="Pause or resume"), "pause")
        pause.observe(lambda change: setattr(pause, "description", "Resume" if change["new"] else "Pause"), "value")
        size = _tagged(widgets.Dropdown(description="Input size px", options=list(INPUT_SIZES), style=_WIDE),
                       "input-size")
        max_fps = _tagged(widgets.FloatSlider(description="Max fps (0: ∞)", min=0, max=30, step=1, style=_WIDE),
                          "max-fps")
        skip = _tagged(widgets.IntSlider(description="Frame skip", min=1, max=10, style=_WIDE), "frame-skip")
        smoothing = _tagged(widgets.FloatSlider(description="Smoothing", min=0, max=1, step=0.05, style=_WIDE),
                            "smoothing")
        detail = _tagged(widgets.Dropdown(description="Mesh detail", options=list(LEVELS), style=_WIDE), "detail")
        provider = _tagged(widgets.Dropdown(description="Compute on", options=[("CPU", "cpu"), ("GPU (CUDA)", "cuda")],
                                            style=_WIDE), "provider")
        show_frame = _tagged(widgets.Checkbox(description="2D view with landmarks", indent=False), "show-frame")
        for widget, name in ((pause, "paused"), (size, "input_size"), (max_fps, "max_fps"), (skip, "frame_skip"),
                             (smoothing, "smoothing"), (detail, "detail"),
                             (provider, "provider"), (show_frame, "show_frame")):
            self._links.append(traitlets.link((self, name), (widget, "value")))

        self.children = [
            _group("Mesh and lights", *view_widgets, color, wireframe, transport, *light_widgets, self.reset_button),
            _group("Camera and engine", pause, size, max_fps, skip, smoothing, detail, provider, show_frame),
        ]

    @traitlets.validate("input_size")
    def _check_size(self, proposal):
        if proposal["value"] not in INPUT_SIZES:
            raise traitlets.TraitError(f"input_size must be one of {INPUT_SIZES}, got {proposal['value']}")
        return proposal["value"]

    def close(self) -> None:
        links, self._links = self._links, []
        for link in links:
            link.unlink()
        for group in self.children:
            for widget in group.children:
                widget.close()
            group.close()
        super().close()


def _number(value: float, digits: int = 1) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


class StatsPanel(widgets.HTML):
    """Live figures as an HTML grid; call :meth:`render` with fresh figures (any thread).

    Every value element has the class ``face3d-stat-<name>`` and holds a plain number (or "–"
    when not measured yet): ``fps`` processed frames/s, ``camera-fps`` frames/s received from the
    page, ``mesh-fps`` mesh updates applied in the page per second, ``dropped`` frames dropped
    (replaced by newer ones, or rejected as malformed), ``errors`` frames that failed,
    ``faces`` faces shown, ``latency-p50``/``latency-p95`` capture-to-mesh-applied ms,
    ``stage-<stage>-p50``/``-p95`` ms per engine stage (``decode``, ``detect``, ``regress``,
    ``reconstruct``, ``total``, ``end_to_end``, ``wait``).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_class("face3d-stats-panel")
        self.value = "<div class='face3d-stats'>waiting for the first frame…</div>"

    def render(self, engine: EngineStats, mesh: MeshStats, rejected: int = 0) -> None:
        rows = [
            ("fps", "processed frames/s", _number(engine.processed_fps)),
            ("camera-fps", "camera frames/s in", _number(engine.input_fps)),
            ("mesh-fps", "mesh updates/s", _number(mesh.applied_fps)),
            ("latency-p50", "capture→mesh p50 ms", _number(mesh.latency_p50, 0)),
            ("latency-p95", "capture→mesh p95 ms", _number(mesh.latency_p95, 0)),
            ("faces", "faces", str(mesh.meshes)),
            ("dropped", "dropped frames", str(engine.dropped + rejected)),
            ("errors", "failed frames", str(engine.errors)),
        ]
        for stage, p50 in engine.latency_p50.items():
            label = stage.replace("_", "-")
            rows.append((f"stage-{label}-p50", f"{stage} p50 ms", _number(p50)))
            rows.append((f"stage-{label}-p95", f"{stage} p95 ms", _number(engine.latency_p95[stage])))
        cells = "".join(
            f"<span class='face3d-stat-label'>{html.escape(label)}</span><span class='face3d-stat-{name}'>{value}</span>"
            for name, label, value in rows
        )
        self.value = f"<div class='face3d-stats'>{cells}</div>"
