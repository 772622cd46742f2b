"""Settings files: the seed's sections mapped onto our keys, our flat keys, warnings, typos, TOML and YAML."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from face3d_nb.apps.app_settings import app_settings
from face3d_nb.live.config import EngineConfig
from face3d_nb.live.settings_file import SEED_MEANINGLESS, load_settings

SEED_YAML = """\
model:
  device: cuda
performance:
  input_resolution: 640x480
  frame_skip: 2
  max_fps: 15
debug:
  log_performance: true
  verbose: true
"""

SEED_TOML = """\
[model]
device = "cuda"
[performance]
input_resolution = 480
frame_skip = 2
max_fps = 15
[debug]
log_performance = "logs/perf.csv"
verbose = false
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_seeds_yaml_maps_onto_our_keys(tmp_path):
    settings = load_settings(write(tmp_path, "config.yaml", SEED_YAML))
    assert settings.engine == EngineConfig(provider="cuda", frame_skip=2, max_fps=15)
    assert (settings.input_size, settings.verbose, settings.transport) == (640, True, None)
    # true: a timestamped CSV next to the settings file.
    assert settings.performance_log.parent == tmp_path.resolve()
    assert settings.performance_log.name.startswith("face3d-performance-")
    assert settings.performance_log.suffix == ".csv"
    assert settings.given == {"provider", "input_size", "frame_skip", "max_fps", "log_performance", "verbose"}
    assert settings.warnings == ()


def test_the_seeds_toml_maps_onto_our_keys(tmp_path):
    settings = load_settings(write(tmp_path, "config.toml", SEED_TOML))
    assert settings.engine == EngineConfig(provider="cuda", frame_skip=2, max_fps=15)
    assert (settings.input_size, settings.verbose) == (480, False)
    # A path is relative to the settings file's folder.
    assert settings.performance_log == tmp_path.resolve() / "logs" / "perf.csv"


def test_flat_keys_and_seed_sections_mix(tmp_path):
    text = 'detail = "low"\nsmoothing = 0.8\ntransport = "coefficients"\n[performance]\nmax_fps = 10\n'
    settings = load_settings(write(tmp_path, "mixed.toml", text))
    assert settings.engine == EngineConfig(detail="low", smoothing=0.8, max_fps=10)
    assert (settings.transport, settings.input_size, settings.performance_log) == ("coefficients", None, None)


def test_keys_that_mean_nothing_here_warn_with_the_reason(tmp_path, caplog):
    text = ("model:\n  device: cpu\n  weights_path: weights/mb1_120x120.pth\n  use_onnx: true\n"
            "socket:\n  host: 0.0.0.0\n  port: 5000\n")
    path = write(tmp_path, "config.yaml", text)
    with caplog.at_level(logging.WARNING, logger="face3d_nb"):
        settings = load_settings(path)
    assert settings.engine == EngineConfig()
    assert settings.warnings == (f"model.weights_path: ignored: {SEED_MEANINGLESS['model.weights_path']}",
                                 f"model.use_onnx: ignored: {SEED_MEANINGLESS['model.use_onnx']}",
                                 f"socket: ignored: {SEED_MEANINGLESS['socket']}")
    assert "model cache" in settings.warnings[0] and "ONNX Runtime" in settings.warnings[1]
    assert "widget messages" in settings.warnings[2]
    assert [r.getMessage() for r in caplog.records] == [f"{path}: {w}" for w in settings.warnings]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.yaml", "performance:\n  max_fsp: 15\n", r"performance\.max_fsp: unknown setting "
                                                     r"\(did you mean 'performance\.max_fps'\?\)"),
        ("a.yaml", "performence:\n  max_fps: 15\n", r"performence: unknown setting "
                                                    r"\(did you mean 'performance'\?\)"),
        ("a.toml", "smothing = 0.5\n", r"smothing: unknown setting \(did you mean 'smoothing'\?\)"),
        ("a.toml", "transprot = \"auto\"\n", r"transprot: unknown setting \(did you mean 'transport'\?\)"),
        ("a.toml", "zzz = 1\n", r"zzz: unknown setting \(known: "),
        ("a.yaml", "provider: cpu\nmodel:\n  device: cuda\n", r"model\.device: sets 'provider', "
                                                              r"which provider sets too"),
        ("a.yaml", "model:\n  device: tpu\n", r"provider: 'tpu' is not one of"),
        ("a.yaml", "performance: 15\n", r"performance: expected a section"),
        ("a.yaml", "performance:\n  input_resolution: big\n", r"input_size: expected pixels"),
        ("a.yaml", "performance:\n  input_resolution: 8000x6000\n", r"input_size: must be between"),
        ("a.yaml", "performance:\n  max_fps: fast\n", r"max_fps: expected a finite number"),
        ("a.yaml", "debug:\n  verbose: 2\n", r"verbose: expected a boolean"),
        ("a.yaml", "debug:\n  log_performance: 3\n", r"log_performance: expected true, false or a path"),
        ("a.yaml", "- 1\n", r"expected a mapping"),
    ],
)
def test_mistakes_are_errors_naming_the_key(tmp_path, name, text, message):
    path = write(tmp_path, name, text)
    with pytest.raises(ValueError, match=f"^{re.escape(str(path))}: {message}"):
        load_settings(path)


def test_the_app_checks_what_it_offers(tmp_path):
    with pytest.raises(ValueError, match=r"input_size: 300 is not one the app offers \(256, 320, 480, 640\)"):
        app_settings(write(tmp_path, "a.yaml", "performance:\n  input_resolution: 300\n"))
    with pytest.raises(ValueError, match=r"transport: 'gpu' is not one of auto, positions, coefficients"):
        app_settings(write(tmp_path, "b.toml", 'transport = "gpu"\n'))
    config = EngineConfig(max_fps=5)
    assert app_settings(config).engine is config
    assert app_settings(None).engine == EngineConfig()
    assert app_settings(write(tmp_path, "c.yaml", "performance:\n  input_resolution: 320x240\n")).input_size == 320


def test_an_empty_file_is_the_defaults(tmp_path):
    settings = load_settings(write(tmp_path, "empty.yaml", ""))
    assert settings.engine == EngineConfig() and settings.given == frozenset() and settings.performance_log is None
