"""The package's shape: layers that import only downwards, small modules, a light numeric API."""

import subprocess
import sys
from pathlib import Path

import face3d_nb

PACKAGE = Path(face3d_nb.__file__).parent
ROOT = PACKAGE.parent
MAX_LINES = 350
WIDGET_LIBRARIES = ("ipywidgets", "pythreejs", "anywidget", "ipywebrtc", "traitlets")


def test_import_contracts_hold():
    # The contracts live in pyproject.toml. import-linter configures logging as it runs, so it
    # runs in a process of its own, leaving this one's loggers alone.
    proc = subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command as c; c()",
                           "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " 0 broken" in proc.stdout


def test_every_module_reads_in_one_sitting():
    sources = [*PACKAGE.rglob("*.py"), *PACKAGE.rglob("*.js")]
    long = {str(p.relative_to(ROOT)): n for p in sources if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"over {MAX_LINES} lines: {long}"


def test_the_top_level_holds_only_the_entry_points_and_layers():
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(modules) <= 8, modules
    layers = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert {"models", "core", "live", "view", "widgets", "apps"} <= layers
    for layer in layers:
        doc = (PACKAGE / layer / "__init__.py").read_text()
        assert "import" in doc, f"{layer}/__init__.py must say what the layer may import"


def test_the_numeric_api_loads_no_widget_library():
    code = (
        "import sys, face3d_nb\n"
        "from face3d_nb import Reconstructor, Engine, EngineConfig, ModelStore\n"
        f"loaded = sorted({{m.split('.')[0] for m in sys.modules}} & set({WIDGET_LIBRARIES!r}))\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
