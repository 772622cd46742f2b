"""The face3d-nb command on real files, including the awkward ones users will give it."""

import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import scipy.io

from face3d_nb.models.store import ModelStore, git_blob_sha1
from face3d_nb.testing.assets import ASSETS, IMAGES, VIDEO
from face3d_nb.testing.media import face_picture


def run(cli_env, *args):
    # A timeout: a command that should fail at once (a bad settings file) must not hang the suite
    # by serving instead.
    return subprocess.run([sys.executable, "-m", "face3d_nb.cli", *map(str, args)], capture_output=True, text=True,
                          env=cli_env, timeout=300)


@pytest.mark.real_assets
def test_image_json_contract(cli_env):
    proc = run(cli_env, "image", IMAGES["trump_hillary"], "--json")
    assert proc.returncode == 0, proc.stderr
    faces = json.loads(proc.stdout)["faces"]
    assert len(faces) == 2
    for face in faces:
        assert len(face["box"]) == 5 and len(face["roi_box"]) == 4 and len(face["params"]) == 62
        assert set(face["pose"]) == {"yaw", "pitch", "roll"}


@pytest.mark.real_assets
def test_rgba_png_and_grayscale_jpeg(cli_env, tmp_path):
    image = cv2.imread(str(IMAGES["JianzhuGuo"]))
    rgba = tmp_path / "face.png"
    cv2.imwrite(str(rgba), np.dstack([image, np.full(image.shape[:2], 128, np.uint8)]))
    gray = tmp_path / "face_gray.jpg"
    cv2.imwrite(str(gray), cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
    for path in (rgba, gray):
        proc = run(cli_env, "image", path, "--json")
        assert proc.returncode == 0, proc.stderr
        assert len(json.loads(proc.stdout)["faces"]) == 1


@pytest.mark.real_assets
def test_photo_without_a_face(cli_env, tmp_path):
    # The blue lettered backdrop between the two speakers: a real photo, no face.
    backdrop = cv2.imread(str(IMAGES["trump_hillary"]))[0:300, 480:1000]
    path = tmp_path / "backdrop.jpg"
    cv2.imwrite(str(path), backdrop)
    proc = run(cli_env, "image", path, "--json")
    assert proc.returncode == 0
    assert json.loads(proc.stdout) == {"faces": []}
    assert "no face found" in proc.stderr


@pytest.mark.real_assets
@pytest.mark.parametrize("kind", ["truncated", "empty", "missing", "text"])
def test_unreadable_input_is_one_clear_line(cli_env, tmp_path, kind):
    path = tmp_path / f"{kind}.jpg"
    if kind == "truncated":
        path.write_bytes(IMAGES["trump_hillary"].read_bytes()[:30000])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("hello")
    proc = run(cli_env, "image", path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("face3d-nb: error:") and str(path.name) in lines[0]
    assert "Traceback" not in proc.stderr


@pytest.mark.real_assets
def test_meshes_and_overlay_are_written(cli_env, tmp_path):
    trimesh = pytest.importorskip("trimesh")
    obj, ply, png = tmp_path / "m.obj", tmp_path / "m.ply", tmp_path / "o.png"
    proc = run(cli_env, "image", IMAGES["trump_hillary"], "--obj", obj, "--ply", ply, "--overlay", png)
    assert proc.returncode == 0, proc.stderr
    for path in (obj, ply):
        mesh = trimesh.load(path, process=False)
        assert mesh.vertices.shape == (2 * 38365, 3) and mesh.faces.shape == (2 * 76073, 3)
        assert mesh.visual.vertex_colors.shape[0] == 2 * 38365
        # Exported with y up: the forehead is above the chin.
        assert np.ptp(mesh.vertices[:, 1]) > 100
    overlay, original = cv2.imread(str(png)), cv2.imread(str(IMAGES["trump_hillary"]))
    assert overlay.shape == original.shape and not np.array_equal(overlay, original)


@pytest.mark.real_assets
def test_video_json_every_nth_frame(cli_env):
    proc = run(cli_env, "video", VIDEO, "--json", "--every", "10")
    assert proc.returncode == 0, proc.stderr
    frames = json.loads(proc.stdout)["frames"]
    assert [f["frame"] for f in frames] == [0, 10, 20, 30, 40, 50]
    assert all(len(f["faces"]) == 1 for f in frames)


def test_video_that_is_not_a_video(cli_env, tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"\x00" * 1000)
    proc = run(cli_env, "video", path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "face3d-nb: error:" in proc.stderr


@pytest.mark.real_assets
def test_missing_models_say_which_command_fixes_it(tmp_path):
    env = {**__import__("os").environ, "FACE3D_HOME": str(tmp_path / "empty")}
    proc = run(env, "image", IMAGES["emma"])
    assert proc.returncode == 1
    assert "face3d-nb models fetch" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_models_info_lists_installed_and_missing(cli_env):
    proc = run(cli_env, "models", "info")
    assert proc.returncode == 0
    assert "mb05.onnx" in proc.stdout and "converted" in proc.stdout
    assert "bfm" in proc.stdout and "missing" in proc.stdout
    assert "default arch: mb05" in proc.stdout


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("config.yaml", "performance:\n  max_fsp: 15\n", "performance.max_fsp: unknown setting (did you mean "
                                                         "'performance.max_fps'?)"),
        ("config.yaml", "performance:\n  input_resolution: 300\n", "input_size: 300 is not one the app offers"),
        ("config.toml", "max_fps = \n", "invalid TOML"),
        ("missing.yaml", None, "missing.yaml"),
    ],
)
def test_app_with_a_bad_settings_file_is_one_line_before_serving(cli_env, tmp_path, name, text, message):
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    proc = run(cli_env, "app", "--config", path, "--port", 1)
    assert proc.returncode == 2
    assert proc.stderr.startswith("face3d-nb: error: ") and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def _home_with_layout(tmp_path, store, layout=True):
    """The environment of a copy of the model cache ``store`` with a UV layout: the real one for the
    real models, else one planted for the synthetic mesh's full-model vertices."""
    home = tmp_path / "home"
    shutil.copytree(store.home, home)
    copy = ModelStore(home)
    if layout and git_blob_sha1(copy.raw_path("indices")) == copy.files["indices"]["sha1"]:
        copy.import_dir(ASSETS, ["uv"])
    elif layout:  # the mean face seen from the front, squeezed into 0..1
        xy = np.load(copy.raw_path("u_shp")).reshape(-1, 3)[:, :2]
        scipy.io.savemat(copy.raw_path("uv"), {"UV": (xy - xy.min(axis=0)) / np.ptp(xy, axis=0)})
    return {**os.environ, "FACE3D_HOME": str(home)}


def test_uv_textures_and_an_obj_that_uses_them(synthetic_store, tmp_path):
    env = _home_with_layout(tmp_path, synthetic_store)
    photo = tmp_path / "faces.png"
    cv2.imwrite(str(photo), face_picture(640, 360, ((0.25, 0.5), (0.75, 0.5))))
    (tmp_path / "tex").mkdir()
    obj = tmp_path / "m.obj"
    proc = run(env, "image", photo, "--json", "--uv-tex", tmp_path / "tex" / "face.png", "--obj", obj)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["faces"]) == 2
    for name in ("face.png", "face-2.png"):
        texture = cv2.imread(str(tmp_path / "tex" / name))
        assert texture.shape == (512, 512, 3) and texture.any()
    lines = obj.read_text().splitlines()
    assert lines[0] == "mtllib m.mtl" and lines.count("usemtl face2") == 1
    assert sum(line.startswith("vt ") for line in lines) == 576  # one layout for both faces
    assert next(line for line in lines if line.startswith("f ")).count("/") == 3
    mtl = (tmp_path / "m.mtl").read_text()
    assert "map_Kd tex/face.png" in mtl and "map_Kd tex/face-2.png" in mtl


@pytest.mark.parametrize(("args", "message"), [
    (("--uv-tex", "face.xyz"), "unknown image extension"),
    (("--uv-tex", "missing/face.png"), "cannot write"),
    (("--uv-tex", "face.png", "--obj", "my mesh.obj"), "without spaces"),
])
def test_uv_texture_output_problems_are_one_line(synthetic_store, tmp_path, monkeypatch, args, message):
    env = _home_with_layout(tmp_path, synthetic_store)
    monkeypatch.chdir(tmp_path)
    cv2.imwrite("face_photo.png", face_picture())
    proc = run(env, "image", "face_photo.png", *args)
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr
    assert proc.stderr.startswith("face3d-nb: error: ") and len(proc.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.glob("*.mtl")) and not list(tmp_path.glob("*.obj"))


def test_a_layout_that_cannot_be_downloaded_is_one_line(synthetic_store, tmp_path):
    env = {**_home_with_layout(tmp_path, synthetic_store, layout=False),
           "FACE3D_URL_3DDFA_V2": "http://127.0.0.1:9/{commit}/{path}"}
    cv2.imwrite(str(tmp_path / "face.png"), face_picture())
    proc = run(env, "image", tmp_path / "face.png", "--uv-tex", tmp_path / "tex.png")
    assert proc.returncode == 1 and "cannot download" in proc.stderr and "BFM_UV.mat" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "tex.png").exists()


@pytest.mark.real_assets
def test_uv_textures_of_a_real_photo_with_three_faces(real_store, tmp_path):
    env = _home_with_layout(tmp_path, real_store)
    proc = run(env, "image", IMAGES["emma"], "--uv-tex", tmp_path / "emma.png", "--obj", tmp_path / "emma.obj")
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in sorted(tmp_path.glob("emma*.png"))] == ["emma-2.png", "emma-3.png", "emma.png"]
    assert (tmp_path / "emma.mtl").read_text().count("newmtl") == 3
    lines = (tmp_path / "emma.obj").read_text().splitlines()
    assert sum(line.startswith("vt ") for line in lines) == 38365
    assert sum(line.startswith("f ") for line in lines) == 3 * 76073


@pytest.mark.real_assets
def test_models_import_takes_the_layout_when_the_folder_has_it(tmp_path):
    env = {**os.environ, "FACE3D_HOME": str(tmp_path)}
    proc = run(env, "models", "import", ASSETS, "--arch", "mb05", "--no-bfm", "--no-examples")
    assert proc.returncode == 0, proc.stderr
    assert "imported 8 file(s)" in proc.stdout and ", and the UV layout" in proc.stdout
    assert ModelStore(tmp_path).installed("uv")
