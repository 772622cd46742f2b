"""What the 3D view can show of a face besides its shaded mesh, as numbers: pure numpy, no widgets.

The views (:data:`VIEWS`), after 3DDFA_V2's ``demo.py`` options, each drawn live by the page:

- ``shaded``: the flat-shaded mesh in the viewer's colour and lights (upstream ``3d``);
- ``texture``: each vertex coloured by the camera frame at its own image position, unlit;
- ``depth``: grey from :func:`depth_range`'s far (black) to near (white) (upstream ``depth``);
- ``pncc``: each vertex coloured by its normalised mean-shape coordinate, :func:`pncc_colors`
  (upstream ``pncc``);
- ``points``: the dense vertices as points in the viewer's colour (upstream ``2d_dense``).

Any of them can be drawn over the frame the face came from, in the frame's pixel space (an
orthographic camera: :func:`frame_transform`), or in the free-orbit 3D view. The head-pose cube
(upstream ``pose``) is :func:`pose_box`.

Every image position here is in the processed frame's pixels: x right, y down, z towards the viewer,
pixel centres at integers (as :class:`~face3d_nb.core.morphable.MorphableModel` gives them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.morphable import MorphableModel
from .gpu_packing import face_affine
from .view_transform import ViewTransform

__all__ = ["BOX_EDGES", "HEADER_ROWS", "VIEWS", "FaceFrame", "Look", "depth_range", "frame_extent", "frame_transform",
           "pncc_colors", "pncc_range", "pose_box"]

#: The ways a face can be drawn, in the order the app offers them (see the module docstring).
VIEWS = ("shaded", "texture", "depth", "pncc", "points")

# How far behind the nearest landmark (the nose tip) the depth view turns black, in face widths
# (the ears sit about half a face width behind the nose).
_DEPTH_SPAN = 0.75
# The pose box, in widths of the 68 landmarks of the mean face: its back square's and front square's
# half sides and how far each lies behind or before the landmarks' centre; a front wider than the
# back reads as perspective, so the box shows which way the head faces even head-on.
_BOX_BACK, _BOX_FRONT, _BOX_DEPTH = 0.45, 0.55, 0.55
_BOX_SIGNS = np.array([[(i >> k & 1) * 2 - 1 for k in range(3)] for i in range(8)], np.float64)
# The corners about the landmarks' centre, in landmark widths.
_BOX_CORNERS = np.column_stack([_BOX_SIGNS[:, :2] * np.where(_BOX_SIGNS[:, 2:] > 0, _BOX_FRONT, _BOX_BACK),
                                _BOX_SIGNS[:, 2] * _BOX_DEPTH])
#: The pose box's 12 edges as pairs of :func:`pose_box` corner indices.
BOX_EDGES = np.array([[0, 1], [1, 3], [3, 2], [2, 0], [4, 5], [5, 7], [7, 6], [6, 4],
                      [0, 4], [1, 5], [2, 6], [3, 7]])


#: Rows of (a, b, HEADER_Z) a position update carries after its vertices: :meth:`FaceFrame.header`.
HEADER_ROWS = 5
# Far behind every camera: the shader leaves a header row undrawn.
HEADER_Z = 1e30


@dataclass(frozen=True)
class Look:
    """How the viewer draws faces: ``view`` one of :data:`VIEWS`; ``over_frame`` in the frame's pixel
    space over the frame (True) or in the free-orbit 3D view."""

    view: str = "shaded"
    over_frame: bool = False

    def __post_init__(self):
        if self.view not in VIEWS:
            raise ValueError(f"view must be one of {', '.join(VIEWS)}, got {self.view!r}")

    @property
    def plain(self) -> bool:
        """Whether this is the default look, which needs nothing of the frame."""
        return self.view == "shaded" and not self.over_frame


@dataclass(frozen=True)
class FaceFrame:
    """Where one face update sits in its frame, for the views that use the frame.

    ``name`` the frame's name in the page, ``"tag:seq"`` (tag 0: sent by the kernel; else the camera
    page's), "" when the page has no frame for the update; ``size`` (width, height) processed pixels;
    ``transform`` the view transform the update is placed with; ``depth`` (far, near) image z of the
    depth view (:func:`depth_range`).
    """

    name: str
    size: tuple[int, int]
    transform: ViewTransform
    depth: tuple[float, float]

    @classmethod
    def from_header(cls, header: np.ndarray) -> FaceFrame:
        """The frame a :meth:`header` says (the centre and scale as float32 rounded them)."""
        (tag, seq, _), size, (cx, cy, _), (cz, scale, _), depth = header.astype(np.float64)
        name = f"{tag:.0f}:{seq:.0f}" if tag >= 0 else ""
        return cls(name, (int(size[0]), int(size[1])), ViewTransform(np.array([cx, cy, cz], np.float32), float(scale)),
                   (float(depth[0]), float(depth[1])))

    @property
    def tag_seq(self) -> tuple[float, float]:
        """The name as the numbers (tag, seq) the page gets; (-1, -1) for none."""
        if not self.name:
            return -1.0, -1.0
        tag, seq = self.name.split(":")
        return float(tag), float(seq)

    def uniforms(self) -> dict[str, object]:
        """The face shaders' per-update frame uniforms (values only; lists for vectors). ``frameName``
        is (tag, seq), which the shaders do not use: the page reads it."""
        return {"frameName": list(self.tag_seq), "frameSize": [float(v) for v in self.size],
                "imageCenter": [float(v) for v in self.transform.center], "imageScale": float(self.transform.scale),
                "depthRange": [float(v) for v in self.depth]}

    def header(self) -> np.ndarray:
        """(:data:`HEADER_ROWS`, 3) float32: the same numbers as rows ``(a, b, HEADER_Z)``: the name's tag
        and seq (-1, -1 for none), the frame size, the centre's x and y, its z and the scale, the depth
        range. Every value is exact in float32 but the centre and scale, which the view rounds anyway."""
        center, scale = self.transform.center, self.transform.scale
        pairs = [self.tag_seq, self.size, center[:2], (center[2], scale), self.depth]
        return np.array([[a, b, HEADER_Z] for a, b in pairs], np.float32)


def frame_transform(height: int, width: int) -> ViewTransform:
    """The view transform of a ``height`` x ``width`` frame's pixel space: the frame's centre at the
    origin, its longer side one view unit, so pixel ``(x, y)`` of the frame lands where an
    orthographic camera spanning :func:`frame_extent` shows that pixel's centre."""
    if height < 1 or width < 1:
        raise ValueError(f"a frame must be at least 1x1 pixels, got {width}x{height}")
    center = np.array([width / 2 - 0.5, height / 2 - 0.5, 0.0], np.float32)
    return ViewTransform(center=center, scale=1.0 / max(height, width))


def frame_extent(height: int, width: int) -> tuple[float, float]:
    """(half width, half height) in view units of a frame under :func:`frame_transform`: the
    orthographic camera's right and top."""
    scale = 1.0 / max(height, width)
    return width / 2 * scale, height / 2 * scale


def depth_range(landmarks: np.ndarray) -> tuple[float, float]:
    """(far, near) image z of the depth view for the face with ``landmarks`` (68, 3): white at the
    nearest landmark, black :data:`_DEPTH_SPAN` face widths behind it. Landmarks rather than the
    mesh, so the page decoding the mesh itself needs nothing more."""
    landmarks = np.asarray(landmarks, np.float64)
    near = float(landmarks[:, 2].max())
    width = float(np.ptp(landmarks[:, 0]))
    return near - _DEPTH_SPAN * max(width, 1e-6), near


def pncc_colors(mean: np.ndarray) -> np.ndarray:
    """(K, 3) float32 in 0..1: each vertex's mean-shape coordinate ``mean`` (K, 3), normalised per
    axis over the mesh (upstream's ``ncc_code``), the PNCC view's colour."""
    mean = np.asarray(mean, np.float64)
    low, span = pncc_range(mean)
    return ((mean - low) / span).astype(np.float32)


def pncc_range(mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(low, span) (3,) of ``mean`` (K, 3), in its dtype: PNCC is ``(mean - low) / span`` per axis
    (a flat axis spans 1)."""
    span = np.ptp(mean, axis=0)
    return mean.min(axis=0), np.where(span > 0, span, 1).astype(mean.dtype)


def pose_box(model: MorphableModel, params: np.ndarray, roi_box, landmarks: np.ndarray) -> np.ndarray:
    """(8, 3) float32 image pixels: the corners of a box fixed to the head (upstream's ``pose`` view),
    around the mean face's landmarks, its front towards the face's front, posed like the face of
    ``params`` / ``roi_box`` and in the frame of its ``landmarks`` (68, 3) as the meshes are. Corner
    ``i`` has sign ``(bit k of i) * 2 - 1`` along model axis ``k`` (x, y, z; z +1 at the front);
    :data:`BOX_EDGES` joins them."""
    anchors = model.mean[model.landmarks].astype(np.float64)
    corners = anchors.mean(axis=0) + _BOX_CORNERS * np.ptp(anchors[:, 0])
    affine = face_affine(model, params, roi_box, landmarks)
    return (corners @ affine[:, :3].T + affine[:, 3]).astype(np.float32)
