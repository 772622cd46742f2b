"""Model download, resume, verification and import, against a real HTTP server on loopback.

The server (the ``upstream`` fixture, :class:`~face3d_nb.testing.file_host.UpstreamMirror`) plays
upstream's raw-file host with the real files from shared/assets; it can cut a transfer short, ignore
Range requests or serve corrupted bytes, so every failure path is real.
"""

import json
import os
import subprocess
import sys

import pytest

from face3d_nb.models.store import AssetError, ModelsMissingError, ModelStore, git_blob_sha1, load_manifest
from face3d_nb.testing.assets import ASSETS
from face3d_nb.testing.terminal import run_on_terminal

pytestmark = pytest.mark.real_assets


KEYS = ["faceboxes", "param_mean_std", "tri", "indices", "mb05", "u_shp", "u_exp", "keypoints_sim"]


def test_fetch_installs_verifies_and_converts(upstream, tmp_path):
    store = ModelStore(tmp_path)
    seen = []
    new = store.fetch(KEYS, progress=lambda key, done, total: seen.append((key, done, total)))
    assert new == KEYS
    paths = store.resolve("mb05")
    assert paths.detector.is_file() and paths.regressor.is_file() and paths.bfm is None
    for key in KEYS:
        assert git_blob_sha1(store.raw_path(key)) == store.files[key]["sha1"]
    last = {key: (done, total) for key, done, total in seen}
    assert last["mb05"] == (3752462, 3752462)
    assert not list(tmp_path.rglob("*.part"))
    assert store.fetch(KEYS) == []  # nothing downloaded twice
    assert len(upstream.requests) == len(KEYS)


def test_interrupted_download_resumes_where_it_stopped(upstream, tmp_path):
    store = ModelStore(tmp_path)
    upstream.cut_after = 1_000_000
    with pytest.raises(AssetError, match="fetch` again"):
        store.fetch(["mb05"])
    part = store.raw_path("mb05").with_name("mb05_120x120.pth.part")
    assert part.stat().st_size == 1_000_000 and not store.installed("mb05")
    store.fetch(["mb05"])
    assert upstream.requests[-1][1] == "bytes=1000000-"
    assert git_blob_sha1(store.raw_path("mb05")) == store.files["mb05"]["sha1"]


def test_server_ignoring_range_restarts_cleanly(upstream, tmp_path):
    store = ModelStore(tmp_path)
    upstream.cut_after = 500_000
    with pytest.raises(AssetError):
        store.fetch(["faceboxes"])
    upstream.ignore_range = True
    store.fetch(["faceboxes"])
    assert store.raw_path("faceboxes").stat().st_size == 4072492
    assert git_blob_sha1(store.raw_path("faceboxes")) == store.files["faceboxes"]["sha1"]


def test_corrupt_download_is_discarded(upstream, tmp_path):
    store = ModelStore(tmp_path)
    upstream.corrupt = True
    with pytest.raises(AssetError, match="does not match the pinned"):
        store.fetch(["tri"])
    assert not store.installed("tri") and not list(tmp_path.rglob("*.part"))


def test_offline_fetch_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("FACE3D_URL_3DDFA_V2", "http://127.0.0.1:9/{commit}/{path}")
    with pytest.raises(AssetError) as info:
        ModelStore(tmp_path).fetch(["tri"])
    message = str(info.value)
    assert "face3d-nb models fetch" in message and "face3d-nb models import DIR" in message


def test_cli_fetch_shows_progress_on_a_terminal_only(upstream, tmp_path):
    command = [sys.executable, "-m", "face3d_nb.cli", "models", "fetch", "--arch", "mb05", "--no-bfm"]
    env = {**os.environ, "FACE3D_HOME": str(tmp_path / "piped")}
    proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no bar, no "\r", in a pipe or a log
    assert "installed 12 new file(s)" in proc.stdout  # the 8 model files and the 4 sample inputs
    status, stdout, terminal = run_on_terminal(command, env={**env, "FACE3D_HOME": str(tmp_path / "terminal")})
    assert status == 0, terminal
    assert "installed 12 new file(s)" in stdout
    assert "mb05: 100%" in terminal and "faceboxes: 100%" in terminal


def test_import_from_upstream_layout_and_missing_report(tmp_path):
    source = tmp_path / "upstream_checkout"
    manifest = load_manifest()
    for key in ("tri", "indices"):
        target = source / manifest["files"][key]["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((ASSETS / manifest["files"][key]["also"][0]).read_bytes())
    store = ModelStore(tmp_path / "home")
    imported, missing = store.import_dir(source, store.keys_for("mb05", bfm=False))
    assert imported == ["tri", "indices"]
    assert "faceboxes" in missing and "mb05" in missing
    with pytest.raises(ModelsMissingError, match="faceboxes"):
        store.resolve("mb05")


def test_import_refuses_a_tampered_file(tmp_path):
    source = tmp_path / "src" / "configs"
    source.mkdir(parents=True)
    (source / "tri.pkl").write_bytes(b"\x80\x02not the real triangles")
    store = ModelStore(tmp_path / "home")
    with pytest.raises(AssetError, match="does not match"):
        store.import_dir(tmp_path / "src", ["tri"])
    assert not store.installed("tri")


def test_manifest_pins_every_file():
    manifest = load_manifest()
    assert manifest["sources"]["3ddfa_v2"]["commit"] == "1b6c67601abffc1e9f248b291708aef0e43b55ae"
    assert all(len(entry["sha1"]) == 40 for entry in manifest["files"].values())
    shared = {row["path"]: row for row in json.loads((ASSETS / "MANIFEST.json").read_text())}
    for entry in manifest["files"].values():
        row = shared.get(entry["also"][0])
        if row:
            assert row["git_blob_sha1"] == entry["sha1"] and row["size"] == entry["size"]


def _cli(home, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "FACE3D_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "face3d_nb.cli", *args],
                          capture_output=True, text=True, env=env, check=False)


def test_fetch_brings_the_sample_inputs_verified(upstream, tmp_path):
    store = ModelStore(tmp_path)
    names = store.example_names()
    assert names == ["JianzhuGuo.jpg", "emma.jpg", "trump_hillary.jpg", "obama.mp4"]
    assert store.fetch(names) == names
    for name in names:
        assert git_blob_sha1(store.example(name)) == store.files[name]["sha1"]
    assert store.example("obama.mp4") == tmp_path / "upstream" / "demo@obama" / "obama.mp4"
    assert ("/3ddfa/3545f355bfc71e5748fa915b13932958363135d7/demo@obama/obama.mp4", None) in upstream.requests


def test_a_missing_or_unknown_sample_names_the_fix(tmp_path):
    store = ModelStore(tmp_path)
    with pytest.raises(ModelsMissingError) as info:
        store.example("emma.jpg")
    message = str(info.value)
    assert "emma.jpg" in message and "face3d-nb models fetch" in message and "face3d-nb models import DIR" in message
    with pytest.raises(ValueError, match="unknown example 'me.jpg'; choose one of JianzhuGuo.jpg, emma.jpg"):
        store.example("me.jpg")


def test_import_finds_the_samples_in_upstream_checkouts(tmp_path):
    source = tmp_path / "checkouts"
    manifest = load_manifest()["files"]
    for name in ("emma.jpg", "obama.mp4"):
        target = source / manifest[name]["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((ASSETS / manifest[name]["also"][0]).read_bytes())
    store = ModelStore(tmp_path / "home")
    assert store.import_dir(source, store.example_names()) == (
        ["emma.jpg", "obama.mp4"], ["JianzhuGuo.jpg", "trump_hillary.jpg"])
    assert store.example("emma.jpg").read_bytes() == (source / "examples/inputs/emma.jpg").read_bytes()


def test_cli_installs_samples_unless_told_not_to_and_lists_them(tmp_path):
    assert _cli(tmp_path, "models", "import", str(ASSETS), "--arch", "mb05", "--no-bfm", "--no-examples").returncode == 0
    info = _cli(tmp_path, "models", "info").stdout
    assert "obama.mp4          missing" in info and "mb05.onnx" in info
    proc = _cli(tmp_path, "models", "import", str(ASSETS), "--arch", "mb05", "--no-bfm")
    assert proc.returncode == 0, proc.stderr
    assert "imported 12 file(s)" in proc.stdout
    info = _cli(tmp_path, "models", "info").stdout
    assert f"obama.mp4          installed  {tmp_path / 'upstream' / 'demo@obama' / 'obama.mp4'}" in info
