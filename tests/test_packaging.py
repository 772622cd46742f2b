"""What users install: no torch anywhere, and the engine never imports it."""

import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import face3d_nb


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


def test_one_version_everywhere():
    """``--version`` either way the command is started, and the installed metadata, all say
    ``face3d_nb.__version__``, the one place the version is written."""
    expected = f"face3d-nb {face3d_nb.__version__}\n"
    script = shutil.which("face3d-nb", path=str(Path(sys.executable).parent))
    for command in ([sys.executable, "-m", "face3d_nb", "--version"], [script, "--version"]):
        proc = subprocess.run(command, capture_output=True, text=True, check=False)
        assert (proc.returncode, proc.stdout) == (0, expected), proc.stderr
    assert metadata.version("face3d_nb") == face3d_nb.__version__
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert not re.search(r"^version\s*=", pyproject, flags=re.MULTILINE), "pyproject.toml must take the version from the package"
