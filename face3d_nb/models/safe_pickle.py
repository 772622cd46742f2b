"""Restricted loading of the upstream pickles: ``.pkl`` configs and legacy ``.pth`` checkpoints.

Upstream ships its configs and weights as Python pickles, which can run arbitrary code when loaded
with :mod:`pickle`. We treat them as untrusted input: the unpicklers here resolve only the handful
of globals those files actually contain (numpy array reconstruction, ``OrderedDict`` and torch's
legacy tensor records) and refuse anything else with :class:`UnsafePickleError`.

The legacy (pre-zip) torch format is five pickles in a row followed by raw storage bytes:
magic number, protocol version, system info, the object (tensors appear as persistent ids naming a
storage key), then the list of storage keys; after that, for each key in that order, an int64
element count and the little-endian storage bytes. We rebuild tensors as numpy arrays ourselves, so
torch is never imported.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

__all__ = ["UnsafePickleError", "load_legacy_pth", "load_pkl"]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for something outside the allow-list, or is not in the expected format."""


def _numpy_globals() -> dict[tuple[str, str], Any]:
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    # Pickles made by numpy 1.x name numpy.core, those by numpy 2.x numpy._core; accept both.
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
        allowed[(module, "scalar")] = multiarray.scalar
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    allowed: dict[tuple[str, str], Any] = {}

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to load {module}.{name}: only numpy arrays, dicts and torch tensor "
                "records are allowed in model files"
            ) from None


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    # Protocol-2 pickles written by Python 3 spell bytes as _codecs.encode(text, "latin1").
    if encoding != "latin1":
        raise UnsafePickleError(f"refusing to decode bytes from {encoding!r}")
    return text.encode("latin1")


class _PklUnpickler(_RestrictedUnpickler):
    allowed = {
        **_numpy_globals(),
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("_codecs", "encode"): _latin1_bytes,
    }


def load_pkl(path: str | Path) -> Any:
    """Load an upstream ``.pkl`` file (numpy arrays in dicts) without executing foreign code."""
    with open(path, "rb") as f:
        return _load_checked(_PklUnpickler(f, encoding="latin1"), path)


def _load_checked(unpickler: pickle.Unpickler, path: str | Path) -> Any:
    try:
        return unpickler.load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise UnsafePickleError(f"{path}: not a valid model pickle ({exc})") from exc


@dataclass(frozen=True)
class _StorageType:
    dtype: np.dtype


@dataclass(frozen=True)
class _TensorRecord:
    key: str
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *_ignored):
    return _TensorRecord(storage, int(storage_offset), tuple(size), tuple(stride))


_TORCH_STORAGES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _PthUnpickler(_RestrictedUnpickler):
    allowed = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        **{("torch", name): _StorageType(np.dtype(dt)) for name, dt in _TORCH_STORAGES.items()},
    }

    def __init__(self, file: BinaryIO):
        super().__init__(file, encoding="latin1")
        self.storages: dict[str, tuple[np.dtype, int]] = {}

    def persistent_load(self, pid: Any) -> str:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise UnsafePickleError(f"unexpected persistent id in checkpoint: {pid!r:.80}")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType) or len(pid) > 5 and pid[5] is not None:
            raise UnsafePickleError(f"unsupported storage record in checkpoint: {pid!r:.80}")
        self.storages[str(key)] = (storage_type.dtype, int(numel))
        return str(key)


def load_legacy_pth(path: str | Path) -> dict[str, np.ndarray]:
    """Load a legacy-format torch checkpoint as a flat ``{name: float array}`` state dict.

    A top-level ``state_dict`` entry is unwrapped and the ``module.`` prefix left by
    ``DataParallel`` is removed, as upstream's loaders do.
    """
    with open(path, "rb") as f:
        data = f.read()
    stream = io.BytesIO(data)

    def header(expected: Any, what: str) -> None:
        value = _load_checked(_RestrictedUnpickler(stream), path)
        if expected is not None and value != expected:
            raise UnsafePickleError(f"{path}: not a legacy torch checkpoint (bad {what})")

    header(_LEGACY_MAGIC, "magic number")
    header(_LEGACY_PROTOCOL, "protocol version")
    sys_info = _load_checked(_RestrictedUnpickler(stream), path)
    if not isinstance(sys_info, dict) or not sys_info.get("little_endian", False):
        raise UnsafePickleError(f"{path}: only little-endian legacy checkpoints are supported")
    unpickler = _PthUnpickler(stream)
    obj = _load_checked(unpickler, path)
    keys = _load_checked(_RestrictedUnpickler(stream), path)
    if not isinstance(keys, list):
        raise UnsafePickleError(f"{path}: malformed storage key list")

    buffers: dict[str, np.ndarray] = {}
    for key in keys:
        key = str(key)
        if key not in unpickler.storages:
            raise UnsafePickleError(f"{path}: storage {key} is not referenced by any tensor")
        dtype, numel = unpickler.storages[key]
        (count,) = struct.unpack("<q", _read_exact(stream, 8, path))
        if count != numel:
            raise UnsafePickleError(f"{path}: storage {key} has {count} elements, expected {numel}")
        buffers[key] = np.frombuffer(_read_exact(stream, count * dtype.itemsize, path), dtype=dtype)

    if isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise UnsafePickleError(f"{path}: checkpoint does not hold a state dict")
    state: dict[str, np.ndarray] = {}
    for name, record in obj.items():
        if not isinstance(record, _TensorRecord):
            continue
        state[name.removeprefix("module.")] = _materialise(record, buffers, path)
    return state


def _read_exact(stream: io.BytesIO, n: int, path: str | Path) -> bytes:
    chunk = stream.read(n)
    if len(chunk) != n:
        raise UnsafePickleError(f"{path}: checkpoint is truncated")
    return chunk


def _materialise(record: _TensorRecord, buffers: dict[str, np.ndarray], path) -> np.ndarray:
    flat = buffers.get(record.key)
    if flat is None:
        raise UnsafePickleError(f"{path}: tensor refers to missing storage {record.key}")
    shape, stride = record.shape, record.stride
    if len(shape) != len(stride) or any(s < 0 for s in shape + stride):
        raise UnsafePickleError(f"{path}: malformed tensor record")
    extent = record.offset + sum((n - 1) * s for n, s in zip(shape, stride)) + 1 if all(shape) else 0
    if record.offset < 0 or extent > flat.size:
        raise UnsafePickleError(f"{path}: tensor extends past its storage")
    view = np.lib.stride_tricks.as_strided(
        flat[record.offset :],
        shape=shape,
        strides=tuple(s * flat.itemsize for s in stride),
        writeable=False,
    )
    return np.array(view)
