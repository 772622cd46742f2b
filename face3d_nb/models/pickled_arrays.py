"""numpy's pickle records rebuilt without numpy's own unpickling code, for :mod:`.safe_pickle`.

A numpy pickle names ``numpy.dtype``, ``numpy.ndarray``, ``_reconstruct`` and ``scalar`` and
hands each its arguments; pickle then applies the record's state with ``__setstate__``. numpy's
own ``__setstate__`` trusts that state: it can forge a dtype (object fields with its flags cleared,
which crashes the process when cast) or ask for any size. So the pickle gets stand-ins instead:
:class:`DtypeRecord` and :class:`ArrayRecord` check the state they are given and build only plain
numeric dtypes (bool, int, uint, float of a fixed size) and arrays whose data the payload holds,
and :func:`resolve` swaps them for the real dtype and array once the pickle is loaded. Nothing is
allocated that the payload does not hold, and numpy's ``__setstate__`` never runs.
"""

from __future__ import annotations

import math
import pickle
from typing import Any

import numpy as np

__all__ = ["ArrayRecord", "DtypeRecord", "UnsafePickleError", "array_record", "plain_dtype", "resolve", "scalar",
           "shape_of"]

# numpy's own codes, as its pickles spell them, for the dtypes a model file holds.
_PLAIN_CODES = frozenset({"b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8"})
# The state numpy pickles for a plain dtype after its byte order: no subarray, names, fields,
# item size, alignment or flags of its own.
_PLAIN_DTYPE_STATE = (None, None, None, -1, -1, 0)
_MAX_DIMS = 32


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for something outside the allow-list, or is not in the expected format."""


def plain_dtype(code: Any) -> np.dtype:
    """The dtype numpy's pickles call ``code`` (``"f4"``, ``"u1"``, ...), refusing any other kind."""
    if not isinstance(code, str) or code not in _PLAIN_CODES:
        raise UnsafePickleError(f"refusing dtype {code!r:.40}: model files hold only bool, int, uint and float arrays")
    return np.dtype(code)


def shape_of(values: Any, what: str) -> tuple[int, ...]:
    """``values`` as a shape (a tuple of at most 32 non-negative ints), or :class:`UnsafePickleError`."""
    if (not isinstance(values, tuple) or len(values) > _MAX_DIMS
            or not all(type(v) is int and v >= 0 for v in values)):
        raise UnsafePickleError(f"malformed {what}: {values!r:.60}")
    return values


def _payload(data: Any) -> bytes:
    # Pickles written by Python 2 hold the raw bytes as a str, which numpy reads as latin-1.
    if isinstance(data, str):
        return data.encode("latin1")
    if not isinstance(data, bytes):
        raise UnsafePickleError(f"array data must be bytes, not {type(data).__name__}")
    return data


class DtypeRecord:
    """Stands for ``numpy.dtype(code, align, copy)`` until the pickle is loaded; its state may set
    only the byte order."""

    __slots__ = ("dtype",)
    __hash__ = None  # nor a dict key or set member: resolve() must reach every record

    def __init__(self, code: Any, _align: Any = False, _copy: Any = True):
        self.dtype = plain_dtype(code)

    def __setstate__(self, state: Any) -> None:
        if (not isinstance(state, tuple) or len(state) != 8 or state[0] != 3 or state[1] not in ("<", ">", "|", "=")
                or state[2:] != _PLAIN_DTYPE_STATE):
            raise UnsafePickleError(f"refusing dtype state {state!r:.80}: only a byte order may be set")
        self.dtype = self.dtype.newbyteorder(state[1])


class ArrayRecord:
    """Stands for an array until the pickle is loaded; its state (``(version, shape, dtype,
    is_fortran, data)``) is checked, and the array built from a copy of ``data``."""

    __slots__ = ("array",)
    __hash__ = None

    def __init__(self) -> None:
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5) or len(state) == 5 and state[0] != 1:
            raise UnsafePickleError(f"refusing array state {state!r:.80}")
        shape, dtype, fortran, data = state[-4:]
        shape, data = shape_of(shape, "array shape"), _payload(data)
        if not isinstance(dtype, DtypeRecord) or not isinstance(fortran, bool):
            raise UnsafePickleError(f"refusing array state {state!r:.80}")
        size = math.prod(shape) * dtype.dtype.itemsize
        if size != len(data):
            raise UnsafePickleError(f"array of shape {shape} needs {size} bytes, the pickle holds {len(data)}")
        self.array = np.ndarray(shape, dtype.dtype, buffer=bytearray(data), order="F" if fortran else "C")


def array_record(shape: Any, typecode: Any) -> ArrayRecord:
    """What ``_reconstruct(ndarray, (0,), b"b")``, the start of every numpy array pickle, stands
    for: an empty record for the state to fill. Any other size is refused, not allocated."""
    if shape != (0,) or typecode != b"b":
        raise UnsafePickleError(f"refusing to reconstruct an array of shape {shape!r:.40}: not a plain numpy array")
    return ArrayRecord()


def scalar(dtype: Any, data: Any) -> np.generic:
    """``numpy.core.multiarray.scalar(dtype, data)``: one value of a plain dtype from its bytes."""
    if not isinstance(dtype, DtypeRecord):
        raise UnsafePickleError(f"refusing scalar of dtype {dtype!r:.40}")
    data = _payload(data)
    if len(data) != dtype.dtype.itemsize:
        raise UnsafePickleError(f"scalar of dtype {dtype.dtype} needs {dtype.dtype.itemsize} bytes, not {len(data)}")
    return np.frombuffer(data, dtype.dtype)[0]


def resolve(obj: Any) -> Any:
    """``obj`` with every record replaced by its dtype or array: dicts and lists in place, tuples
    rebuilt. Each container is visited once, so shared references cannot blow the walk up."""
    done: dict[int, Any] = {}

    def walk(item: Any) -> Any:
        if isinstance(item, ArrayRecord):
            if item.array is None:
                raise UnsafePickleError("array record without data")
            return item.array
        if isinstance(item, DtypeRecord):
            return item.dtype
        if not isinstance(item, (dict, list, tuple)) or id(item) in done:
            return done.get(id(item), item)
        done[id(item)] = item
        if isinstance(item, dict):
            for key, value in item.items():
                item[key] = walk(value)
        elif isinstance(item, list):
            item[:] = [walk(value) for value in item]
        else:
            done[id(item)] = tuple(walk(value) for value in item)
        return done[id(item)]

    try:
        return walk(obj)
    except RecursionError:
        raise UnsafePickleError("nested too deeply for a model file") from None
