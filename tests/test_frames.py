"""Input images of every kind become BGR uint8, or fail with a clear ImageError."""

import cv2
import numpy as np
import pytest

from face3d_nb.core.frames import ImageError, as_bgr, decode_image, read_image


def test_channel_layouts_become_bgr():
    bgr = np.random.default_rng(0).integers(0, 256, (4, 5, 3), dtype=np.uint8)
    assert np.array_equal(as_bgr(bgr), bgr)
    assert np.array_equal(as_bgr(bgr[..., ::-1], order="rgb"), bgr)
    bgra = np.dstack([bgr, np.full((4, 5), 7, np.uint8)])
    assert np.array_equal(as_bgr(bgra), bgr)
    assert np.array_equal(as_bgr(bgra[..., [2, 1, 0, 3]], order="rgb"), bgr)
    gray = bgr[..., 0]
    for g in (gray, gray[..., None]):
        out = as_bgr(g)
        assert out.shape == (4, 5, 3) and all(np.array_equal(out[..., c], gray) for c in range(3))


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((4, 5, 3), np.float32), "uint8"),
        (np.zeros((4, 5, 2), np.uint8), "channels"),
        (np.zeros((0, 5, 3), np.uint8), "shape"),
        (np.zeros(5, np.uint8), "shape"),
        ([[1, 2]], "numpy array"),
    ],
)
def test_unusable_arrays_are_rejected(bad, message):
    with pytest.raises(ImageError, match=message):
        as_bgr(bad)


def test_decode_errors_say_why(tmp_path):
    with pytest.raises(ImageError, match="empty"):
        decode_image(b"")
    with pytest.raises(ImageError, match="not a decodable image"):
        decode_image(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    ok, png = cv2.imencode(".png", np.zeros((10, 10, 3), np.uint8))
    assert decode_image(png.tobytes()).shape == (10, 10, 3)
    with pytest.raises(ImageError, match="larger than 50 pixels"):
        decode_image(png.tobytes(), max_pixels=50)
    with pytest.raises(ImageError, match="missing.jpg"):
        read_image(tmp_path / "missing.jpg")


def test_jpeg_header_size_is_checked_before_decoding():
    ok, jpg = cv2.imencode(".jpg", np.zeros((40, 30, 3), np.uint8))
    with pytest.raises(ImageError, match="larger than"):
        decode_image(jpg.tobytes(), max_pixels=40 * 30 - 1)
    assert decode_image(jpg.tobytes(), max_pixels=40 * 30).shape == (40, 30, 3)
