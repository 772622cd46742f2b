"""The morphable model's UV layout: where each vertex of the mesh sits in a texture image.

Upstream's ``configs/BFM_UV.mat`` (manifest key ``"uv"``) is a MATLAB 5 file holding one array,
``UV`` (53215, 2) float64: (u, v) in 0..1, v up as in OBJ files, of each vertex of the full Basel
Face Model. The mesh face3d_nb decodes keeps the full-model vertices listed in ``indices.npy``, so its
layout is ``UV[indices]``. The file is only needed for UV textures, so ``models fetch`` leaves it
out: :func:`uv_layout` fetches it on first use, and ``models import`` brings it when the folder has it.
It is read with ``scipy.io.loadmat``, which parses the file's arrays and runs nothing in it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .download import AssetError
from .integrity import exposure
from .store import ModelsMissingError, ModelStore, Progress

__all__ = ["UV_KEY", "read_uv_layout", "uv_layout"]

log = logging.getLogger(__name__)

#: The layout's key in ``models/manifest.json``.
UV_KEY = "uv"


def read_uv_layout(path: str | Path) -> np.ndarray:
    """The ``UV`` array of a BFM_UV.mat file: (N, 2) float32 (u, v) in 0..1, one row per full-model
    vertex. A file that is not a MATLAB file, or whose array is missing, misshapen, not finite or
    outside 0..1, raises :class:`AssetError` naming it."""
    from scipy.io import loadmat  # noqa: PLC0415 - only UV textures need it: no import cost for the rest

    path = Path(path)
    try:
        arrays = loadmat(path, variable_names=["UV"])
    # A damaged file fails in many ways inside scipy's parser (ValueError, TypeError, zlib and struct
    # errors, MatReadError); each means the same to the user.
    except Exception as exc:  # noqa: BLE001
        raise AssetError(f"{path} is not a readable MATLAB file ({type(exc).__name__}: {exc}); "
                         "delete it to have it downloaded again") from None
    uv = arrays.get("UV")
    if not isinstance(uv, np.ndarray) or uv.ndim != 2 or uv.shape[1] != 2 or uv.shape[0] == 0:
        found = "nothing" if uv is None else f"{getattr(uv, 'shape', type(uv).__name__)}"
        raise AssetError(f"{path} holds no (N, 2) 'UV' array (found {found}): not upstream's BFM_UV.mat")
    if uv.dtype.kind not in "fiu":
        raise AssetError(f"{path}: 'UV' holds {uv.dtype}, not real numbers")
    uv = uv.astype(np.float32)
    if not np.isfinite(uv).all() or uv.min() < 0 or uv.max() > 1:
        raise AssetError(f"{path}: 'UV' has values that are not finite or outside 0..1")
    return uv


def uv_layout(store: ModelStore, progress: Progress | None = None) -> np.ndarray:
    """(K, 2) float32 (u, v) of the mesh's K vertices (those of ``indices.npy``, 38,365 for the BFM).

    BFM_UV.mat is fetched when it is not installed (about 780 kB; ``progress`` as
    :meth:`ModelStore.fetch`) and, in a cache others can write, verified again first (and replaced
    when it no longer matches its pin). :class:`AssetError` when it cannot be had or does not fit.
    """
    path = store.raw_path(UV_KEY)
    if not store.installed(UV_KEY) or exposure(path) is not None:
        log.info("fetching the UV layout %s", store.files[UV_KEY]["path"])
        store.fetch([UV_KEY], progress)
    if not store.installed("indices"):
        raise ModelsMissingError(f"indices.npy is not installed in {store.home}. "
                                 "Run `face3d-nb models fetch` (online) or `face3d-nb models import DIR`.")
    uv = read_uv_layout(path)
    indices = np.load(store.raw_path("indices"), allow_pickle=False)
    if indices.ndim != 1 or indices.dtype.kind not in "iu" or (len(indices) and indices.max() >= len(uv)):
        raise AssetError(f"{path} has {len(uv)} vertices, too few for the mesh's indices.npy: the files do not fit")
    return uv[indices]
