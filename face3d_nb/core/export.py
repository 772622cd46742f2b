"""Writing results: meshes as OBJ/PLY with colours sampled from the image, and overlay pictures.

Meshes are written as upstream does: y flipped to point up (``height - y``) and each triangle's
winding reversed so faces point towards the viewer in that frame; several faces go into one file.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np

__all__ = ["MESH_FORMATS", "draw_overlay", "mesh_bytes", "vertex_colors", "write_obj", "write_ply"]

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


def write_obj(path: str | Path | BinaryIO, meshes: Sequence[np.ndarray], triangles: np.ndarray, height: int,
              colors: Sequence[np.ndarray] | None = None) -> None:
    """OBJ of the meshes (each (V, 3) pixels of an image ``height`` tall), all in one file (a path or
    a binary file object); with ``colors`` (one (V, 3) uint8 RGB array per mesh) as ``v x y z r g b``."""
    verts, faces = _merge(meshes, triangles, height)
    with _opened(path) as f:
        if colors is None:
            np.savetxt(f, verts, fmt="v %.2f %.2f %.2f")
        else:
            rgb = np.concatenate(colors) / 255.0 if meshes else np.zeros((0, 3))
            np.savetxt(f, np.hstack([verts, rgb]), fmt="v %.2f %.2f %.2f %.3f %.3f %.3f")
        np.savetxt(f, faces + 1, fmt="f %d %d %d")


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
