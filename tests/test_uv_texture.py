"""UV textures: the layout file, unwrapping a picture into it, and textured OBJ files.

Synthetic pictures and meshes test the conventions (v up, pixel centres, the OBJ's ``vt`` and
material library); the real photos test that the texture of a face looks like that face, the right
way round.
"""

import shutil
import time

import cv2
import numpy as np
import pytest
import scipy.io

from face3d_nb.core.export import texture_paths, write_mtl, write_obj, write_textured_obj, write_uv_textures
from face3d_nb.core.raster import rasterize
from face3d_nb.core.uv_texture import sample_bilinear, uv_texture
from face3d_nb.models.store import AssetError, ModelStore
from face3d_nb.models.uv_layout import UV_KEY, read_uv_layout, uv_layout
from face3d_nb.testing.assets import ASSETS, IMAGES

SQUARE = np.array([[0, 1, 2], [1, 3, 2]])


def _gradient(size=64):
    """A BGR picture whose red grows to the right and green downwards, linearly."""
    ys, xs = np.mgrid[0:size, 0:size]
    return np.dstack([np.full((size, size), 40), 3 * ys, 3 * xs]).astype(np.uint8)


def _square_mesh(size=64):
    """The picture's corners as a mesh, with UVs putting its top edge at v = 1 (OBJ's up)."""
    n = size - 1
    vertices = np.array([[0, 0, 0], [n, 0, 0], [0, n, 0], [n, n, 0]], np.float32)
    uv = np.array([[0, 1], [1, 1], [0, 0], [1, 0]], np.float32)
    return vertices, uv


def test_a_picture_unwrapped_onto_its_own_square_comes_back_the_same():
    picture = _gradient()
    vertices, uv = _square_mesh()
    texture = uv_texture(picture, vertices, SQUARE, uv, size=64)
    assert texture.shape == (64, 64, 3) and texture.dtype == np.uint8
    assert np.abs(texture.astype(int) - picture).max() <= 1
    mirrored = uv_texture(picture, vertices, SQUARE, uv * [-1, 1] + [1, 0], size=64)
    assert np.abs(mirrored.astype(int) - picture[:, ::-1]).max() <= 1
    flipped = uv_texture(picture, vertices, SQUARE, uv * [1, -1] + [0, 1], size=64)
    assert np.abs(flipped.astype(int) - picture[::-1]).max() <= 1


def test_a_texture_of_another_size_and_an_uncovered_area():
    picture = _gradient()
    vertices, uv = _square_mesh()
    small = uv_texture(picture, vertices, SQUARE, uv, size=32)
    # Texture pixel (i, j) is picture point (63 j / 31, 63 i / 31): linear, so bilinear sampling is exact.
    ys, xs = np.mgrid[0:32, 0:32] * (63 / 31)
    assert np.abs(small[:, :, 2].astype(float) - 3 * xs).max() <= 1.5
    assert np.abs(small[:, :, 1].astype(float) - 3 * ys).max() <= 1.5
    half = uv_texture(picture, vertices, SQUARE[:1], uv, size=32)
    rows, cols = np.indices((32, 32))
    assert (half[rows + cols > 31] == 0).all() and (half[rows + cols < 31] > 0).any(axis=-1).all()


def test_bilinear_sampling_at_centres_between_them_and_outside():
    picture = np.array([[[0], [100]], [[50], [150]]], np.uint8)
    points = np.array([[0, 0], [1, 1], [0.5, 0], [0.5, 0.5], [0.25, 1], [-7, -3], [9, 0.5], [1, 0]], float)
    np.testing.assert_allclose(sample_bilinear(picture, points)[:, 0], [0, 150, 50, 75, 75, 0, 125, 100])
    one = np.full((1, 1, 3), 9, np.uint8)
    np.testing.assert_allclose(sample_bilinear(one, np.array([[0.4, -2.0]])), [[9, 9, 9]])


@pytest.mark.parametrize(("image", "uv", "size", "message"), [
    (np.zeros((8, 8), np.uint8), None, 16, "image must be"),
    (np.zeros((8, 8, 3), np.float32), None, 16, "image must be"),
    (np.zeros((8, 8, 3), np.uint8), np.zeros((3, 2)), 16, "uv must be"),
    (np.zeros((8, 8, 3), np.uint8), None, 1, "size must be"),
    (np.zeros((8, 8, 3), np.uint8), None, 16.0, "size must be"),
])
def test_wrong_arguments_are_a_clear_error(image, uv, size, message):
    vertices, square_uv = _square_mesh(8)
    with pytest.raises(ValueError, match=message):
        uv_texture(image, vertices, SQUARE, square_uv if uv is None else uv, size)


# -- the layout file ------------------------------------------------------------------------------
def test_the_layout_file_is_checked(tmp_path):
    good = tmp_path / "good.mat"
    scipy.io.savemat(good, {"UV": np.array([[0.0, 1.0], [0.5, 0.25]])})
    layout = read_uv_layout(good)
    assert layout.dtype == np.float32 and layout.tolist() == [[0.0, 1.0], [0.5, 0.25]]
    cases = {
        "garbage": b"MATLAB 5.0 MAT-file" + bytes(range(256)) * 3,
        "text": b"UV = [0 1; 1 0]\n",
    }
    for name, data in cases.items():
        (tmp_path / f"{name}.mat").write_bytes(data)
    arrays = {"missing": {"XY": np.zeros((3, 2))}, "shape": {"UV": np.zeros((3, 3))},
              "nan": {"UV": np.array([[0.0, np.nan]])}, "range": {"UV": np.array([[0.0, 1.5]])},
              "complex": {"UV": np.full((3, 2), 0.5 + 0.5j)}}
    for name, content in arrays.items():
        scipy.io.savemat(tmp_path / f"{name}.mat", content)
    messages = {"garbage": "not a readable MATLAB file", "text": "not a readable MATLAB file",
                "missing": "no \\(N, 2\\) 'UV' array", "shape": "no \\(N, 2\\) 'UV' array", "nan": "not finite",
                "range": "outside 0..1", "complex": "not real numbers"}
    for name, message in messages.items():
        with pytest.raises(AssetError, match=message):
            read_uv_layout(tmp_path / f"{name}.mat")


def _store_with_layout(tmp_path, synthetic_store, layout):
    """A copy of the synthetic model cache with ``layout`` (N, 2) planted as BFM_UV.mat."""
    home = tmp_path / "home"
    shutil.copytree(synthetic_store.home, home)
    store = ModelStore(home)
    scipy.io.savemat(store.raw_path(UV_KEY), {"UV": layout})
    return store


def test_the_layout_of_the_mesh_vertices_is_that_of_their_full_model_vertices(tmp_path, synthetic_store):
    indices = np.load(synthetic_store.raw_path("indices"))
    full = np.random.default_rng(0).uniform(0, 1, (indices.max() + 1, 2))
    assert np.array_equal(uv_layout(_store_with_layout(tmp_path / "a", synthetic_store, full)),
                          full[indices].astype(np.float32))
    with pytest.raises(AssetError, match="do not fit"):
        uv_layout(_store_with_layout(tmp_path / "b", synthetic_store, full[:10]))


@pytest.mark.real_assets
def test_the_layout_is_fetched_on_first_use_and_verified(upstream, tmp_path):
    store = ModelStore(tmp_path)
    store.import_dir(ASSETS, ["indices"])
    layout = uv_layout(store)
    assert layout.shape == (38365, 2) and 0 <= layout.min() and layout.max() <= 1
    assert [path for path, _ in upstream.requests if path.endswith("BFM_UV.mat")] == [
        "/3ddfa_v2/1b6c67601abffc1e9f248b291708aef0e43b55ae/configs/BFM_UV.mat"]
    uv_layout(store)
    assert len(upstream.requests) == 1  # installed: not fetched again


# -- textured OBJ files --------------------------------------------------------------------------
def test_an_obj_with_texture_coordinates_and_a_material_per_face(tmp_path):
    vertices, uv = _square_mesh(8)
    meshes = [vertices, vertices + [10, 0, 0]]
    path = tmp_path / "m.obj"
    write_obj(path, meshes, SQUARE, 8, uv=uv, mtllib="m.mtl")
    lines = path.read_text().splitlines()
    assert lines[0] == "mtllib m.mtl"
    assert [line for line in lines if line.startswith("vt")] == [
        "vt 0.000000 1.000000", "vt 1.000000 1.000000", "vt 0.000000 0.000000", "vt 1.000000 0.000000"]
    faces = [line for line in lines if line.startswith(("f", "usemtl"))]
    # Winding reversed as for every mesh; vt follow their vertices, the same layout for both faces.
    assert faces == ["usemtl face1", "f 3/3 2/2 1/1", "f 3/3 4/4 2/2", "usemtl face2", "f 7/3 6/2 5/1", "f 7/3 8/4 6/2"]
    write_mtl(tmp_path / "m.mtl", ["t.png", "t-2.png"])
    mtl = (tmp_path / "m.mtl").read_text().splitlines()
    assert [line for line in mtl if line.startswith(("newmtl", "map_Kd"))] == [
        "newmtl face1", "map_Kd t.png", "newmtl face2", "map_Kd t-2.png"]
    plain = tmp_path / "plain.obj"
    write_obj(plain, meshes, SQUARE, 8)
    assert "vt" not in plain.read_text() and "f 3 2 1" in plain.read_text()


def test_texture_coordinates_must_fit_and_names_must_not_hold_spaces(tmp_path):
    vertices, uv = _square_mesh(8)
    with pytest.raises(ValueError, match="uv must be"):
        write_obj(tmp_path / "a.obj", [vertices], SQUARE, 8, uv=uv[:3])
    with pytest.raises(ValueError, match="needs texture coordinates"):
        write_obj(tmp_path / "a.obj", [vertices], SQUARE, 8, mtllib="a.mtl")
    with pytest.raises(ValueError, match="without spaces"):
        write_textured_obj(tmp_path / "a.obj", [vertices], SQUARE, 8, None, uv, [tmp_path / "my tex.png"])
    assert not list(tmp_path.iterdir())


def test_textures_and_the_obj_using_them_from_another_folder(tmp_path):
    picture = _gradient()
    vertices, uv = _square_mesh()
    meshes = [vertices, vertices * [0.5, 0.5, 1]]
    assert texture_paths(tmp_path / "t.png", 3) == [tmp_path / "t.png", tmp_path / "t-2.png", tmp_path / "t-3.png"]
    (tmp_path / "tex").mkdir()
    textures = write_uv_textures(tmp_path / "tex" / "face.png", picture, meshes, SQUARE, uv, size=16)
    assert textures == [tmp_path / "tex" / "face.png", tmp_path / "tex" / "face-2.png"]
    assert all(cv2.imread(str(t)).shape == (16, 16, 3) for t in textures)
    (tmp_path / "obj").mkdir()
    write_textured_obj(tmp_path / "obj" / "m.obj", meshes, SQUARE, 64, None, uv, textures)
    assert "map_Kd ../tex/face-2.png" in (tmp_path / "obj" / "m.mtl").read_text()
    with pytest.raises(ValueError, match="unknown image extension"):
        write_uv_textures(tmp_path / "face.txt", picture, meshes, SQUARE, uv)
    with pytest.raises(OSError, match="cannot write"):
        write_uv_textures(tmp_path / "nowhere" / "face.png", picture, meshes, SQUARE, uv)


def test_trimesh_reads_the_textured_obj(tmp_path):
    trimesh = pytest.importorskip("trimesh")
    picture = _gradient()
    vertices, uv = _square_mesh()
    textures = write_uv_textures(tmp_path / "face.png", picture, [vertices], SQUARE, uv, size=64)
    write_textured_obj(tmp_path / "m.obj", [vertices], SQUARE, 64, None, uv, textures)
    mesh = trimesh.load(tmp_path / "m.obj", process=False, maintain_order=True)
    np.testing.assert_allclose(mesh.visual.uv, uv)
    image = np.asarray(mesh.visual.material.image.convert("RGB"))
    assert np.abs(image[:, :, ::-1].astype(int) - picture).max() <= 1


# -- real faces ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def emma(request):
    """The first face of emma.jpg: the photo, its mesh (K, 3), the triangles and the UV layout (K, 2)."""
    store = request.getfixturevalue("real_store")
    store.import_dir(ASSETS, [UV_KEY])
    reconstructor = request.getfixturevalue("real_reconstructor")
    image = cv2.imread(str(IMAGES["emma"]))
    face = reconstructor(image)[0]
    return image, reconstructor.vertices(face), reconstructor.triangles, uv_layout(store), face


def _visible_mean(image, vertices, triangles, uv, texture):
    """Mean BGR of the texture where it shows triangles seen in the photo, and of the photo over the face."""
    seen = rasterize(vertices, triangles, image.shape[:2])
    shown = np.zeros(len(triangles), bool)
    shown[seen.triangle[seen.mask]] = True
    side = len(texture) - 1
    layout = rasterize(np.column_stack([uv[:, 0] * side, (1 - uv[:, 1]) * side, np.zeros(len(uv))]), triangles,
                       texture.shape[:2])
    where = layout.mask & shown[np.maximum(layout.triangle, 0)]
    assert where.mean() > 0.2
    return texture[where].mean(axis=0), image[seen.mask].mean(axis=0)


@pytest.mark.real_assets
def test_the_texture_of_a_real_face_has_its_colours_and_a_misplaced_one_has_not(emma):
    image, vertices, triangles, uv, _ = emma
    start = time.perf_counter()
    texture = uv_texture(image, vertices, triangles, uv)
    assert time.perf_counter() - start < 2.0
    assert texture.shape == (512, 512, 3) and 0.5 < texture.any(axis=-1).mean() < 0.9
    got, want = _visible_mean(image, vertices, triangles, uv, texture)
    assert np.abs(got - want).max() < 15, (got, want)
    # Negative controls: the mesh moved off the face, and the layout mirrored, miss the face's colours.
    for moved in (vertices + [np.ptp(vertices[:, 0]) * 1.2, 0, 0], vertices - [np.ptp(vertices[:, 0]) * 1.2, 0, 0]):
        wrong = uv_texture(image, moved, triangles, uv)
        assert np.abs(_visible_mean(image, vertices, triangles, uv, wrong)[0] - want).max() > 25
    mirrored = uv_texture(image, vertices, triangles, uv * [-1, 1] + [1, 0])
    assert np.abs(_visible_mean(image, vertices, triangles, uv, mirrored)[0] - want).max() > 25


@pytest.mark.real_assets
def test_the_texture_is_the_right_way_round_for_obj_viewers(emma, real_reconstructor):
    image, vertices, triangles, uv, face = emma
    texture = uv_texture(image, vertices, triangles, uv)
    # Upright and not mirrored: eyes above the mouth, the right eye (36-41) on the left as in the photo.
    rows = (1 - uv[real_reconstructor.model.landmarks, 1]) * 511
    cols = uv[real_reconstructor.model.landmarks, 0] * 511
    assert rows[36:48].max() < rows[48:68].min()
    assert cols[36:42].max() < cols[42:48].min() and face.landmarks[36:42, 0].max() < face.landmarks[42:48, 0].min()
    # Looked up as an OBJ viewer does (u right, v up), the texture gives each vertex its photo colour.
    colours = sample_bilinear(image, vertices)

    def lookup(u, v):
        return np.median(np.abs(sample_bilinear(texture, np.column_stack([u * 511, (1 - v) * 511])) - colours))

    assert lookup(uv[:, 0], uv[:, 1]) < 2
    assert lookup(1 - uv[:, 0], uv[:, 1]) > 10 and lookup(uv[:, 0], 1 - uv[:, 1]) > 10
