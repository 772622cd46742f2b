"""Frames that carry their own index, for checking which camera frame reached which view.

:func:`stamp` draws a frame's index in its top-right corner as a grid of black and white cells;
:func:`read` reads it back from the frame after it has been JPEG-encoded, scaled, blurred or
drawn as a blended texture; :func:`write_coded_y4m` writes a video for Chromium's fake camera
with every frame stamped with its 0-based number in the file.

The code is 2 rows x 14 columns of square cells of side ``width / 40`` (8 px at 320 px wide,
16 px at 640), flush with the top and right edges: the right 35 % of the width and the top
``2 * width / 40`` pixels (8.9 % of the height at 16:9). Each data column holds one bit in
dual rail, a white cell over a black one for 1 and black over white for 0: the bottom row is the
check of the top one, and as cells are classed against the code's own two levels, no change of
brightness, contrast, gamma or blend changes a bit. Columns 1..12 are the index, most
significant bit first. Column 0, the start guard, is all black: its cells are alike, unlike any
data column's, so a code read one or more columns off (a crop that is off) finds the guard where
a bit should be, or a bit where the guard should be, and is refused. Column 13, the end guard, is
white over black, so a code mirrored or upside down is refused too::

    col:   0   1 ... 12  13
    top:   B   b11 .. b0  W
    bot:   B  ~b11 .. ~b0 B

:func:`read` classes each cell white or black against the midpoint of the code's two levels
(taken from the data columns) and refuses a cell far from its level or not uniform. Painting
over part of the code, whatever the colour, gives cells of one class where the paint is, so a
painted data column has two cells alike, or a painted guard is wrong: a damaged code reads None,
never a wrong index.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .browser import write_y4m

__all__ = ["BITS", "CELLS_PER_WIDTH", "COLUMNS", "ROWS", "read", "stamp", "write_coded_y4m"]

BITS = 12
COLUMNS = BITS + 2  # a guard column at each end
ROWS = 2
# Cells of 8 px in frames scaled to 320 px wide: big enough to outlive JPEG's 8 px blocks and a
# blur of a pixel or two, small enough for 14 columns to fit in the right 35 % of the width.
CELLS_PER_WIDTH = 40
# The least contrast (white level - black level, in grey levels 0..255) read as a code: a code
# blended into a 3D view at 1/10 opacity still has 25.
_MIN_CONTRAST = 20.0
# How far, over the contrast, the middle of a cell may lie from the level of its colour, and how
# much it may spread (max - min): JPEG ringing and a blur of 2 px at 320 px wide stay within; a
# cell half painted over, or crossed by a paint's edge, does not, and is refused, not classed.
_LEVEL_TOLERANCE = 0.35
_MAX_SPREAD = 0.45


def _cell_size(width: int) -> float:
    """Side of a cell in pixels (a float: boundaries are rounded only where pixels are drawn)."""
    return width / CELLS_PER_WIDTH


def _columns(index: int) -> list[tuple[bool, bool]]:
    """Whether the (top, bottom) cells of each of the 14 columns are white, left to right."""
    bits = [bool((index >> (BITS - 1 - k)) & 1) for k in range(BITS)]
    return [(False, False), *((bit, not bit) for bit in bits), (True, False)]


def stamp(frame: np.ndarray, index: int) -> np.ndarray:
    """A copy of ``frame`` with ``index`` drawn in its top-right corner.

    Args:
        frame: a BGR (or any 3-channel) uint8 image, shape (h, w, 3), h >= w / 20.
        index: 0 <= index < 2**12.

    Returns:
        The stamped copy, same shape and dtype; pixels outside the code are unchanged.
    """
    if not 0 <= index < 1 << BITS:
        raise ValueError(f"index {index} is outside 0..{(1 << BITS) - 1}")
    height, width = frame.shape[:2]
    cell = _cell_size(width)
    if height < ROWS * cell:
        raise ValueError(f"a {width} x {height} frame is too flat for the code")
    out = frame.copy()
    left = width - COLUMNS * cell
    for column, whites in enumerate(_columns(index)):
        x0, x1 = round(left + column * cell), round(left + (column + 1) * cell)
        for row, white in enumerate(whites):
            out[round(row * cell):round((row + 1) * cell), x0:x1] = 255 if white else 0
    return out


def _cell_middles(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Mean and spread of the middle half (each way) of every cell, or None when it is off-frame.

    Args:
        grey: the luma of the frame, float32, shape (h, w).

    Returns:
        ``(means, spreads)``, each shape (ROWS, COLUMNS), in grey levels 0..255.
    """
    height, width = grey.shape
    cell = _cell_size(width)
    if height < ROWS * cell or cell < 2:
        return None
    left = width - COLUMNS * cell
    means = np.empty((ROWS, COLUMNS), np.float32)
    spreads = np.empty((ROWS, COLUMNS), np.float32)
    for row in range(ROWS):
        for column in range(COLUMNS):
            # The middle half stays clear of the neighbours' colour that scaling and blur bleed
            # in, and of a crop that is off by up to a quarter of a cell.
            y0, y1 = _inner(row * cell, cell)
            x0, x1 = _inner(left + column * cell, cell)
            patch = grey[y0:y1, x0:x1]
            means[row, column] = patch.mean()
            spreads[row, column] = patch.max() - patch.min()
    return means, spreads


def _inner(start: float, cell: float) -> tuple[int, int]:
    """Pixel range [first, last) of the middle half of a cell starting at ``start`` (px), >= 1 px."""
    first = math.ceil(start + cell / 4)
    return first, max(first + 1, math.floor(start + 3 * cell / 4))


def read(frame: np.ndarray) -> int | None:
    """The index :func:`stamp` drew on ``frame``, or None when no intact code is there.

    Args:
        frame: a BGR uint8 image of any size with the aspect ratio of the stamped frame (the
            code is found at the same fractions of the width), shape (h, w, 3), (h, w, 4) (alpha
            ignored) or (h, w); RGB and RGBA read the same, the cells being grey.

    Returns:
        The index (0 <= index < 2**12), or None when the corner holds no code, or one that is
        damaged, mirrored, shifted or too faint to be sure of.
    """
    # Only the rows of the code, as a screenshot or a frame is read many times in a test.
    grey = frame[:math.ceil(ROWS * _cell_size(frame.shape[1])) + 1].astype(np.float32)
    if grey.ndim == 3:
        # Rec. 601 luma, the weights of cv2.COLOR_BGR2GRAY; neutral cells read the same from RGB.
        grey = grey[..., :3] @ np.array([0.114, 0.587, 0.299], np.float32)
    middles = _cell_middles(grey)
    if middles is None:
        return None
    means, spreads = middles
    # The levels from the data columns, which hold one white and one black cell each.
    white = float(np.median(means[:, 1:-1].max(axis=0)))
    black = float(np.median(means[:, 1:-1].min(axis=0)))
    contrast = white - black
    if contrast < _MIN_CONTRAST or np.any(spreads > _MAX_SPREAD * contrast):
        return None
    whites = means > (white + black) / 2
    level = np.where(whites, white, black)
    if np.any(np.abs(means - level) > _LEVEL_TOLERANCE * contrast):
        return None
    columns = list(zip(whites[0].tolist(), whites[1].tolist()))
    if columns[0] != (False, False) or columns[-1] != (True, False):
        return None
    if any(top == bottom for top, bottom in columns[1:-1]):  # dual rail: a damaged bit
        return None
    return int("".join("1" if top else "0" for top, _ in columns[1:-1]), 2)


def write_coded_y4m(video: Path, out: Path, width: int = 640, height: int = 360,
                    frames: int | None = None) -> Path:
    """Write ``video`` as :func:`~face3d_nb.testing.browser.write_y4m` does, each frame stamped.

    Args:
        video: any file OpenCV decodes.
        out: the YUV4MPEG2 file to write (4:2:0, ``width`` x ``height``).
        width, height: the size of the written frames in pixels; the code is drawn at this size.
        frames: write at most this many frames (None: all of them, at most 2**12).

    Returns:
        ``out``; frame ``i`` of it (0-based) reads back as ``i``.
    """
    limit = 1 << BITS if frames is None else min(frames, 1 << BITS)
    return write_y4m(video, out, width, height, frames=limit, transform=stamp)
