"""The command line's progress bars (tqdm on stderr), shown only when stderr is a terminal.

A bar redraws itself with ``\\r``; in a log file or a pipe that is noise, so there the bars stay
silent and only the commands' own result lines are written.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

__all__ = ["bar", "counted", "download_bars", "print_line"]

T = TypeVar("T")


def bar(items: Iterable[T] | None = None, **kwargs) -> tqdm:
    """A tqdm bar on stderr over ``items`` (or updated by hand), disabled when stderr is no terminal."""
    # tqdm's disable=None is exactly "off unless the file is a TTY".
    return tqdm(items, file=sys.stderr, disable=None, dynamic_ncols=True, **kwargs)


def print_line(line: str) -> None:
    """Print a result line to stdout without tearing a bar being drawn on the terminal."""
    tqdm.write(line, file=sys.stdout)


def download_bars():
    """A ``progress(key, done, total)`` callback for :meth:`ModelStore.fetch`: one byte bar per file."""
    bars: dict[str, tqdm] = {}

    def progress(key: str, done: int, total: int | None) -> None:
        if key not in bars:
            bars[key] = bar(desc=key, total=total, unit="B", unit_scale=True, unit_divisor=1024)
        current = bars[key]
        current.update(done - current.n)
        if total is not None and done >= total:
            current.close()

    return progress


def counted(items: Iterable[T], desc: str, unit: str, total: int | None = None) -> Iterator[T]:
    """``items`` with a bar counting them (closed when the loop ends, also on an error)."""
    with bar(items, desc=desc, unit=unit, total=total) as shown:
        yield from shown
