"""Writing results: meshes as OBJ/PLY with colours sampled from the image, and overlay pictures.

Meshes are written as upstream does: y flipped to point up (``height - y``) and each triangle's
winding reversed so faces point towards the viewer in that frame; several faces go into one file.
An OBJ can also carry texture coordinates (``vt``) and use a texture per face: the faces share one
UV layout, and face k uses material ``face<k>`` (from 1) of a material library (:func:`write_mtl`)
whose ``map_Kd`` is that face's texture image (:func:`~face3d_nb.core.uv_texture.uv_texture`).
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np

from .uv_texture import uv_texture

__all__ = ["MESH_FORMATS", "draw_overlay", "material_name", "mesh_bytes", "texture_paths", "vertex_colors", "write_mtl",
           "write_obj", "write_ply", "write_textured_obj", "write_uv_textures"]

#: Mesh file formats: name -> MIME type.
MESH_FORMATS = {"obj": "model/obj", "ply": "application/ply"}


def vertex_colors(image: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Colour (V, 3) uint8 RGB of the pixel under each vertex (V, 3+) of a BGR image."""
    h, w = image.shape[:2]
    x = np.clip(np.round(vertices[:, 0]), 0, w - 1).astype(np.intp)
    y = np.clip(np.round(vertices[:, 1]), 0, h - 1).astype(np.intp)
    return image[y, x, ::-1]


def _merge(meshes: Sequence[np.ndarray], triangles: np.ndarray, height: int) -> tuple[np.ndarray, np.ndarray]:
    if not meshes:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int32)
    verts = np.concatenate(meshes).astype(np.float32)
    verts[:, 1] = height - verts[:, 1]
    n = len(meshes[0])
    return verts, np.concatenate([triangles[:, ::-1] + k * n for k in range(len(meshes))])


def _opened(target: str | Path | BinaryIO):
    """A binary file to write: ``target`` opened, or ``target`` itself when it is already a file."""
    return nullcontext(target) if hasattr(target, "write") else open(target, "wb")


def material_name(k: int) -> str:
    """The material of face ``k`` (from 0) in an OBJ and its material library: ``face1``, ``face2``, ..."""
    return f"face{k + 1}"


def _file_name(name: str, what: str) -> str:
    # OBJ and MTL separate names with spaces (``mtllib a.mtl b.mtl``): a name with one would break.
    if not name or any(c.isspace() for c in name):
        raise ValueError(f"{what} {name!r} must be a file name without spaces")
    return name


def write_obj(path: str | Path | BinaryIO, meshes: Sequence[np.ndarray], triangles: np.ndarray, height: int,
              colors: Sequence[np.ndarray] | None = None, uv: np.ndarray | None = None,
              mtllib: str | None = None) -> None:
    """OBJ of the meshes (each (V, 3) pixels of an image ``height`` tall), all in one file (a path or
    a binary file object); with ``colors`` (one (V, 3) uint8 RGB array per mesh) as ``v x y z r g b``.

    ``uv`` (V, 2) (u, v) in 0..1, v up, of each mesh's vertices (one layout for all meshes) adds
    ``vt`` lines and ``f v/vt`` faces; ``mtllib``, the material library's file name relative to the
    OBJ (:func:`write_mtl`), then has mesh k use material :func:`material_name` (k).
    """
    verts, faces = _merge(meshes, triangles, height)
    n = len(meshes[0]) if meshes else 0
    if uv is not None and (np.ndim(uv) != 2 or np.shape(uv)[1] != 2 or (meshes and len(uv) != n)):
        raise ValueError(f"uv must be (V, 2), one row per vertex of each mesh (V = {n}), got {np.shape(uv)}")
    if mtllib is not None and uv is None:
        raise ValueError("a material library needs texture coordinates: pass uv too")
    header = "" if mtllib is None else f"mtllib {_file_name(mtllib, 'material library')}\n"
    with _opened(path) as f:
        f.write(header.encode("utf-8"))
        if colors is None:
            np.savetxt(f, verts, fmt="v %.2f %.2f %.2f")
        else:
            rgb = np.concatenate(colors) / 255.0 if meshes else np.zeros((0, 3))
            np.savetxt(f, np.hstack([verts, rgb]), fmt="v %.2f %.2f %.2f %.3f %.3f %.3f")
        if uv is None:
            np.savetxt(f, faces + 1, fmt="f %d %d %d")
            return
        np.savetxt(f, uv, fmt="vt %.6f %.6f")
        # Every mesh has the same layout: a corner's vt is its vertex's index within its mesh.
        corners = triangles[:, ::-1] + 1
        for k in range(len(meshes)):
            if mtllib is not None:
                f.write(f"usemtl {material_name(k)}\n".encode("ascii"))
            pairs = np.stack([corners + k * n, corners], axis=-1).reshape(len(corners), 6)
            np.savetxt(f, pairs, fmt="f %d/%d %d/%d %d/%d")


def write_mtl(path: str | Path | BinaryIO, textures: Sequence[str]) -> None:
    """The material library of a textured OBJ (:func:`write_obj` with ``mtllib``): material
    :func:`material_name` (k) shows ``textures[k]``, an image's file name relative to the library,
    as it is (white ambient and diffuse colour, no specular highlight)."""
    lines = ["# face3d_nb: one material per face, its texture in the model's UV layout"]
    for k, texture in enumerate(textures):
        lines += [f"newmtl {material_name(k)}", "Ka 1.000 1.000 1.000", "Kd 1.000 1.000 1.000",
                  "Ks 0.000 0.000 0.000", "illum 1", f"map_Kd {_file_name(texture, 'texture')}"]
    with _opened(path) as f:
        f.write(("\n".join(lines) + "\n").encode("utf-8"))


def texture_paths(first: Path, count: int) -> list[Path]:
    """Texture files for ``count`` faces: ``first`` for the first face, then the same name with
    ``-2``, ``-3``, ... before the extension (``tex.png``, ``tex-2.png``, ...)."""
    return [first if k == 0 else first.with_name(f"{first.stem}-{k + 1}{first.suffix}") for k in range(count)]


def write_uv_textures(first: str | Path, image: np.ndarray, meshes: Sequence[np.ndarray], triangles: np.ndarray,
                      uv: np.ndarray, size: int = 512) -> list[Path]:
    """Write each mesh's (size, size) texture (:func:`~face3d_nb.core.uv_texture.uv_texture` of the
    BGR ``image``, ``uv`` (V, 2)) to :func:`texture_paths` (``first``, ...); returns the paths.
    ``ValueError`` for an extension OpenCV cannot write, ``OSError`` for a file it could not."""
    first = Path(first)
    if not cv2.haveImageWriter(str(first)):
        raise ValueError(f"{first}: unknown image extension (try .png)")
    paths = texture_paths(first, len(meshes))
    for path, mesh in zip(paths, meshes):
        if not cv2.imwrite(str(path), uv_texture(image, mesh, triangles, uv, size)):
            raise OSError(f"cannot write {path} (is the folder there and writable?)")
    return paths


def _relative(path: Path, start: Path) -> str:
    try:
        return Path(os.path.relpath(path, start)).as_posix()
    except ValueError:  # on another drive (Windows): only an absolute name reaches it
        return path.resolve().as_posix()


def write_textured_obj(path: str | Path, meshes: Sequence[np.ndarray], triangles: np.ndarray, height: int,
                       colors: Sequence[np.ndarray] | None, uv: np.ndarray | None, textures: Sequence[Path]) -> None:
    """:func:`write_obj` to ``path`` with mesh k showing ``textures[k]`` (image files, one per mesh,
    written already; ``uv`` (V, 2) their layout) through a material library beside it (``path`` with
    ``.mtl``) that names them relative to it. No textures: a plain OBJ, without ``uv``.
    ``ValueError`` when a file name holds a space, which OBJ cannot say."""
    if not textures:
        write_obj(path, meshes, triangles, height, colors)
        return
    library = Path(path).with_suffix(".mtl")
    _file_name(library.name, "material library")  # before either file is written
    write_mtl(library, [_relative(Path(t), library.parent) for t in textures])
    write_obj(path, meshes, triangles, height, colors, uv, library.name)


def write_ply(path: str | Path | BinaryIO, meshes: Sequence[np.ndarray], triangles: np.ndarray, height: int,
              colors: Sequence[np.ndarray] | None = None) -> None:
    """Binary little-endian PLY of the meshes, as :func:`write_obj`."""
    verts, faces = _merge(meshes, triangles, height)
    fields = [("xyz", "<f4", 3)] + ([("rgb", "u1", 3)] if colors is not None else [])
    vertex = np.empty(len(verts), dtype=fields)
    vertex["xyz"] = verts
    color_header = ""
    if colors is not None:
        vertex["rgb"] = np.concatenate(colors) if meshes else np.zeros((0, 3), np.uint8)
        color_header = "property uchar red\nproperty uchar green\nproperty uchar blue\n"
    face = np.empty(len(faces), dtype=[("n", "u1"), ("idx", "<i4", 3)])
    face["n"], face["idx"] = 3, faces
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(verts)}\nproperty float x\nproperty float y\nproperty float z\n{color_header}"
        f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n"
    )
    with _opened(path) as f:
        f.write(header.encode("ascii"))
        f.write(vertex.tobytes())
        f.write(face.tobytes())


def mesh_bytes(fmt: str, meshes: Sequence[np.ndarray], triangles: np.ndarray, height: int,
               colors: Sequence[np.ndarray] | None = None) -> bytes:
    """The file :func:`write_obj` (``fmt`` "obj") or :func:`write_ply` ("ply") would write, as bytes."""
    if fmt not in MESH_FORMATS:
        raise ValueError(f"unknown mesh format {fmt!r}; choose one of {', '.join(MESH_FORMATS)}")
    buffer = io.BytesIO()
    (write_obj if fmt == "obj" else write_ply)(buffer, meshes, triangles, height, colors)
    return buffer.getvalue()


def draw_overlay(image: np.ndarray, faces) -> np.ndarray:
    """A copy of the BGR ``image`` with each face's box, 68 landmarks and pose angles drawn on."""
    out = image.copy()
    thickness = max(1, round(max(image.shape[:2]) / 500))
    for face in faces:
        x1, y1, x2, y2 = np.round(face.box[:4]).astype(int)
        cv2.rectangle(out, (x1, y1), (x2, y2), (255, 128, 0), thickness, cv2.LINE_AA)
        for x, y in np.round(face.landmarks[:, :2]).astype(int):
            cv2.circle(out, (x, y), thickness + 1, (0, 255, 0), -1, cv2.LINE_AA)
        label = f"yaw {face.pose.yaw:.0f} pitch {face.pose.pitch:.0f} roll {face.pose.roll:.0f}"
        cv2.putText(out, label, (x1, max(y1 - 6, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thickness, (255, 255, 255), thickness, cv2.LINE_AA)
    return out
