"""Restricted loading of the upstream pickles: ``.pkl`` configs and legacy ``.pth`` checkpoints.

Upstream ships its configs and weights as Python pickles, which can run arbitrary code when loaded
with :mod:`pickle`. We treat them as untrusted input: the unpicklers here resolve only the handful
of globals those files actually contain (numpy array reconstruction, ``OrderedDict`` and torch's
legacy tensor records) and refuse anything else with :class:`UnsafePickleError`.

Allowed is not trusted either. numpy's records are rebuilt by :mod:`.pickled_arrays` (plain numeric
dtypes only, every size checked against the payload before anything is allocated); each lookup of
an allowed global gets a new stand-in that refuses pickle's BUILD, so no pickle can change what a
later lookup or a later load in the process gets; tensor shapes are checked against their storage.

The legacy (pre-zip) torch format is five pickles in a row followed by raw storage bytes:
magic number, protocol version, system info, the object (tensors appear as persistent ids naming a
storage key), then the list of storage keys; after that, for each key in that order, an int64
element count and the little-endian storage bytes. We rebuild tensors as numpy arrays ourselves, so
torch is never imported.
"""

from __future__ import annotations

import collections
import functools
import io
import math
import pickle
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .pickled_arrays import ArrayRecord, DtypeRecord, UnsafePickleError, array_record, resolve, scalar, shape_of

__all__ = ["UnsafePickleError", "load_legacy_pth", "load_pkl"]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


class _Sealed:
    """Refuses pickle's BUILD, which would otherwise set attributes on what our globals return."""

    __slots__ = ()

    def __setstate__(self, state: Any) -> None:
        raise UnsafePickleError(f"refusing to modify {self!r:.60}")


class _Global(_Sealed):
    """What a pickle gets for one allowed global: a new one for every lookup, which it may call
    but not modify, so no pickle can change what the next lookup or the next load gets."""

    __slots__ = ("name", "factory")

    def __init__(self, name: str, factory: Callable[..., Any]):
        self.name, self.factory = name, factory

    def __call__(self, *args: Any) -> Any:
        return self.factory(*args)

    def __repr__(self) -> str:
        return self.name


def _not_callable(name: str) -> Callable[..., Any]:
    def refuse(*_args: Any) -> Any:
        raise UnsafePickleError(f"refusing to call {name}: it may only be named in a numpy array record")

    return refuse


def _numpy_globals() -> dict[tuple[str, str], Callable[[], Any]]:
    """numpy's array records, each name mapped to a maker of its stand-in (see :mod:`.pickled_arrays`)."""
    makers: dict[tuple[str, str], Callable[[], Any]] = {
        ("numpy", "ndarray"): lambda: _Global("numpy.ndarray", _not_callable("numpy.ndarray")),
        ("numpy", "dtype"): lambda: _Global("numpy.dtype", DtypeRecord),
    }
    # Pickles made by numpy 1.x name numpy.core, those by numpy 2.x numpy._core; accept both.
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        makers[(module, "_reconstruct")] = lambda m=module: _Global(f"{m}._reconstruct", _reconstruct_array)
        makers[(module, "scalar")] = lambda m=module: _Global(f"{m}.scalar", scalar)
    return makers


def _reconstruct_array(cls: Any, shape: Any, typecode: Any) -> ArrayRecord:
    if not (isinstance(cls, _Global) and cls.name == "numpy.ndarray"):
        raise UnsafePickleError(f"refusing to reconstruct {cls!r:.40}: only numpy.ndarray")
    return array_record(shape, typecode)


class _RestrictedUnpickler(pickle.Unpickler):
    allowed: dict[tuple[str, str], Callable[[], Any]] = {}

    def find_class(self, module: str, name: str) -> Any:
        try:
            make = self.allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to load {module}.{name}: only numpy arrays, dicts and torch tensor "
                "records are allowed in model files"
            ) from None
        return make()


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    # Protocol-2 pickles written by Python 3 spell bytes as _codecs.encode(text, "latin1").
    if encoding != "latin1":
        raise UnsafePickleError(f"refusing to decode bytes from {encoding!r}")
    return text.encode("latin1")


def _empty_bytes() -> bytes:
    # ... and empty bytes (the data of an empty array) as bytes(), which may have no argument.
    return b""


class _PklUnpickler(_RestrictedUnpickler):
    allowed = {
        **_numpy_globals(),
        ("collections", "OrderedDict"): lambda: _Global("collections.OrderedDict", collections.OrderedDict),
        ("_codecs", "encode"): lambda: _Global("_codecs.encode", _latin1_bytes),
        ("__builtin__", "bytes"): lambda: _Global("bytes", _empty_bytes),
    }


def load_pkl(path: str | Path) -> Any:
    """Load an upstream ``.pkl`` file (numpy arrays of plain numeric dtypes in dicts) without
    executing foreign code; :class:`UnsafePickleError` naming the problem otherwise."""
    # From memory, so that no length a pickle declares can make a read allocate more than the file.
    stream = io.BytesIO(Path(path).read_bytes())
    return _load_checked(_PklUnpickler(stream, encoding="latin1"), path, resolve)


def _load_checked(unpickler: pickle.Unpickler, path: str | Path, finish: Callable[[Any], Any] = lambda x: x) -> Any:
    try:
        return finish(unpickler.load())
    except UnsafePickleError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever a hostile pickle makes the unpickler raise, it is not a model
        raise UnsafePickleError(f"{path}: not a valid model pickle ({type(exc).__name__}: {exc})") from exc


class _StorageType(_Sealed):
    """A torch storage class named in a checkpoint (``torch.FloatStorage``, ...) and its dtype."""

    __slots__ = ("name", "dtype")

    def __init__(self, name: str, dtype: np.dtype):
        self.name, self.dtype = name, dtype

    def __repr__(self) -> str:
        return f"torch.{self.name}"


@dataclass(frozen=True)
class _TensorRecord(_Sealed):
    key: str
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(storage: Any, storage_offset: Any, size: Any, stride: Any, *_ignored: Any) -> _TensorRecord:
    if not isinstance(storage, str) or type(storage_offset) is not int or storage_offset < 0:
        raise UnsafePickleError(f"malformed tensor record ({storage!r:.40}, offset {storage_offset!r:.20})")
    return _TensorRecord(storage, storage_offset, shape_of(size, "tensor shape"), shape_of(stride, "tensor stride"))


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
        ("collections", "OrderedDict"): lambda: _Global("collections.OrderedDict", collections.OrderedDict),
        ("torch._utils", "_rebuild_tensor_v2"): lambda: _Global("torch._utils._rebuild_tensor_v2", _rebuild_tensor_v2),
        **{("torch", name): functools.partial(_StorageType, name, np.dtype(dt)) for name, dt in _TORCH_STORAGES.items()},
    }

    def __init__(self, file: BinaryIO):
        super().__init__(file, encoding="latin1")
        self.storages: dict[str, tuple[np.dtype, int]] = {}

    def persistent_load(self, pid: Any) -> str:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise UnsafePickleError(f"unexpected persistent id in checkpoint: {pid!r:.80}")
        storage_type, key, _location, numel = pid[1:5]
        if (not isinstance(storage_type, _StorageType) or not isinstance(key, str) or type(numel) is not int
                or numel < 0 or len(pid) > 5 and pid[5] is not None):
            raise UnsafePickleError(f"unsupported storage record in checkpoint: {pid!r:.80}")
        self.storages[key] = (storage_type.dtype, numel)
        return key


def load_legacy_pth(path: str | Path) -> dict[str, np.ndarray]:
    """Load a legacy-format torch checkpoint as a flat ``{name: float array}`` state dict.

    A top-level ``state_dict`` entry is unwrapped and the ``module.`` prefix left by
    ``DataParallel`` is removed, as upstream's loaders do.
    """
    stream = io.BytesIO(Path(path).read_bytes())

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
        if not isinstance(key, str) or key not in unpickler.storages:
            raise UnsafePickleError(f"{path}: storage {key!r:.40} is not referenced by any tensor")
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
        if not isinstance(name, str):
            raise UnsafePickleError(f"{path}: tensor name {name!r:.40} is not a string")
        state[name.removeprefix("module.")] = _materialise(record, buffers, path)
    return state


def _read_exact(stream: io.BytesIO, n: int, path: str | Path) -> bytes:
    chunk = stream.read(n)
    if len(chunk) != n:
        raise UnsafePickleError(f"{path}: checkpoint is truncated")
    return chunk


def _materialise(record: _TensorRecord, buffers: dict[str, np.ndarray], path) -> np.ndarray:
    """The tensor as a new array, refused unless every element it reads lies in its storage and it
    has no more elements than the storage: a stride of 0 must not turn a few bytes into gigabytes."""
    flat = buffers.get(record.key)
    if flat is None:
        raise UnsafePickleError(f"{path}: tensor refers to missing storage {record.key}")
    shape, stride = record.shape, record.stride
    if len(shape) != len(stride):
        raise UnsafePickleError(f"{path}: malformed tensor record")
    if math.prod(shape) > flat.size - record.offset:
        raise UnsafePickleError(f"{path}: tensor of shape {shape} has more elements than its storage ({flat.size})")
    extent = record.offset + sum((n - 1) * s for n, s in zip(shape, stride)) + 1 if all(shape) else 0
    if extent > flat.size:
        raise UnsafePickleError(f"{path}: tensor extends past its storage")
    view = np.lib.stride_tricks.as_strided(
        flat[record.offset :],
        shape=shape,
        strides=tuple(s * flat.itemsize for s in stride),
        writeable=False,
    )
    return np.array(view)
