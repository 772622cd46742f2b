"""notebooks/tutorial.ipynb runs top to bottom offline: models imported from the shared assets into a
fresh model cache (as for a newcomer without installed models), image -> mesh -> pose -> export,
the video through the live engine, and the live app built (no browser: nothing sends it frames)."""

import pytest

from face3d_nb.testing.assets import ASSETS, ROOT

pytestmark = pytest.mark.real_assets
nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("ipykernel")


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def test_tutorial_runs_top_to_bottom(tmp_path, monkeypatch):
    # The kernel inherits this environment: an empty model cache, and the assets where they are.
    monkeypatch.setenv("FACE3D_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("FACE3D_TEST_ASSETS", str(ASSETS))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    notebook = nbformat.read(ROOT / "notebooks" / "tutorial.ipynb", as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(ROOT / "notebooks")}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, if any cell fails
    code = [c for c in notebook.cells if c.cell_type == "code"]
    outputs = "\n".join(_text(c) for c in code)
    assert f"imported the models from {ASSETS.resolve()}" in outputs
    assert "obj: 38365 vertices, 76073 triangles" in outputs
    assert "recorded to session.jsonl" in outputs and "(medium)" in outputs
    app_cell = code[-1]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in app_cell.outputs)
