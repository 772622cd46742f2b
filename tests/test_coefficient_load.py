"""What the kernel sends until a page shows its first GPU-decoded face: the model, once.

Voila runs the notebook before its page connects. Widgets created then go out to Voila's executor,
and again to the page when it asks for every widget's state (ipywidgets' control comm,
``request_states``). Here every comm message is recorded instead of published (no kernel, no
browser) and the page's side is played by hand: its request for every state, its page link's hello
and GPU check, its acknowledgement of the first update. The model is built once the page has said
hello, so its basis texture suits the page's renderer.
"""

from __future__ import annotations

import json

import comm
import numpy as np
import pytest
from ipywidgets import Widget

from face3d_nb.core.detail import DetailLevels
from face3d_nb.live.events import FrameResult
from face3d_nb.testing.basis import with_synthetic_basis
from face3d_nb.testing.results import posed_face, result_of
from face3d_nb.widgets.viewer import FaceViewer


class Published:
    """Every comm message the kernel would publish: (msg_type, data, buffers)."""

    def __init__(self):
        self.messages: list[tuple[str, dict, list[bytes]]] = []

    def __call__(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        self.messages.append((msg_type, data or {}, [bytes(memoryview(b)) for b in buffers or ()]))

    @property
    def nbytes(self) -> int:
        return sum(len(json.dumps(data, default=str)) + sum(map(len, buffers)) for _, data, buffers in self.messages)

    def copies(self, array: np.ndarray) -> int:
        """How many buffers sent so far hold exactly ``array``'s bytes."""
        raw = np.ascontiguousarray(array).tobytes()
        return sum(b == raw for _, _, buffers in self.messages for b in buffers)


@pytest.fixture
def published(monkeypatch) -> Published:
    record = Published()
    monkeypatch.setattr(comm.DummyComm, "publish_msg", lambda _comm, *args, **keys: record(*args, **keys))
    return record


@pytest.fixture
def levels(reconstructor) -> DetailLevels:
    return DetailLevels(with_synthetic_basis(reconstructor.levels.model("full")))


def _frame(levels: DetailLevels) -> FrameResult:
    model = levels.model("full")
    params = np.zeros(62, np.float32)
    params[[0, 5, 10]], params[11] = 1e-3, 100.0
    return result_of([posed_face(model, params, [0.0, 0.0, 120.0, 120.0], vertices=False)], (120, 120),
                     captured_at=0.0)


def _page_asks_for_every_state(monkeypatch) -> None:
    """What a page's widget manager does once it connects: one ``request_states`` on the control comm."""
    monkeypatch.setattr(Widget, "_control_comm", comm.DummyComm(target_name="jupyter.widget.control", primary=False))
    Widget._handle_control_comm_msg({"content": {"data": {"method": "request_states"}}})


def test_the_model_reaches_the_page_once_before_the_first_update(levels, published, monkeypatch):
    viewer = FaceViewer(levels, transport="coefficients")
    try:
        # The notebook runs in Voila, its page not yet there: the viewer is fed already.
        viewer.show(_frame(levels))
        _page_asks_for_every_state(monkeypatch)
        viewer.link._handle_message(viewer.link, {"type": "hello", "renderer": "a GPU"}, [])
        viewer.link.set_state({"gpu_decode": "ok"})
        viewer.show(_frame(levels))
        [mesh] = viewer._pool.meshes
        viewer.link._handle_message(viewer.link, {"type": "applied", "seq": mesh.material.uniforms["seq"]["value"]}, [])
        assert viewer.stats().applied >= 1

        model = viewer._transports["coefficients"].model("full")
        shared = {"basis texture": model.texture.data, "mean shape": model.position.array,
                  "vertex index": model.vertex_index.array, "triangle index": model.geometry.index.array}
        copies = {name: published.copies(array) for name, array in shared.items()}
        one_copy = sum(array.nbytes for array in shared.values())
        assert copies == dict.fromkeys(shared, 1), (
            f"copies sent until the first update: {copies}; {published.nbytes:,} bytes in all for a model of "
            f"{one_copy:,}")
        # The smaller basis encoding is the one sent.
        assert model.texture.encoding == "u12" and model.texture.data.dtype == np.uint8
    finally:
        viewer.close()


def test_no_model_goes_out_while_no_page_is_there(levels, published):
    viewer = FaceViewer(levels, transport="coefficients")
    try:
        for _ in range(3):
            viewer.show(_frame(levels))
        assert viewer._pool.meshes == [] and viewer._transports["coefficients"]._models == {}
        assert not any(data.get("state", {}).get("_model_name") == "DataTextureModel" for _, data, _ in published.messages)
    finally:
        viewer.close()


@pytest.mark.parametrize(("renderer", "encoding"), [
    ("ANGLE (NVIDIA, NVIDIA GeForce RTX 3060 Direct3D11 vs_5_0 ps_5_0, D3D11)", "u12"),
    ("ANGLE (Google, Vulkan 1.3.0 (SwiftShader Device (Subzero)), SwiftShader driver)", "half"),
])
def test_the_basis_encoding_suits_the_page_renderer(levels, renderer, encoding):
    viewer = FaceViewer(levels, transport="coefficients")
    viewer.link.send = lambda content, buffers=None: None
    try:
        viewer.link._handle_message(viewer.link, {"type": "hello", "renderer": renderer}, [])
        viewer.show(_frame(levels))
        texture = viewer._transports["coefficients"].model("full").texture
        # Fewer bytes for a GPU; fewer texture reads per vertex for a page drawing on the CPU.
        assert texture.encoding == encoding
    finally:
        viewer.close()
