"""EngineConfig: defaults, validation naming the key, TOML/YAML files and command-line overrides."""

from __future__ import annotations

import dataclasses

import pytest

from face3d_nb.core.tracking import SETTINGS, Tracker
from face3d_nb.live.config import EngineConfig, parse_override


def test_defaults_match_the_documented_ones():
    config = EngineConfig()
    assert (config.arch, config.max_input_size, config.detect_interval, config.max_faces) == (None, 640, 30, 4)
    assert (config.smoothing, config.max_fps, config.frame_skip, config.dense) == (0.5, 0.0, 1, True)
    assert (config.threads, config.provider) == (0, "cpu")
    for f in dataclasses.fields(EngineConfig):
        assert f"``{f.name}``" in EngineConfig.__doc__, f"{f.name} is not documented"


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"max_faces": "4"}, "max_faces"),
        ({"max_faces": 2.0}, "max_faces"),
        ({"dense": 1}, "dense"),
        ({"detect_interval": True}, "detect_interval"),
        ({"smoothing": "strong"}, "smoothing"),
        ({"smoothing": 1.5}, "smoothing"),
        ({"max_fps": float("nan")}, "max_fps"),
        ({"max_fps": -1}, "max_fps"),
        ({"frame_skip": 0}, "frame_skip"),
        ({"arch": "resnet"}, "arch"),
        ({"arch": 3}, "arch"),
        ({"provider": "tpu"}, "provider"),
        ({"threads": -1}, "threads"),
        ({"search_interval": -1}, "search_interval"),
        ({"search_scale": 0}, "search_scale"),
        ({"search_scale": 1.5}, "search_scale"),
        ({"confirm_hits": 0}, "confirm_hits"),
        ({"confirm_score": 1.5}, "confirm_score"),
        ({"max_misses": -1}, "max_misses"),
        ({"cut_threshold": -0.1}, "cut_threshold"),
        ({"cut_threshold": "often"}, "cut_threshold"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_values_and_unknown_keys_name_the_key(overrides, key):
    with pytest.raises(ValueError, match=rf"^{key}: "):
        EngineConfig().replace(**overrides)
    with pytest.raises(ValueError, match=rf"^{key}: "):
        EngineConfig.from_dict(overrides)


def test_the_tracker_settings_are_engine_keys_with_the_same_defaults():
    config = EngineConfig()
    assert {name: getattr(Tracker(None), name) for name in SETTINGS} == {name: getattr(config, name) for name in SETTINGS}
    assert (config.search_interval, config.search_scale, config.confirm_hits, config.confirm_score,
            config.max_misses, config.cut_threshold) == (4, 0.5, 2, 0.9, 10, 0.2)
    changed = config.replace(detect_interval=7, search_interval=0, search_scale=1.0, max_faces=2, min_face_size=20,
                             confirm_hits=3, confirm_score=0.8, max_misses=0, cut_threshold=1.0)
    tracker = Tracker(None)
    tracker.configure(changed)
    assert {name: getattr(tracker, name) for name in SETTINGS} == {name: getattr(changed, name) for name in SETTINGS}


def test_replace_validates_and_keeps_the_original():
    base = EngineConfig()
    changed = base.replace(smoothing=0.8, max_fps=15, arch="mb05")
    assert (changed.smoothing, changed.max_fps, changed.arch) == (0.8, 15.0, "mb05")
    assert isinstance(changed.max_fps, float)
    assert base.smoothing == 0.5
    with pytest.raises(dataclasses.FrozenInstanceError):
        changed.smoothing = 0.1


def test_load_toml(tmp_path):
    path = tmp_path / "engine.toml"
    path.write_text('arch = "mb05"\nmax_faces = 2\nsmoothing = 0.25\ndense = false\nmax_fps = 15\n')
    config = EngineConfig.load(path)
    assert (config.arch, config.max_faces, config.smoothing) == ("mb05", 2, 0.25)
    assert (config.dense, config.max_fps) == (False, 15.0)
    assert config.detect_interval == 30


def test_load_yaml(tmp_path):
    pytest.importorskip("yaml")
    for name in ("engine.yaml", "engine.yml"):
        path = tmp_path / name
        path.write_text("detect_interval: 10\nprovider: cuda\narch: null\n")
        config = EngineConfig.load(path)
        assert (config.detect_interval, config.provider, config.arch) == (10, "cuda", None)


def test_empty_yaml_file_gives_defaults(tmp_path):
    pytest.importorskip("yaml")
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert EngineConfig.load(path) == EngineConfig()


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.toml", "max_faces = 2\nmax_face = 3\n", r"a\.toml: max_face: unknown setting"),
        ("a.toml", 'max_faces = "two"\n', r"a\.toml: max_faces: expected an integer, got str"),
        ("a.toml", "max_faces = \n", r"a\.toml: invalid TOML"),
        ("a.yaml", "smoothing: [1, 2]\n", r"a\.yaml: smoothing: expected a finite number"),
        ("a.yaml", "- 1\n- 2\n", r"a\.yaml: expected a mapping"),
        ("a.yaml", "a: [\n", r"a\.yaml: invalid YAML"),
        ("a.json", "{}", r"unknown config format '\.json'"),
    ],
)
def test_load_errors(tmp_path, name, text, message):
    if name.endswith(".yaml"):
        pytest.importorskip("yaml")
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        EngineConfig.load(path)


def test_load_missing_file(tmp_path):
    with pytest.raises(ValueError, match="missing.toml"):
        EngineConfig.load(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("smoothing=0.8", ("smoothing", 0.8)),
        ("max_faces = 2", ("max_faces", 2)),
        ("dense=off", ("dense", False)),
        ("keep_frame=Yes", ("keep_frame", True)),
        ("arch=mb05", ("arch", "mb05")),
        ("arch=none", ("arch", None)),
        ("provider=cuda", ("provider", "cuda")),
        ("max_fps=15", ("max_fps", 15.0)),
    ],
)
def test_parse_override_converts_to_the_field_type(text, expected):
    assert parse_override(text) == expected
    assert getattr(EngineConfig().replace(**dict([expected])), expected[0]) == expected[1]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("smoothing", "expected KEY=VALUE"),
        ("=3", "expected KEY=VALUE"),
        ("max_faces=two", r"^max_faces: 'two' is not a valid int"),
        ("dense=maybe", r"^dense: 'maybe' is not a valid bool"),
        ("speed=3", r"^speed: unknown setting"),
    ],
)
def test_parse_override_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_override(text)
