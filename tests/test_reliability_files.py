"""Hostile files: image bombs and hostile pickles are refused with a clear error, before anything
big is allocated and without crashing the process; the next good input is still served.

Every hostile input is made here, small, in a temporary folder. The cases that crashed the process
or changed it for later loads run in a child process, so that a regression fails the test instead
of killing or polluting pytest.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pytest

from face3d_nb.core import frames
from face3d_nb.core.frames import ImageError, decode_image, frame_to_bgr
from face3d_nb.live.config import EngineConfig
from face3d_nb.live.engine import Engine
from face3d_nb.live.events import ErrorEvent, FrameResult
from face3d_nb.models.safe_pickle import UnsafePickleError, load_legacy_pth, load_pkl
from face3d_nb.testing.legacy_pth import Reduce, dumps_with_globals, global_named, write_raw_legacy_pth
from face3d_nb.testing.polling import wait_for

SIDE = 12_000  # 144 Mpx declared, far over the 64 Mpx cap, in files of a few hundred bytes


# ---------------------------------------------------------------- image bombs


def _jpeg(width: int, height: int, before_sof: bytes) -> bytes:
    """A real 16x16 JPEG whose SOF0 declares ``width`` x ``height``, with ``before_sof`` (fill
    bytes or padding, both of which libjpeg skips) just before the SOF marker."""
    jpeg = bytearray(cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))[1].tobytes())
    sof = jpeg.index(b"\xff\xc0")
    struct.pack_into(">HH", jpeg, sof + 5, height, width)
    return bytes(jpeg[:sof] + before_sof + jpeg[sof:])


def _png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(1000)))
            + chunk(b"IEND", b""))


def _bmp(width: int, height: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 0, 0, 0, 0)
    return b"BM" + struct.pack("<IHHI", 54 + 64, 0, 0, 54) + info + bytes(64)


def _webp(width: int, height: int) -> bytes:
    lossless = b"\x2f" + struct.pack("<I", (width - 1) | (height - 1) << 14) + bytes(16)
    chunk = b"VP8L" + struct.pack("<I", len(lossless)) + lossless
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def _tiff(width: int, height: int) -> bytes:
    # Tag, type (3 short, 4 long), count, value: an 8-bit grey image in one strip.
    tags = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, 8),
            (277, 3, 1), (278, 4, height), (279, 4, width * height)]
    ifd = struct.pack("<H", len(tags)) + b"".join(struct.pack("<HHII", tag, kind, 1, value) for tag, kind, value in tags)
    return b"II*\0" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + bytes(64)


def _ppm(width: int, height: int) -> bytes:
    return f"P6\n{width} {height}\n255\n".encode() + bytes(64)


BOMBS = {
    "jpeg-fill-bytes-before-sof": lambda w, h: _jpeg(w, h, b"\xff\xff\xff"),
    "jpeg-padding-before-sof": lambda w, h: _jpeg(w, h, b"\x00\x00\x00\x00"),
    "png": _png,
    "bmp": _bmp,
    "webp": lambda w, h: _webp(16_000, 16_000),  # WebP's largest side is 16383
    "tiff": _tiff,
    "ppm": _ppm,
}


@pytest.fixture
def no_decoding(monkeypatch):
    """Fails the test if anything reaches OpenCV's decoder."""

    def decoded(*_args):
        raise AssertionError("a refused image reached cv2.imdecode")

    monkeypatch.setattr(frames.cv2, "imdecode", decoded)


@pytest.mark.parametrize("kind", BOMBS)
def test_image_bomb_of_every_format_is_refused_before_decoding(kind, no_decoding):
    bomb = BOMBS[kind](SIDE, SIDE)
    assert len(bomb) < 1000
    for decode in (decode_image, lambda data: frame_to_bgr(data, max_bytes=10_000, max_pixels=16_000_000)):
        with pytest.raises(ImageError, match="larger than|too large"):
            decode(bomb)


@pytest.mark.parametrize("ext", [".gif", ".jp2", ".hdr", ".ras"])
def test_image_format_we_cannot_size_is_refused_with_a_clear_error(ext):
    if not cv2.haveImageWriter(ext):
        pytest.skip(f"this OpenCV cannot write {ext}")
    picture = np.full((40, 60, 3), 128, np.uint8)
    encoded = cv2.imencode(ext, picture)[1].tobytes()
    assert cv2.imdecode(np.frombuffer(encoded, np.uint8), cv2.IMREAD_COLOR) is not None, "OpenCV alone decodes it"
    with pytest.raises(ImageError, match="not a JPEG, PNG, WebP, BMP, TIFF or PNM file"):
        decode_image(encoded)
    assert decode_image(cv2.imencode(".png", picture)[1].tobytes()).shape == (40, 60, 3)


# Runs the CLI as `python -m face3d_nb` does, then writes the process's peak RSS (KiB) to argv[1].
# VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over fork and exec, so the child would
# report the (large) pytest process's peak; the high-water mark belongs to the new address space.
_CLI_WITH_PEAK = """
import pathlib, re, runpy, sys
peak = pathlib.Path(sys.argv.pop(1))
try:
    runpy.run_module("face3d_nb", run_name="__main__", alter_sys=True)
finally:
    status = pathlib.Path("/proc/self/status").read_text()
    peak.write_text(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1))
"""


def test_cli_image_bomb_exits_2_with_one_line_in_bounded_memory(tmp_path):
    bomb, peak = tmp_path / "bomb.jpg", tmp_path / "peak"
    bomb.write_bytes(BOMBS["jpeg-fill-bytes-before-sof"](SIDE, SIDE))
    env = {**os.environ, "FACE3D_HOME": str(tmp_path / "no-models")}
    done = subprocess.run([sys.executable, "-c", _CLI_WITH_PEAK, str(peak), "image", str(bomb)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stderr == f"face3d-nb: error: {bomb}: image of {SIDE}x{SIDE} pixels is larger than 64000000 pixels\n"
    # Decoding the 144 Mpx it declares would take over 400 MB.
    assert int(peak.read_text()) < 300 * 1024, f"peak RSS {int(peak.read_text()) // 1024} MB"


def test_engine_refuses_a_bomb_frame_and_serves_the_next_good_one(synthetic_reconstructor, face_photo):
    events: list = []
    good = cv2.imencode(".jpg", face_photo)[1].tobytes()
    bomb = BOMBS["jpeg-fill-bytes-before-sof"](5000, 5000)  # 25 Mpx, over the engine's 16 Mpx
    with Engine(EngineConfig(), synthetic_reconstructor) as engine:
        engine.subscribe(events.append)
        engine.submit(bomb)
        wait_for(lambda: events, message="the bomb's event")
        engine.submit(good)
        wait_for(lambda: len(events) == 2, message="the good frame's event")
        stats = engine.stats()
    refused, served = events
    assert isinstance(refused, ErrorEvent) and "5000x5000 pixels is larger than 16000000" in refused.error
    assert isinstance(served, FrameResult) and served.frame_shape == face_photo.shape[:2]
    assert (stats.errors, stats.processed) == (1, 1)


# ---------------------------------------------------------------- hostile pickles

_NDARRAY = global_named("numpy", "ndarray")


def _array_record(shape, dtype, data: bytes, reconstruct_shape=(0,)) -> Reduce:
    """numpy's own record of an array, with whatever shape, dtype and data we like."""
    return Reduce("numpy.core.multiarray", "_reconstruct", (_NDARRAY, reconstruct_shape, b"b"),
                  (1, shape, dtype, False, data))


def _dtype_record(code: str, state: tuple) -> Reduce:
    return Reduce("numpy", "dtype", (code, False, True), state)


def _forged_dtype_pickle() -> bytes:
    """Two 8-byte records whose one field is a Python object, with the dtype's flags cleared so
    that numpy believes it holds none: casting it reads 0x4141414141414141 as a pointer."""
    obj = _dtype_record("O8", (3, "|", None, None, None, -1, -1, 0))
    forged = _dtype_record("V8", (3, "|", None, ("a",), {"a": (obj, 0)}, 8, 1, 0))
    return dumps_with_globals(_array_record((2,), forged, b"\x41" * 16))


# Loads a pickle and, if it loads, casts it as the morphable model does.
_LOAD_AND_CAST = """
import sys
import numpy as np
from face3d_nb.models.safe_pickle import UnsafePickleError, load_pkl
try:
    loaded = load_pkl(sys.argv[1])
except UnsafePickleError as exc:
    print("refused:", exc)
else:
    print("cast:", np.asarray(loaded).astype(np.float32))
"""


def test_forged_dtype_pickle_is_refused_without_crashing(tmp_path):
    path = tmp_path / "forged.pkl"
    path.write_bytes(_forged_dtype_pickle())
    done = subprocess.run([sys.executable, "-c", _LOAD_AND_CAST, str(path)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, f"the loader crashed (status {done.returncode}): {done.stderr[-500:]}"
    assert done.stdout.startswith("refused: refusing dtype 'V8'"), done.stdout


@pytest.mark.parametrize("hostile, message", [
    (Reduce("numpy.core.multiarray", "_reconstruct", (_NDARRAY, (2**44,), b"b")), "refusing to reconstruct"),
    (Reduce("numpy", "ndarray", ((2**20, 2**20), "f8")), "refusing to call numpy.ndarray"),
    (_array_record((2**20, 2**20), _dtype_record("f8", (3, "<", None, None, None, -1, -1, 0)), b"\0" * 8),
     "needs 8796093022208 bytes, the pickle holds 8"),
], ids=["reconstruct-2**44-elements", "ndarray-called-for-8-TiB", "state-shape-past-its-data"])
def test_pickle_asking_for_more_than_its_payload_is_refused_before_allocating(tmp_path, hostile, message):
    path = tmp_path / "huge.pkl"
    path.write_bytes(dumps_with_globals(hostile))
    assert len(path.read_bytes()) < 300
    with pytest.raises(UnsafePickleError, match=message):
        load_pkl(path)


@pytest.mark.parametrize("code, state", [
    ("O8", (3, "|", None, None, None, -1, -1, 63)),
    ("V16", (3, "|", None, ("a", "b"), {}, 16, 1, 0)),
    ("f8", (3, "<", None, ("a",), {}, 8, 1, 0)),
    ("f8", (3, "<", None, None, None, -1, -1, 16)),
], ids=["object", "structured", "fields-on-float", "flags-on-float"])
def test_pickle_with_a_non_numeric_or_forged_dtype_is_refused(tmp_path, code, state):
    path = tmp_path / "dtype.pkl"
    path.write_bytes(dumps_with_globals({"mean": _array_record((1,), _dtype_record(code, state), bytes(8))}))
    with pytest.raises(UnsafePickleError, match="refusing dtype"):
        load_pkl(path)


def test_plain_numeric_pickles_of_every_dtype_and_layout_still_load(tmp_path):
    arrays = {code: np.arange(12).astype(code).reshape(3, 4) for code in
              ("?", "i1", "<i2", ">i4", "i8", "u1", "u2", ">u4", "u8", "f2", "f4", ">f8")}
    data = {**arrays, "fortran": np.asfortranarray(arrays["f4"]), "empty": np.zeros((0, 3), np.float32),
            "scalar": np.float64(2.5), "nested": [(np.int64(7), {"deep": np.ones(2)})]}
    path = tmp_path / "plain.pkl"
    for protocol in (2, 4):
        path.write_bytes(pickle.dumps(data, protocol=protocol))
        loaded = load_pkl(path)
        for code, array in arrays.items():
            assert loaded[code].dtype == array.dtype and np.array_equal(loaded[code], array)
            assert loaded[code].flags.writeable
        assert loaded["fortran"].flags.f_contiguous and np.array_equal(loaded["fortran"], arrays["f4"])
        assert loaded["empty"].shape == (0, 3) and loaded["scalar"] == 2.5
        assert loaded["nested"][0][0] == 7 and np.array_equal(loaded["nested"][0][1]["deep"], np.ones(2))


@pytest.mark.parametrize("tensor, message", [
    ((np.ones(1, np.float32), 0, (4096, 4096), (0, 0)), "more elements than its storage"),
    ((np.ones(3, np.float32), 0, (3, 3), (0, 1)), "more elements than its storage"),
    ((np.ones(4, np.float32), 0, "ab", (1,)), "malformed tensor shape"),
    ((np.ones(4, np.float32), 0, (2,) * 40, (0,) * 40), "malformed tensor shape"),
], ids=["stride-0-to-64-MB", "stride-0-past-storage", "shape-not-ints", "40-dims"])
def test_legacy_pth_with_a_shape_past_its_storage_is_refused(tmp_path, tensor, message):
    path = tmp_path / "strided.pth"
    path.write_bytes(write_raw_legacy_pth({"w": tensor}))
    assert len(path.read_bytes()) < 600
    with pytest.raises(UnsafePickleError, match=message):
        load_legacy_pth(path)


# The object pickle of a legacy checkpoint that sets ``dtype = "x"`` on torch.FloatStorage (BUILD on
# the global itself), then holds an empty state dict.
_BUILD_ON_STORAGE_CLASS = b"\x80\x02ctorch\nFloatStorage\n}X\x05\x00\x00\x00dtypeX\x01\x00\x00\x00xsb0}."

_HOSTILE_THEN_GOOD = """
import io, pickle, sys
import numpy as np
from face3d_nb.models.safe_pickle import UnsafePickleError, load_legacy_pth
from face3d_nb.testing.legacy_pth import write_legacy_pth
hostile, good = sys.argv[1], sys.argv[2]
out = io.BytesIO()
for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
    pickle.dump(header, out, protocol=2)
open(hostile, "wb").write(out.getvalue() + bytes.fromhex(sys.argv[3]) + pickle.dumps([], protocol=2))
open(good, "wb").write(write_legacy_pth({"w": np.arange(4, dtype=np.float32)}))
try:
    load_legacy_pth(hostile)
except UnsafePickleError as exc:
    print("refused:", exc)
print("next load:", load_legacy_pth(good)["w"].tolist())
"""


def test_checkpoint_that_builds_an_allowed_class_is_refused_and_changes_no_later_load(tmp_path):
    done = subprocess.run([sys.executable, "-c", _HOSTILE_THEN_GOOD, str(tmp_path / "hostile.pth"),
                           str(tmp_path / "good.pth"), _BUILD_ON_STORAGE_CLASS.hex()],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-800:]
    refused, next_load = done.stdout.splitlines()
    assert refused.startswith("refused: refusing to modify torch.FloatStorage"), refused
    assert next_load == "next load: [0.0, 1.0, 2.0, 3.0]"


@pytest.mark.parametrize("name", ["_codecs encode", "numpy dtype", "numpy ndarray", "collections OrderedDict",
                                  "numpy.core.multiarray _reconstruct"])
def test_pkl_that_builds_an_allowed_global_is_refused(tmp_path, name):
    module, attribute = name.split()
    path = tmp_path / "build.pkl"
    # GLOBAL, then BUILD {"x": 1} on the global itself, then an empty dict as the result.
    path.write_bytes(b"\x80\x02c" + f"{module}\n{attribute}\n".encode() + b"}X\x01\x00\x00\x00xK\x01sb0}.")
    with pytest.raises(UnsafePickleError, match=f"refusing to modify {module}.{attribute}"):
        load_pkl(path)
