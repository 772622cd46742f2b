"""One image in, faces out: detect -> roi -> regress -> pose and landmarks (dense mesh on demand)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..models.store import ModelPaths, ModelStore
from .detail import DetailLevels
from .detector import FaceDetector
from .frames import as_bgr
from .morphable import MorphableModel, Pose, pose_from_params
from .regressor import Regressor, roi_box_from_bbox

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
    (``arch`` chooses the regressor then). ``threads``: ONNX Runtime intra-op threads, 0 lets it
    choose; ``provider``: ``"cpu"`` or ``"cuda"`` (see :func:`~face3d_nb.core.runtime.create_session`).
    """

    def __init__(self, paths: ModelPaths | None = None, *, arch: str | None = None, threads: int = 0, provider: str = "cpu"):
        self.paths = paths if paths is not None else _installed_paths(arch, None)
        self.detector = FaceDetector(self.paths.detector, threads=threads, provider=provider)
        self.regressor = Regressor(self.paths.regressor, threads=threads, provider=provider)
        self.model = load_morphable_model(self.paths)
        self.levels = DetailLevels(self.model)

    @classmethod
    def installed(cls, arch: str | None = None, *, threads: int = 0, provider: str = "cpu",
                  store: ModelStore | None = None) -> Reconstructor:
        """The models installed in ``store`` (default :class:`~face3d_nb.models.store.ModelStore` ()):
        regressor ``arch`` (None: mb1 when installed, else mb05), the full BFM when installed, else
        the mean shape. Raises :class:`~face3d_nb.models.store.ModelsMissingError` when files are missing."""
        return cls(_installed_paths(arch, store), threads=threads, provider=provider)

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
        return self.faces(image, boxes, [roi_box_from_bbox(b) for b in boxes])

    def faces(self, image: np.ndarray, boxes, roi_boxes) -> list[Face]:
        """Regress and decode the faces in ``roi_boxes`` (N, 4); ``boxes`` (N, 5) are carried along."""
        params = self.regressor(image, roi_boxes)
        return [
            Face(
                box=np.asarray(box, np.float32),
                roi_box=np.asarray(roi, np.float64),
                params=p,
                pose=pose_from_params(p),
                landmarks=self.model.landmarks_3d(p, roi),
            )
            for box, roi, p in zip(boxes, roi_boxes, params)
        ]

    def vertices(self, face: Face, detail: str = "full") -> np.ndarray:
        """The mesh of ``face`` at ``detail``: (K, 3) float32 image pixels, K the level's vertex count
        (all V vertices at ``"full"``); the level's triangles are ``levels.detail(detail).triangles``."""
        return self.levels.model(detail).vertices(face.params, face.roi_box)


def _installed_paths(arch: str | None, store: ModelStore | None) -> ModelPaths:
    # The one place that decides which installed files a Reconstructor loads.
    return (store or ModelStore()).resolve(arch)
