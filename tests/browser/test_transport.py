"""Both mesh transports draw the same picture, in a real page.

Voila serves a small notebook showing FaceViewers of the mean-shape model and of the same model with
a synthetic basis of the real size (50 x 3*38365; the Basel Face Model is not among the test
assets), each once with positions decoded in the kernel and once with coefficients decoded by the
page's GPU, the basis texture in 12-bit values (what a page with a GPU gets); the synthetic model
once more with the basis in half floats (what a page drawing on the CPU gets). Headless Chromium
(software WebGL) renders them; the kernel feeds every viewer the same real pose with real-sized
coefficients and each GPU picture is compared with its positions picture (the differences are
printed: run with -s). Then colour, lights and wireframe change and the pictures are compared
again. A second page, whose WebGL claims no vertex texture units, checks that the viewer falls back
to positions and says why.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from pages import SHOTS, shared_playwright

from face3d_nb.testing.assets import REFERENCE
from face3d_nb.testing.browser import (
    NotebookServer,
    chromium_missing,
    launch_chromium,
    probe_for,
    wait_until,
    write_notebook,
)

pytestmark = [pytest.mark.real_assets, pytest.mark.skipif(chromium_missing() is not None, reason=str(chromium_missing()))]

# Each view: (model, transport, basis encoding of the coefficient transport).
VIEWS = {"mean-positions": ("mean", "positions", "u12"), "mean-coefficients": ("mean", "coefficients", "u12"),
         "synthetic-positions": ("synthetic", "positions", "u12"),
         "synthetic-coefficients": ("synthetic", "coefficients", "u12"),
         "synthetic-half": ("synthetic", "coefficients", "half")}
# Each GPU view and the positions view it must match.
PAIRS = {"mean-coefficients": "mean-positions", "synthetic-coefficients": "synthetic-positions",
         "synthetic-half": "synthetic-positions"}
SIZE = 320

KERNEL = """
import sys, time
import numpy as np
import ipywidgets as widgets
from IPython.display import display
from face3d_nb.models.store import ModelStore
from face3d_nb.core.detail import DetailLevels
from face3d_nb.core.pipeline import load_morphable_model
from face3d_nb.widgets.viewer import FaceViewer
from face3d_nb.testing.basis import COEFFICIENT_SIZES, with_synthetic_basis
from face3d_nb.testing.results import posed_face, result_of

mean = load_morphable_model(ModelStore().resolve())
models = {{"mean": mean, "synthetic": with_synthetic_basis(mean)}}
reference = np.load({reference!r})

def params(i):
    p = reference["params"][i].copy()
    p[12:] = np.random.default_rng(i).normal(0, 1, 50) * COEFFICIENT_SIZES
    return p, reference["roi_boxes"][i]

def result(model, p, roi):
    return result_of([posed_face(model, p, roi)])

viewers = {{}}
for key, (name, transport, encoding) in {views!r}.items():
    viewer = FaceViewer(DetailLevels(models[name]), transport=transport, width={size}, height={size})
    viewer._transports["coefficients"].encoding = encoding
    viewer.renderer.add_class(f"view-{{key}}")
    viewers[key] = viewer

def show(i):
    for key, viewer in viewers.items():
        model = models[{views!r}[key][0]]
        viewer.show(result(model, *params(i)))

def state():
    return {{key: (v.stats().applied, v.active_transport, v.transport_message) for key, v in viewers.items()}}

def idle():
    # Every update sent has been acknowledged by the page.
    return all(not m.flights and m.pending is None for v in viewers.values() for m in v._pool.meshes)

display(widgets.VBox([widgets.HBox([v.renderer for k, v in viewers.items() if k.startswith(n)]) for n in models]))
"""

# A page whose WebGL reports no vertex texture units, as some older mobile GPUs do.
NO_VERTEX_TEXTURES = """
for (const Context of [WebGLRenderingContext, WebGL2RenderingContext]) {
  const getParameter = Context.prototype.getParameter;
  Context.prototype.getParameter = function (name) {
    return name === this.MAX_VERTEX_TEXTURE_IMAGE_UNITS ? 0 : getParameter.call(this, name);
  };
}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory, real_store):
    work = tmp_path_factory.mktemp("transport")
    code = KERNEL.format(reference=str(REFERENCE / "emma.npz"), views=VIEWS, size=SIZE)
    with NotebookServer(write_notebook(work / "transport.ipynb", code), work, real_store.home) as running:
        yield running


@pytest.fixture(scope="module")
def browser(server):
    browser = launch_chromium(shared_playwright())
    yield browser
    browser.close()


def open_page(browser, server, init_script: str | None = None):
    """A page of the notebook and a probe on its kernel, once every viewer is on screen."""
    known = set(server.connection_files())
    page = browser.new_page(viewport={"width": 3 * SIZE + 100, "height": 2 * SIZE + 100})
    page.console = []
    page.on("console", lambda message: message.type in ("error", "warning") and page.console.append(message.text))
    if init_script:
        page.add_init_script(init_script)
    page.goto(server.url, timeout=120_000)
    for key in VIEWS:
        page.wait_for_selector(f".view-{key} canvas", timeout=120_000)
    return page, probe_for(server, known, 60)


def screenshot(page, key: str) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(page.locator(f".view-{key} canvas").first.screenshot(), np.uint8),
                        cv2.IMREAD_COLOR).astype(np.int16)


def settled(page, probe, keys, timeout: float = 90.0) -> dict[str, np.ndarray]:
    """Screenshots once the page has acknowledged every update and three screenshots in a row, half a
    second apart, are identical (rendering has caught up)."""
    wait_until(lambda: probe.eval("idle()"), timeout, 0.25, "the page to acknowledge every update")
    shots: list[dict[str, np.ndarray]] = []

    def steady():
        shots.append({key: screenshot(page, key) for key in keys})
        recent = shots[-3:]
        return len(recent) == 3 and all(np.array_equal(s[k], recent[0][k]) for s in recent for k in keys)

    wait_until(steady, timeout, 0.5, "the views to settle")
    return shots[-1]


def face_mask(image: np.ndarray) -> np.ndarray:
    """Pixels not of the background colour (taken from the top-left corner)."""
    return np.abs(image - image[2, 2]).max(axis=2) > 12


def assert_same_picture(shots, name: str, out: Path, step: str, page_log: list[str], lines: bool = False) -> None:
    """GPU view ``name`` draws what its positions view draws (``PAIRS``)."""
    positions, coefficients = shots[PAIRS[name]], shots[name]
    cv2.imwrite(str(out / f"{step}-{PAIRS[name]}.png"), positions.astype(np.uint8))
    cv2.imwrite(str(out / f"{step}-{name}.png"), coefficients.astype(np.uint8))
    drawn, drawn_gpu = face_mask(positions), face_mask(coefficients)
    assert drawn.mean() > 0.15, f"{name}: the face covers only {drawn.mean():.0%} of the view"
    where = f"{name} ({step}); screenshots in {out}; the page's last warnings: {page_log[-5:]}"
    if lines:
        # Edges land on the same pixels, but flat normals of one-pixel lines (screen-space
        # derivatives) are noise that rounding reshuffles: compare coverage and overall colour.
        assert (drawn & drawn_gpu).sum() / (drawn | drawn_gpu).sum() > 0.97, where
        np.testing.assert_allclose(positions[drawn].mean(axis=0), coefficients[drawn_gpu].mean(axis=0), atol=3,
                                   err_msg=where)
        return
    difference = np.abs(positions - coefficients).max(axis=2)
    print(f"{step} {name} vs {PAIRS[name]}: mean difference {difference.mean():.3f} levels, "
          f"{(difference > 24).mean():.4%} of pixels over 24")
    # Same triangles, same shading formulas: only rounding differs (a few edge pixels).
    assert difference.mean() < 1.0 and (difference > 24).mean() < 0.003, (
        f"mean difference {difference.mean():.2f}, {(difference > 24).sum()} pixels differ by more than 24 "
        f"levels: {where}")


def test_both_transports_draw_the_same_face(browser, server, tmp_path_factory):
    out = Path(SHOTS) if SHOTS else tmp_path_factory.mktemp("screenshots")
    out.mkdir(parents=True, exist_ok=True)
    page, probe = open_page(browser, server)
    try:
        keys = list(VIEWS)
        # The page's GPU check has to pass before a coefficient viewer may use coefficients.
        wait_until(lambda: all(s[1] == VIEWS[k][1] for k, s in probe.eval("state()").items()), 60,
                   message="the coefficient viewers to switch to coefficients")
        probe.run("show(0)")
        wait_until(lambda: all(s[0] >= 1 for s in probe.eval("state()").values()), 60, message="first updates")
        first = settled(page, probe, keys)
        for name in PAIRS:
            assert_same_picture(first, name, out, "first", page.console)
        # The basis really deforms the face on the GPU too.
        assert (face_mask(first["mean-coefficients"]) != face_mask(first["synthetic-coefficients"])).mean() > 0.02

        probe.run("for v in viewers.values(): v.color, v.key_intensity, v.light_azimuth, v.point_intensity = "
                  "'#5b8fd9', 0.9, -50.0, 0.6")
        probe.run("show(1)")
        recoloured = settled(page, probe, keys)
        for name in PAIRS:
            assert_same_picture(recoloured, name, out, "recoloured", page.console)
            blue = recoloured[name][..., 0] > recoloured[name][..., 2] + 20
            assert blue.mean() > 0.1, f"{name}: the new colour is not shown"

        probe.run("for v in viewers.values(): v.wireframe = True")
        wired = settled(page, probe, keys)
        for name in PAIRS:
            assert_same_picture(wired, name, out, "wireframe", page.console, lines=True)
            # Same frame as before, drawn as lines now (at this density the lines cover the face).
            assert np.abs(wired[name] - recoloured[name])[face_mask(recoloured[name])].mean() > 10, name
    finally:
        probe.close()
        page.close()


def test_a_page_without_vertex_textures_falls_back_to_positions(browser, server):
    page, probe = open_page(browser, server, NO_VERTEX_TEXTURES)
    try:
        wait_until(lambda: "vertex texture" in probe.eval("state()")["synthetic-coefficients"][2], 60,
                   message="the fallback message")
        probe.run("show(0)")
        wait_until(lambda: all(s[0] >= 1 for s in probe.eval("state()").values()), 60, message="first updates")
        for key, (_, active, _message) in probe.eval("state()").items():
            assert active == "positions", key
    finally:
        probe.close()
        page.close()
