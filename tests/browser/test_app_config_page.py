"""`face3d-nb app --config seed.yaml`: the seed's nested config reaches the app the page shows.

The file has only the seed's keys that mean something here; what the kernel made of them is read
by a second client on the page's kernel (:class:`KernelProbe`), and the performance log from disk.
"""

from __future__ import annotations

import csv

import pytest
from pages import PAGE_TIMEOUT_MS, VIEWPORT, requires_browser

from face3d_nb.testing.browser import Server, app_page, wait_until

pytestmark = [pytest.mark.real_assets, requires_browser]

# 480 px: a size the page's round trip never chooses, so it arriving shows the file was read.
SEED_YAML = """\
model:
  device: cpu
performance:
  input_resolution: 480x360
  frame_skip: 1
  max_fps: 15
debug:
  log_performance: true
  verbose: false
"""


def test_the_seeds_config_yaml_drives_the_served_app(real_store, browser, tmp_path):
    config = tmp_path / "seed" / "config.yaml"
    config.parent.mkdir()
    config.write_text(SEED_YAML)
    with (Server("voila", tmp_path / "server", real_store.home, config=config) as server,
          app_page(browser, server, VIEWPORT, PAGE_TIMEOUT_MS) as (page, probe)):
        assert probe.eval("str(app.settings.source)") == str(config.resolve())
        assert probe.eval("(app.engine.config.max_fps, app.engine.config.frame_skip, "
                          "app.engine.config.provider)") == (15.0, 1, "cpu")
        assert probe.eval("app.grabber.max_fps") == 15.0
        # The round trip's own choice arrives and leaves the file's input size alone.
        wait_until(lambda: probe.eval("app.start_settings is not None"), 180, 0.5, "the page's round trip")
        assert probe.eval("(app.controls.input_size, app.grabber.width)") == (480, 480)
        wait_until(lambda: probe.eval("app.performance_log.lines >= 10"), 180, 0.5,
                   "10 lines in the performance log")
        log_path = probe.eval("str(app.performance_log.path)")
        assert log_path.startswith(str(config.parent.resolve()))
        probe.run("app.close()")
        assert probe.eval("app.performance_log.closed") is True
    with open(log_path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= 10
    assert all(float(r["total_ms"]) > 0 and r["error"] == "" for r in rows)
    assert [int(r["seq"]) for r in rows] == sorted(int(r["seq"]) for r in rows)
