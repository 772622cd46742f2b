"""Fixtures of the browser tests: Chromium whose fake camera plays the test video."""

from __future__ import annotations

from pathlib import Path

import pytest
from pages import shared_playwright

from face3d_nb.testing.assets import VIDEO
from face3d_nb.testing.browser import launch_chromium, write_y4m


@pytest.fixture(scope="session")
def fake_camera(tmp_path_factory) -> Path:
    """The test video as the raw YUV4MPEG2 file Chromium's fake camera plays (looped)."""
    if not VIDEO.is_file():
        pytest.skip(f"test video not found at {VIDEO}")
    return write_y4m(VIDEO, tmp_path_factory.mktemp("camera") / "obama.y4m")


@pytest.fixture(scope="session")
def playwright_session():
    return shared_playwright()


@pytest.fixture(scope="session")
def browser(playwright_session, fake_camera):
    """Chromium whose camera is the fake one and whose camera permission is granted."""
    browser = launch_chromium(playwright_session, fake_camera)
    yield browser
    browser.close()
