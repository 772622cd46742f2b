"""Page helpers for the browser tests (their fixtures are in this folder's conftest.py).

The tests drive Debian's Chromium (software WebGL) against real servers they start; they skip,
saying why, when Chromium or the Jupyter stack is missing. Timeouts are generous (a shared 2-core
machine runs the browser, the server, the kernel and the engine at once) and every wait polls
for a condition.
"""

from __future__ import annotations

import atexit
import os
from pathlib import Path

import pytest

from face3d_nb.testing.browser import chromium_missing, wait_until

SKIP = chromium_missing()
requires_browser = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")

#: Where page screenshots go (``FACE3D_SCREENSHOTS``), else the test's tmp dir.
SHOTS = os.environ.get("FACE3D_SCREENSHOTS")
VIEWPORT = {"width": 1280, "height": 900}
# Page loads and first frames on a loaded 2-core machine: minutes, not seconds.
PAGE_TIMEOUT_MS = 240_000


_playwright = None


def shared_playwright():
    """The test process's one Playwright driver (its sync API allows only one at a time)."""
    global _playwright
    if _playwright is None:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415

        _playwright = sync_playwright().start()
        atexit.register(_playwright.stop)
    return _playwright


def screenshot(page, name: str, tmp_path: Path) -> Path:
    """Save the whole app: Voila and JupyterLab scroll inside the page, so grow the window for it."""
    folder = Path(SHOTS) if SHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.set_viewport_size({"width": VIEWPORT["width"], "height": 1500})
    try:
        page.wait_for_timeout(1500)  # one more mesh update at the new size
        page.screenshot(path=str(path), full_page=True)
    finally:
        page.set_viewport_size(VIEWPORT)
    return path


def stat(page, name: str) -> float | None:
    """The number shown in the stats panel's ``face3d-stat-<name>`` element (None before any)."""
    locator = page.locator(f".face3d-stat-{name}")
    if locator.count() == 0:
        return None
    try:
        return float(locator.first.inner_text())
    except ValueError:
        return None


def wait_for_stat(page, name: str, above: float = 0.0, timeout: float = 180.0) -> float:
    return wait_until(lambda: (v := stat(page, name)) is not None and v > above and v, timeout,
                      message=f"face3d-stat-{name} > {above}")


def local_only(page) -> list[str]:
    """Abort every request that leaves this machine, and record it: the app must render without them."""
    blocked: list[str] = []

    def route(request_route):
        url = request_route.request.url
        if url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")):
            request_route.continue_()
        else:
            blocked.append(url)
            request_route.abort()

    page.route("**/*", route)
    return blocked
