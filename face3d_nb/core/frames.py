"""Reading and normalising input images: anything we accept becomes a BGR ``uint8`` (H, W, 3) array.

The networks were trained on OpenCV's BGR channel order, so BGR is the working format throughout.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

__all__ = ["ImageError", "as_bgr", "decode_image", "frame_to_bgr", "read_image", "shrink_to"]

# Far beyond any camera or photo we expect, small enough that a hostile header cannot make us
# allocate gigabytes.
MAX_PIXELS = 64_000_000


class ImageError(ValueError):
    """An image could not be read or is not an image we can use; the message says why."""


def as_bgr(image: np.ndarray, order: str = "bgr") -> np.ndarray:
    """Return ``image`` as a C-contiguous BGR uint8 (H, W, 3) array.

    Accepts gray (H, W) or (H, W, 1), colour (H, W, 3) and colour with alpha (H, W, 4, alpha
    dropped); ``order`` says whether colour input is ``"bgr"`` (OpenCV) or ``"rgb"``.
    """
    if not isinstance(image, np.ndarray):
        raise ImageError(f"expected a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ImageError(f"expected uint8 pixels, got {image.dtype}")
    if order not in ("bgr", "rgb"):
        raise ValueError(f"order must be 'bgr' or 'rgb', not {order!r}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim < 2 or min(image.shape[:2]) == 0:
        raise ImageError(f"expected an image of shape (H, W[, C]), got {image.shape}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ImageError(f"expected 1, 3 or 4 channels, got shape {image.shape}")
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_RGBA2BGR if order == "rgb" else cv2.COLOR_BGRA2BGR)
    if order == "rgb":
        return cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    return np.ascontiguousarray(image)


def frame_to_bgr(frame: np.ndarray | bytes, max_bytes: int, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A frame as BGR uint8: an array through :func:`as_bgr`, encoded bytes (at most ``max_bytes``,
    decoding to at most ``max_pixels``) through :func:`decode_image`; :class:`ImageError` otherwise."""
    if isinstance(frame, np.ndarray):
        return as_bgr(frame)
    if len(frame) > max_bytes:
        raise ImageError(f"encoded frame of {len(frame)} bytes is over max_encoded_bytes ({max_bytes})")
    return decode_image(bytes(frame), max_pixels)


def shrink_to(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """``image`` shrunk (area interpolation) so its long side is at most ``max_side`` pixels, and
    the scale applied (new pixels per old pixel, <= 1); ``image`` itself when it is small enough."""
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image, 1.0
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode encoded image bytes (JPEG, PNG, ...) to BGR uint8, as ``cv2.imread`` would.

    Raises :class:`ImageError` for empty, undecodable or oversized data.
    """
    if not data:
        raise ImageError("empty file")
    buf = np.frombuffer(data, np.uint8)
    if _declared_pixels(data) > max_pixels:
        raise ImageError(f"image is larger than {max_pixels} pixels")
    image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if image is None:
        raise ImageError("not a decodable image (corrupt or unsupported format)")
    return image


def _declared_pixels(data: bytes) -> int:
    """Width x height from the header, without decoding; 0 when the header is not one we parse."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big") * int.from_bytes(data[20:24], "big")
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                return 0
            marker, length = data[i + 1], int.from_bytes(data[i + 2 : i + 4], "big")
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                h, w = int.from_bytes(data[i + 5 : i + 7], "big"), int.from_bytes(data[i + 7 : i + 9], "big")
                return h * w
            i += 2 + length
    return 0


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as BGR uint8; :class:`ImageError` with the reason when it cannot be used."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"{path}: {exc.strerror or exc}") from exc
    try:
        return decode_image(data)
    except ImageError as exc:
        raise ImageError(f"{path}: {exc}") from None
