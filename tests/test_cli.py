"""The face3d-nb command on real files, including the awkward ones users will give it."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from face3d_nb.testing.assets import IMAGES, VIDEO


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
