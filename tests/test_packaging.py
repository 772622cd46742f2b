"""What users install: no torch anywhere, and the engine never imports it."""

import re
import subprocess
import sys
from importlib import metadata


def _requirements(dist: str) -> set[str]:
    """Names of ``dist``'s installed dependency tree (extras excluded), normalised."""
    seen, todo = set(), [dist]
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [re.split(r"[\s;<>=!~\[(]", r, maxsplit=1)[0] for r in requires if "extra ==" not in r]
    return seen


def test_no_torch_in_the_dependency_tree():
    tree = _requirements("face3d_nb")
    assert {"numpy", "onnxruntime", "opencv-python"} <= tree
    assert not {"torch", "torchvision", "pytorch"} & tree


def test_engine_runs_without_importing_torch():
    code = (
        "import sys, numpy as np\n"
        "import face3d_nb.core.pipeline, face3d_nb.models.convert, face3d_nb.models.safe_pickle, face3d_nb.cli\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert not any(m.startswith(('ipywidgets', 'pythreejs')) for m in sys.modules), 'widgets imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_widget_classes_load_only_when_asked_for():
    code = (
        "import sys, face3d_nb\n"
        "assert not any(m.startswith(('ipywidgets', 'pythreejs')) for m in sys.modules), 'widgets imported'\n"
        "from face3d_nb.apps.live_app import FaceApp\n"
        "from face3d_nb.apps.replay_app import ReplayApp\n"
        "assert (face3d_nb.FaceApp, face3d_nb.ReplayApp) == (FaceApp, ReplayApp)\n"
        "assert face3d_nb.FaceViewer.__module__ == 'face3d_nb.widgets.viewer'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
