"""One image in, faces out: detect -> roi -> regress -> pose and landmarks (dense mesh on demand)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..models.store import ModelPaths, ModelStore
from .detail import DetailLevels
from .detector import FaceDetector
from .frames import as_bgr
from .morphable import MorphableModel, Pose, poses_from_params
from .regressor import Regressor, roi_boxes_from_bboxes

__all__ = ["Face", "Reconstructor", "load_morphable_model", "scale_face"]


@dataclass(frozen=True)
class Face:
    """One reconstructed face, in the input image's pixels.

    ``box`` (5,) detector ``x1, y1, x2, y2, score`` (score is NaN for a tracked face);
    ``roi_box`` (4,) the crop fed to the regressor; ``params`` (62,) de-normalised 3DMM parameters;
    ``pose`` angles in degrees with scale and translation; ``landmarks`` (68, 3) float32 pixels.
    """

    box: np.ndarray
    roi_box: np.ndarray
    params: np.ndarray
    pose: Pose
    landmarks: np.ndarray

    def to_dict(self) -> dict:
        """The public JSON shape of a face (``--json``): these keys are a stable contract."""
        return {
            # A tracked face has no detector score (NaN), which JSON spells null.
            "box": [None if np.isnan(v) else float(v) for v in self.box],
            "roi_box": [float(v) for v in self.roi_box],
            "params": [float(v) for v in self.params],
            "pose": {"yaw": self.pose.yaw, "pitch": self.pose.pitch, "roll": self.pose.roll},
            "scale": self.pose.scale,
            "t3d": [float(v) for v in self.pose.t3d],
            "landmarks": np.round(self.landmarks.astype(np.float64), 3).tolist(),
        }


def scale_face(face: Face, factor: float) -> Face:
    """``face`` in pixels ``factor`` times larger (the same 3DMM parameters and pose).

    The regressor's camera is relative to its crop, so scaling the boxes scales the geometry.
    """
    box = face.box.copy()
    box[:4] *= factor
    return replace(face, box=box, roi_box=face.roi_box * factor, landmarks=face.landmarks * np.float32(factor))


def load_morphable_model(paths: ModelPaths) -> MorphableModel:
    """The full BFM when installed, else the exact mean shape."""
    if paths.bfm is not None:
        return MorphableModel.from_bfm(paths.bfm, paths.tri)
    u_shp, u_exp, keypoints = paths.mean_shape
    return MorphableModel.from_mean(u_shp, u_exp, keypoints, paths.indices, paths.tri)


class Reconstructor:
    """Detector, regressor and morphable model, loaded once.

    ``reconstructor(image)`` returns a list of :class:`Face`, by descending detector score;
    ``reconstructor.vertices(face)`` the dense (V, 3) mesh; ``reconstructor.triangles`` (T, 3);
    ``reconstructor.levels`` the model's mesh detail levels (:class:`~face3d_nb.core.detail.DetailLevels`).

    ``paths``: the model files to load; None loads the installed ones, as :meth:`installed` does
    (``arch`` chooses the regressor then). ``threads``: the detector's ONNX Runtime intra-op
    threads, 0 lets it choose (one per core); the regressor runs on one,
    :data:`~face3d_nb.core.regressor.REGRESSOR_THREADS`, whatever ``threads`` says (the measurements
    are in :mod:`~face3d_nb.core.runtime`); ``provider``: ``"cpu"`` or ``"cuda"`` (see
    :func:`~face3d_nb.core.runtime.create_session`);
    ``detect_size``: run the detector on a copy of the image at most this many pixels on its long
    side (0: upstream's sizes; see :mod:`~face3d_nb.core.detector`).
    """

    def __init__(self, paths: ModelPaths | None = None, *, arch: str | None = None, threads: int = 0, provider: str = "cpu",
                 detect_size: int = 0):
        self.paths = paths if paths is not None else _installed_paths(arch, None)
        self.detector = FaceDetector(self.paths.detector, detect_size=detect_size, threads=threads, provider=provider)
        self.regressor = Regressor(self.paths.regressor, provider=provider)
        self.model = load_morphable_model(self.paths)
        self.levels = DetailLevels(self.model)

    @classmethod
    def installed(cls, arch: str | None = None, *, threads: int = 0, provider: str = "cpu",
                  store: ModelStore | None = None, detect_size: int = 0) -> Reconstructor:
        """The models installed in ``store`` (default :class:`~face3d_nb.models.store.ModelStore` ()):
        regressor ``arch`` (None: mb1 when installed, else mb05), the full BFM when installed, else
        the mean shape. Raises :class:`~face3d_nb.models.store.ModelsMissingError` when files are missing."""
        return cls(_installed_paths(arch, store), threads=threads, provider=provider, detect_size=detect_size)

    def warm_up(self, size: int) -> None:
        """Run the detector on a ``size``-pixel-wide blank picture and the regressor once, so ONNX
        Runtime allocates its buffers now rather than on the first real frame (which would otherwise
        take several frame intervals)."""
        blank = np.zeros((size * 3 // 4, size, 3), np.uint8)
        self.detector(blank)
        self.regressor(blank, [[0.0, 0.0, 120.0, 120.0]])

    @property
    def triangles(self) -> np.ndarray:
        return self.model.triangles

    def __call__(self, image: np.ndarray) -> list[Face]:
        image = as_bgr(image)
        boxes = self.detector(image)
        return self.faces(image, boxes, roi_boxes_from_bboxes(boxes))

    def faces(self, image: np.ndarray, boxes: np.ndarray | None, roi_boxes) -> list[Face]:
        """Regress and decode the faces in ``roi_boxes`` (N, 4), all at once: one network run, then
        pose and landmarks as array maths over the N faces. ``boxes`` (N, 5) are carried along; None
        gives each face its landmark box with a NaN score (a tracked face has no detector box)."""
        roi_boxes = np.asarray(roi_boxes, dtype=np.float64).reshape(-1, 4)
        params = self.regressor(image, roi_boxes)
        landmarks = self.model.landmarks_batch(params, roi_boxes)
        if boxes is None:
            nan = np.full((len(landmarks), 1), np.nan, np.float32)
            xy = landmarks[:, :, :2]
            boxes = np.concatenate([np.minimum.reduce(xy, axis=1), np.maximum.reduce(xy, axis=1), nan], axis=1)
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 5)
        poses = poses_from_params(params)
        return [Face(box=b, roi_box=r, params=p, pose=pose, landmarks=m)
                for b, r, p, pose, m in zip(boxes, roi_boxes, params, poses, landmarks)]

    def vertices(self, face: Face, detail: str = "full") -> np.ndarray:
        """The mesh of ``face`` at ``detail``: (K, 3) float32 image pixels, K the level's vertex count
        (all V vertices at ``"full"``); the level's triangles are ``levels.detail(detail).triangles``."""
        return self.levels.model(detail).vertices(face.params, face.roi_box)


def _installed_paths(arch: str | None, store: ModelStore | None) -> ModelPaths:
    # The one place that decides which installed files a Reconstructor loads.
    return (store or ModelStore()).resolve(arch)
