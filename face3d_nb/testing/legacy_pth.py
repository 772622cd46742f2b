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
    out = io.BytesIO()
    for header in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True, "type_sizes": {}}):
        pickle.dump(header, out, protocol=2)
    tensors = collections.OrderedDict()
    for i, (name, value) in enumerate(state.items()):
        value = np.asarray(value)
        if transpose_2d and value.ndim == 2:
            flat = np.ascontiguousarray(value.T).reshape(-1)
            tensors[name] = _Tensor(str(i), flat, 0, value.shape, (1, value.shape[0]))
        else:
            stride = tuple(int(np.prod(value.shape[k + 1 :])) for k in range(value.ndim))
            tensors[name] = _Tensor(str(i), value.reshape(-1).copy(), 0, value.shape, stride)
    writer = _Writer(out)
    writer.dump({"state_dict": tensors} if wrap else tensors)
    keys = list(writer.storages)
    pickle.dump(keys, out, protocol=2)
    for key in keys:
        array = writer.storages[key]
        out.write(struct.pack("<q", array.size))
        out.write(array.astype(array.dtype.newbyteorder("<")).tobytes())
    return out.getvalue()
