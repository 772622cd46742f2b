"""Write checkpoints in torch's legacy (pre-zip) format without torch, for loader and converter tests.

Mirrors the layout our reader expects: five pickles (magic, protocol, sys info, object with tensors
as persistent ids, storage keys) followed by each storage's element count and raw bytes.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct

import numpy as np

_STORAGE_NAMES = {np.dtype(np.float32): "FloatStorage", np.dtype(np.int64): "LongStorage"}


class _Global:
    """Stands for a torch global (``module.name``) in the written pickle."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle only accepts callables as reduce functions
        raise TypeError("a placeholder, never called")


class _Tensor:
    def __init__(self, key: str, array: np.ndarray, offset: int, shape, stride):
        self.key, self.array, self.offset, self.shape, self.stride = key, array, offset, shape, stride

    def __reduce__(self):
        storage = _Storage(self.key, self.array)
        return (_REBUILD, (storage, self.offset, tuple(self.shape), tuple(self.stride), False, collections.OrderedDict()))


class _Storage:
    def __init__(self, key: str, array: np.ndarray):
        self.key, self.array = key, array


_REBUILD = _Global("torch._utils", "_rebuild_tensor_v2")


class _Writer(pickle._Pickler):
    def __init__(self, file):
        super().__init__(file, protocol=2)
        self.storages: dict[str, np.ndarray] = {}

    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            self.storages[obj.key] = obj.array
            kind = _Global("torch", _STORAGE_NAMES[obj.array.dtype])
            return ("storage", kind, obj.key, "cpu", obj.array.size, None)
        return None

    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, _Global):
            self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
            return
        super().save(obj, save_persistent_id)


def write_legacy_pth(state: dict[str, np.ndarray], *, wrap: bool = True, transpose_2d: bool = False) -> bytes:
    """Serialise ``state`` as a legacy checkpoint (``{"state_dict": ...}`` when ``wrap``).

    With ``transpose_2d`` every 2-D tensor is stored column-major (non-contiguous strides), as a
    transposed torch tensor would be.
    """
    tensors = {}
    for name, value in state.items():
        value = np.asarray(value)
        if transpose_2d and value.ndim == 2:
            tensors[name] = (np.ascontiguousarray(value.T).reshape(-1), 0, value.shape, (1, value.shape[0]))
        else:
            stride = tuple(int(np.prod(value.shape[k + 1 :])) for k in range(value.ndim))
            tensors[name] = (value.reshape(-1).copy(), 0, value.shape, stride)
    return write_raw_legacy_pth(tensors, wrap=wrap)


def write_raw_legacy_pth(tensors: dict[str, tuple[np.ndarray, int, tuple, tuple]], *, wrap: bool = True) -> bytes:
    """A legacy checkpoint of tensors given as torch stores them: ``name: (storage, offset, shape,
    stride)``, a 1-D float32 or int64 storage and the view of it (in elements) that the tensor is.
    Nothing checks that the view fits its storage: loader tests need hostile ones too."""
    out = io.BytesIO()
    for header in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True, "type_sizes": {}}):
        pickle.dump(header, out, protocol=2)
    records = collections.OrderedDict(
        (name, _Tensor(str(i), storage, offset, shape, stride))
        for i, (name, (storage, offset, shape, stride)) in enumerate(tensors.items())
    )
    writer = _Writer(out)
    writer.dump({"state_dict": records} if wrap else records)
    keys = list(writer.storages)
    pickle.dump(keys, out, protocol=2)
    for key in keys:
        array = writer.storages[key]
        out.write(struct.pack("<q", array.size))
        out.write(array.astype(array.dtype.newbyteorder("<")).tobytes())
    return out.getvalue()


class Reduce:
    """Pickles as a call of the global ``module.name`` with ``args``, then BUILD with ``state``
    when one is given: hand-made pickles (hostile ones included) naming globals that the test
    process need not import. Pickle it with :func:`dumps_with_globals`."""

    def __init__(self, module: str, name: str, args: tuple = (), state=None):
        self.function, self.args, self.state = _Global(module, name), args, state

    def __reduce__(self):
        return (self.function, self.args) if self.state is None else (self.function, self.args, self.state)


def global_named(module: str, name: str):
    """The global ``module.name`` as an argument of a :class:`Reduce` (written as that global)."""
    return _Global(module, name)


def dumps_with_globals(obj) -> bytes:
    """``obj`` pickled with protocol 2, each :class:`Reduce` and :func:`global_named` in it written
    as the global it names."""
    out = io.BytesIO()
    _Writer(out).dump(obj)
    return out.getvalue()
