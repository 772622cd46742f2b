"""Reading and normalising input images: anything we accept becomes a BGR ``uint8`` (H, W, 3) array.

The networks were trained on OpenCV's BGR channel order, so BGR is the working format throughout.
"""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import BmpImagePlugin, Image, JpegImagePlugin, PngImagePlugin, PpmImagePlugin, TiffImagePlugin, WebPImagePlugin

__all__ = ["ACCEPTED_FORMATS", "ImageError", "as_bgr", "declared_size", "decode_image", "frame_to_bgr", "read_image",
           "shrink_to"]

# Far beyond any camera or photo we expect, small enough that a hostile header cannot make us
# allocate gigabytes.
MAX_PIXELS = 64_000_000

# The encoded formats we decode, each with the Pillow class that parses its header. OpenCV decodes
# more (GIF, JPEG 2000, HDR, Sun raster, ...); those are refused rather than decoded unchecked.
# The classes are used directly rather than through Image.open, which warns on stderr about large
# sizes that we refuse ourselves.
_HEADER_READERS = (JpegImagePlugin.JpegImageFile, PngImagePlugin.PngImageFile, WebPImagePlugin.WebPImageFile,
                   BmpImagePlugin.BmpImageFile, TiffImagePlugin.TiffImageFile, PpmImagePlugin.PpmImageFile)
ACCEPTED_FORMATS = "JPEG, PNG, WebP, BMP, TIFF or PNM"


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
    """Decode encoded image bytes (JPEG, PNG, WebP, BMP, TIFF or PNM) to BGR uint8, as
    ``cv2.imread`` would.

    The size the header declares is checked against ``max_pixels`` (width x height) before
    anything is decoded, so a small file cannot make us allocate gigabytes. Raises
    :class:`ImageError` for empty, unsized, undecodable or oversized data.
    """
    if not data:
        raise ImageError("empty file")
    width, height = declared_size(data)
    if width * height > max_pixels:
        raise ImageError(f"image of {width}x{height} pixels is larger than {max_pixels} pixels")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageError("not a decodable image (corrupt data)")
    return image


def declared_size(data: bytes) -> tuple[int, int]:
    """(width, height) in pixels that the header of encoded image ``data`` declares.

    Pillow's header parsers read it without decoding a pixel; they skip JPEG fill bytes and
    padding the way libjpeg does, so the size checked is the size OpenCV will decode. Raises
    :class:`ImageError` when ``data`` is none of the accepted formats or its header is unreadable:
    a size we cannot read is a size we cannot cap.
    """
    for reader in _HEADER_READERS:
        try:
            return reader(io.BytesIO(data)).size
        except Image.DecompressionBombError as exc:
            raise ImageError(f"image is too large to open ({exc})") from None
        except Exception:  # noqa: BLE001 - a hostile header can make a parser raise anything: not this format
            continue
    raise ImageError(f"not a decodable image (not a {ACCEPTED_FORMATS} file with a readable header)")


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
