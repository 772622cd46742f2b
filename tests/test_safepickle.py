"""The restricted unpicklers load the real upstream files and refuse anything that runs code."""

import io
import os
import pickle
import struct

import numpy as np
import pytest

from face3d_nb.models.safe_pickle import UnsafePickleError, load_legacy_pth, load_pkl
from face3d_nb.testing.assets import ASSETS
from face3d_nb.testing.legacy_pth import write_legacy_pth


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


@pytest.mark.real_assets
def test_real_upstream_files_load():
    stats = load_pkl(ASSETS / "3ddfa_v2/configs/param_mean_std_62d_120x120.pkl")
    assert stats["mean"].shape == stats["std"].shape == (62,)
    tri = load_pkl(ASSETS / "3ddfa_v2/configs/tri.pkl")
    assert tri.shape == (3, 76073) and tri.max() == 38364
    state = load_legacy_pth(ASSETS / "3ddfa_v2/weights/mb05_120x120.pth")
    assert state["conv1.weight"].shape == (16, 3, 3, 3)
    assert state["fc_param.weight"].shape == (62, 512)
    assert not any(k.startswith("module.") for k in state)


def test_pkl_that_calls_a_function_is_refused(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"mean": _RunsCode()}))
    with pytest.raises(UnsafePickleError, match="posix.system|os.system|refusing to load"):
        load_pkl(path)


def test_pkl_with_numpy_arrays_round_trips(tmp_path):
    path = tmp_path / "ok.pkl"
    data = {"u": np.arange(6, dtype=np.float32).reshape(-1, 1), "k": np.arange(3)}
    path.write_bytes(pickle.dumps(data, protocol=2))
    loaded = load_pkl(path)
    assert all(np.array_equal(loaded[k], v) for k, v in data.items())


def test_garbage_pkl_is_a_clear_error(tmp_path):
    path = tmp_path / "junk.pkl"
    path.write_bytes(b"\x80\x02this is not a pickle")
    with pytest.raises(UnsafePickleError, match="not a valid model pickle"):
        load_pkl(path)


def test_legacy_checkpoint_round_trips_strided_tensors(tmp_path):
    state = {
        "module.w": np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32),
        "n": np.array(7, dtype=np.int64),
        "v": np.arange(24, dtype=np.float32).reshape(2, 3, 4),
    }
    path = tmp_path / "ckpt.pth"
    path.write_bytes(write_legacy_pth(state, transpose_2d=True))
    loaded = load_legacy_pth(path)
    assert set(loaded) == {"w", "n", "v"}
    assert np.array_equal(loaded["w"], state["module.w"])
    assert loaded["n"] == 7 and np.array_equal(loaded["v"], state["v"])


def test_legacy_checkpoint_with_foreign_global_is_refused(tmp_path):
    out = io.BytesIO()
    for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
        pickle.dump(header, out, protocol=2)
    pickle.dump({"state_dict": _RunsCode()}, out, protocol=2)
    path = tmp_path / "evil.pth"
    path.write_bytes(out.getvalue())
    with pytest.raises(UnsafePickleError, match="refusing to load"):
        load_legacy_pth(path)


def test_refusal_happens_before_any_code_runs(tmp_path):
    marker = tmp_path / "ran"
    payload = pickle.dumps(type("X", (), {"__reduce__": lambda self: (open, (str(marker), "w"))})())
    path = tmp_path / "evil.pkl"
    path.write_bytes(payload)
    with pytest.raises(UnsafePickleError):
        load_pkl(path)
    assert not marker.exists()


def test_truncated_and_non_checkpoint_files_are_clear_errors(tmp_path):
    good = write_legacy_pth({"w": np.ones((3, 3), np.float32)})
    path = tmp_path / "cut.pth"
    path.write_bytes(good[:-5])
    with pytest.raises(UnsafePickleError, match="truncated"):
        load_legacy_pth(path)
    path.write_bytes(pickle.dumps(123, protocol=2) + good[15:])
    with pytest.raises(UnsafePickleError, match="magic number"):
        load_legacy_pth(path)
    path.write_bytes(b"")
    with pytest.raises(UnsafePickleError):
        load_legacy_pth(path)


def test_storage_count_mismatch_is_refused(tmp_path):
    data = bytearray(write_legacy_pth({"w": np.ones(4, np.float32)}))
    # The element count of the only storage sits 8 + 16 bytes before the end.
    struct.pack_into("<q", data, len(data) - 16 - 8, 99)
    path = tmp_path / "bad.pth"
    path.write_bytes(bytes(data))
    with pytest.raises(UnsafePickleError, match="99 elements"):
        load_legacy_pth(path)
