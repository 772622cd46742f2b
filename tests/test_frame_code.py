"""The frame-index code of ``face3d_nb.testing.frame_code`` on real frames of the test video."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from face3d_nb.testing.assets import VIDEO
from face3d_nb.testing.browser import write_y4m
from face3d_nb.testing.frame_code import BITS, CELLS_PER_WIDTH, COLUMNS, ROWS, read, stamp, write_coded_y4m

INDICES = range(0, 1 << BITS, 37)


@pytest.fixture(scope="module")
def video_frames() -> list[np.ndarray]:
    """Every frame of the test video at the camera's 640 x 360, BGR uint8 (360, 640, 3)."""
    if not VIDEO.is_file():
        pytest.skip(f"test video not found at {VIDEO}")
    capture = cv2.VideoCapture(str(VIDEO))
    frames = []
    while (got := capture.read())[0]:
        frames.append(cv2.resize(got[1], (640, 360), interpolation=cv2.INTER_AREA))
    capture.release()
    return frames


@pytest.fixture(scope="module")
def frame(video_frames) -> np.ndarray:
    return video_frames[30]


def _jpeg(image: np.ndarray, quality: int = 70) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(data, cv2.IMREAD_COLOR)


def _code_box(width: int) -> tuple[int, int, int]:
    """Left edge, cell side and bottom edge of the code in a frame ``width`` px wide."""
    cell = width // CELLS_PER_WIDTH
    return width - COLUMNS * cell, cell, ROWS * cell


def _page_frames(stamped: np.ndarray):
    """What the page sends and the 3D view shows: JPEG q70 at 640 and at 320 x 180, two filters."""
    yield "jpeg 640", _jpeg(stamped)
    for name, interpolation in (("area", cv2.INTER_AREA), ("linear", cv2.INTER_LINEAR)):
        small = cv2.resize(stamped, (320, 180), interpolation=interpolation)
        yield f"{name} jpeg 320", _jpeg(small)
        yield f"jpeg {name} 320", cv2.resize(_jpeg(stamped), (320, 180), interpolation=interpolation)
    blurred = cv2.GaussianBlur(cv2.resize(stamped, (320, 180), interpolation=cv2.INTER_LINEAR), (5, 5), 1.0)
    yield "blurred jpeg 320", _jpeg(blurred)
    # A background texture drawn at 40 % opacity over a dark grey canvas, then scaled again.
    faded = cv2.addWeighted(stamped, 0.4, np.full_like(stamped, 40), 0.6, 0)
    yield "faded 480", cv2.resize(_jpeg(faded), (480, 270), interpolation=cv2.INTER_LINEAR)


def test_stamp_keeps_to_the_top_right_corner(frame):
    stamped = stamp(frame, 2730)
    changed = np.argwhere(np.any(stamped != frame, axis=2))
    assert changed[:, 0].max() < 0.09 * frame.shape[0]
    assert changed[:, 1].min() >= 0.65 * frame.shape[1]
    assert frame.shape[1] / CELLS_PER_WIDTH / 2 >= 8  # cells of 8 px at 320 px wide
    assert stamp(frame, 0).shape == frame.shape and stamp(frame, 0).dtype == np.uint8
    untouched = frame.copy()
    stamp(frame, 4095)
    assert np.array_equal(frame, untouched)


def test_every_index_reads_back_after_jpeg_scaling_and_blur(frame):
    for index in INDICES:
        for name, received in _page_frames(stamp(frame, index)):
            assert read(received) == index, (index, name)


def test_a_stamp_at_any_size_reads_at_any_other(video_frames):
    full = cv2.resize(video_frames[0], (1280, 720), interpolation=cv2.INTER_LINEAR)
    stamped = stamp(full, 4095)
    for width in (160, 320, 426, 640, 1000):
        small = cv2.resize(stamped, (width, width * 9 // 16), interpolation=cv2.INTER_AREA)
        assert read(_jpeg(small)) == 4095, width
    received = _jpeg(stamp(video_frames[0], 77))
    for converted in (cv2.COLOR_BGR2GRAY, cv2.COLOR_BGR2RGB, cv2.COLOR_BGR2RGBA):
        assert read(cv2.cvtColor(received, converted)) == 77, converted


def test_stamp_refuses_an_index_it_cannot_draw(frame):
    for index in (-1, 1 << BITS):
        with pytest.raises(ValueError):
            stamp(frame, index)


def test_frames_without_a_code_read_none(video_frames):
    for image in video_frames:
        assert read(image) is None
        assert read(cv2.resize(_jpeg(image), (320, 180), interpolation=cv2.INTER_AREA)) is None
    assert read(np.zeros((180, 320, 3), np.uint8)) is None
    assert read(np.random.default_rng(0).integers(0, 256, (180, 320, 3), np.uint8)) is None


def test_a_mirrored_or_upside_down_code_reads_none(frame):
    left, _, bottom = _code_box(frame.shape[1])
    for index in INDICES:
        stamped = stamp(frame, index)
        assert read(stamped[:, ::-1]) is None
        for flipped in (stamped[:bottom, left:][::-1], stamped[:bottom, left:][:, ::-1],
                        stamped[:bottom, left:][::-1, ::-1]):
            code = stamped.copy()
            code[:bottom, left:] = flipped
            assert read(code) is None, index


def test_a_code_read_off_by_whole_cells_reads_none(frame):
    """A crop that is off, padded with the frame's edge (a clamped texture) or a flat colour."""
    cell = frame.shape[1] // CELLS_PER_WIDTH
    for index in INDICES[::3]:
        stamped = stamp(frame, index)
        for shift in (-3 * cell, -2 * cell, -cell, cell, 2 * cell, 3 * cell):
            matrix = np.float32([[1, 0, shift], [0, 1, 0]])
            for border in (cv2.BORDER_REPLICATE, cv2.BORDER_CONSTANT):
                moved = cv2.warpAffine(stamped, matrix, frame.shape[1::-1], borderMode=border, borderValue=(255,) * 3)
                assert read(moved) is None, (index, shift, border)


def test_a_code_painted_over_reads_none(frame):
    left, cell, bottom = _code_box(frame.shape[1])
    for index in (0, 1234, 2730, 4095):
        for colour in (0, 128, 255):
            # Half the columns, both rows: every painted column's cells are alike.
            painted = stamp(frame, index)
            painted[:bottom, left:left + 7 * cell] = colour
            assert read(_jpeg(painted)) is None, (index, colour, "columns")
            # One cell of each row, in different columns, cut by the paint's edge.
            painted = stamp(frame, index)
            painted[:cell, left + 3 * cell:left + 4 * cell + cell // 2] = colour
            painted[cell:bottom, left + 9 * cell + cell // 2:left + 11 * cell] = colour
            assert read(_jpeg(painted)) is None, (index, colour, "cells")
    painted = stamp(frame, 1234)
    painted[:bottom, -cell:] = frame[:bottom, -cell:]  # the end guard covered by the picture
    assert read(painted) is None
    # A page element whiter than a code faded into the 3D view, over the top cells of 6 columns.
    for index in INDICES:
        faded = cv2.addWeighted(stamp(frame, index), 0.4, np.full_like(frame, 40), 0.6, 0)
        faded[:cell, left + 7 * cell:left + 13 * cell] = 255
        assert read(faded) in (None, index)
        if index & 0b111111 != 0b111111:  # one of those bits was a 0, now white over white
            assert read(faded) is None, index


def test_a_damaged_code_never_reads_a_wrong_index(frame):
    rng = np.random.default_rng(1)
    left, cell, bottom = _code_box(frame.shape[1])
    width = frame.shape[1]
    for _ in range(600):
        index = int(rng.integers(0, 1 << BITS))
        painted = stamp(frame, index)
        x0 = int(rng.integers(left - cell, width - cell // 2))
        y0 = int(rng.integers(0, bottom - cell // 2))
        x1, y1 = x0 + int(rng.integers(cell // 2, 8 * cell)), y0 + int(rng.integers(cell // 2, bottom))
        painted[y0:y1, x0:x1] = rng.integers(0, 256, 3)
        assert read(_jpeg(painted)) in (None, index)


def _y4m_frames(path) -> tuple[dict[str, str], list[np.ndarray]]:
    """The header fields and the frames (BGR uint8 (h, w, 3)) of a 4:2:0 YUV4MPEG2 file."""
    data = path.read_bytes()
    header, rest = data.split(b"\n", 1)
    fields = dict((field[:1], field[1:]) for field in header.decode("ascii").split()[1:])
    width, height = int(fields["W"]), int(fields["H"])
    size = width * height * 3 // 2
    frames = []
    while rest:
        marker, rest = rest.split(b"\n", 1)
        assert marker == b"FRAME"
        yuv = np.frombuffer(rest[:size], np.uint8).reshape(height * 3 // 2, width)
        frames.append(cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR_I420))
        rest = rest[size:]
    return fields, frames


def test_coded_y4m_reads_its_frame_numbers_in_order(tmp_path, video_frames):
    fields, frames = _y4m_frames(write_coded_y4m(VIDEO, tmp_path / "coded.y4m"))
    assert (fields["W"], fields["H"], fields["C"]) == ("640", "360", "420jpeg")
    assert len(frames) == len(video_frames)
    assert [read(image) for image in frames] == list(range(len(video_frames)))
    assert [read(cv2.resize(_jpeg(image), (320, 180))) for image in frames] == list(range(len(frames)))


def test_coded_y4m_takes_a_size_and_a_frame_count(tmp_path, video_frames):
    _, frames = _y4m_frames(write_coded_y4m(VIDEO, tmp_path / "coded.y4m", 320, 180, frames=5))
    assert [image.shape for image in frames] == [(180, 320, 3)] * 5
    assert [read(image) for image in frames] == [0, 1, 2, 3, 4]


def test_plain_y4m_is_unchanged(tmp_path, video_frames):
    _, frames = _y4m_frames(write_y4m(VIDEO, tmp_path / "plain.y4m"))
    assert len(frames) == len(video_frames)
    for written, original in zip(frames, video_frames):
        assert read(written) is None
        assert np.abs(written.astype(int) - original).mean() < 4  # only the 4:2:0 round trip
