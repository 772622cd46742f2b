"""notebooks/tutorial.ipynb runs top to bottom on a fresh clone with nothing beside it.

The clone is a copy of the working tree's tracked and untracked non-ignored files (what a commit of
it would hold) in a folder with no ``../shared``; its model cache holds the models and sample files
imported from the shared assets, as ``face3d-nb models import`` does; FACE3D_TEST_ASSETS is unset.
Then: image -> mesh -> pose -> export, the video through the live engine, and the live app built
(no browser: nothing sends it frames).
"""

import shutil
import subprocess

import pytest

from face3d_nb.models.store import ModelStore
from face3d_nb.testing.assets import ASSETS, ROOT

pytestmark = pytest.mark.real_assets
nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("ipykernel")


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


@pytest.fixture
def fresh_clone(tmp_path):
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    clone = tmp_path / "clone"
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is not in the clone
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, clone / name)
    assert not (clone.parent / "shared").exists()
    return clone


def test_tutorial_runs_on_a_fresh_clone(fresh_clone, tmp_path, monkeypatch):
    home = tmp_path / "home"
    store = ModelStore(home)
    imported, _ = store.import_dir(ASSETS, store.keys_for(examples=True))
    assert set(store.example_names()) <= set(imported)
    # The kernel inherits this environment: the package from the clone, the cache above, no assets.
    monkeypatch.setenv("FACE3D_HOME", str(home))
    monkeypatch.delenv("FACE3D_TEST_ASSETS", raising=False)
    monkeypatch.setenv("PYTHONPATH", str(fresh_clone))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    notebook = nbformat.read(fresh_clone / "notebooks" / "tutorial.ipynb", as_version=4)
    # One cell of our own, run last in the same kernel: where the package came from.
    notebook.cells.append(nbformat.v4.new_code_cell("import face3d_nb\nprint(face3d_nb.__file__)"))
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(fresh_clone / "notebooks")}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, if any cell fails
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert _text(code[-1]).strip() == str(fresh_clone / "face3d_nb" / "__init__.py")
    outputs = "\n".join(_text(c) for c in code)
    assert f"models (mb05) in {home}" in outputs
    assert "JianzhuGuo.jpg: 413x551 pixels, 1 face(s)" in outputs
    assert "obj: 38365 vertices, 76073 triangles" in outputs
    assert "55 frames at 25 fps" in outputs
    assert "recorded to session.jsonl" in outputs and "(medium)" in outputs
    app_cell = code[-2]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in app_cell.outputs)
