"""Reliability (issue 12), serving: beyond localhost only with a token, and a cap on kernels.

The server tests run ``face3d-nb app`` for real (Voila, the app notebook, the synthetic models) and
talk to it with plain HTTP requests, as a browser would before any script runs.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from face3d_nb.apps.serve import ENV_TOKEN, Serving, is_loopback, serving, voila_argv
from face3d_nb.testing.browser import Server
from face3d_nb.testing.polling import wait_for

PAGE_TIMEOUT = 300


# -- the options, before anything is served --------------------------------------------------------
@pytest.mark.parametrize(("host", "loopback"), [("localhost", True), ("127.0.0.1", True), ("127.0.1.1", True),
                                                 ("::1", True), ("[::1]", True), ("0.0.0.0", False), ("", False),
                                                 ("::", False), ("192.168.1.20", False), ("myhost.example", False)])
def test_only_loopback_hosts_count_as_localhost(host, loopback):
    assert is_loopback(host) is loopback


def test_beyond_localhost_a_token_is_generated_unless_given(monkeypatch):
    monkeypatch.delenv(ENV_TOKEN, raising=False)
    first, second = serving("0.0.0.0", 8866), serving("0.0.0.0", 8866)
    assert len(first.token) >= 32 and first.token != second.token
    assert serving("0.0.0.0", 8866, token="mine").token == "mine"
    monkeypatch.setenv(ENV_TOKEN, "from-env")
    assert serving("0.0.0.0", 8866).token == "from-env"
    assert serving("0.0.0.0", 8866, token="mine").token == "mine"


def test_localhost_serves_without_a_token_unless_given(monkeypatch):
    monkeypatch.delenv(ENV_TOKEN, raising=False)
    assert serving("localhost", 8866).token == ""
    assert "--Voila.token" not in " ".join(voila_argv(Path("app.ipynb"), 8866))
    assert serving("127.0.0.1", 8866, token="mine").token == "mine"


def test_the_urls_carry_the_token_like_jupyters():
    assert Serving("10.1.2.3", 8000, "abc").urls() == ["http://10.1.2.3:8000/?token=abc"]
    assert Serving("0.0.0.0", 8000, "abc").urls()[-1] == "http://127.0.0.1:8000/?token=abc"
    assert Serving("localhost", 8000).urls() == ["http://localhost:8000/"]
    assert Serving("fd00::5", 8000, "abc").urls() == ["http://[fd00::5]:8000/?token=abc"]


def test_voila_gets_the_token_and_the_kernel_cap():
    argv = voila_argv(Path("app.ipynb"), 8866, "0.0.0.0", token="abc", max_kernels=3)
    assert "--Voila.token=abc" in argv and "--CappedKernelManager.max_kernels=3" in argv
    assert "--VoilaConfiguration.multi_kernel_manager_class=face3d_nb.apps.kernels.CappedKernelManager" in argv


def test_the_server_remembers_few_message_signatures_per_page(tmp_path):
    # Every message a kernel sends a page leaves its signature in the server (replay protection):
    # jupyter_client keeps 65,536 per page, ~10 MB grown at the page's message rate (bench_soak.py).
    pytest.importorskip("voila")
    from jupyter_client.session import Session
    from voila.app import Voila

    app = Voila()
    app.parse_command_line(voila_argv(tmp_path / "app.ipynb", 8866))
    assert Session(config=app.config).digest_history_size == 1024


def run_cli(*args: str) -> subprocess.CompletedProcess:
    # A timeout: a command that should fail at once must not hang the suite by serving instead.
    env = {k: v for k, v in os.environ.items() if k != ENV_TOKEN}
    return subprocess.run([sys.executable, "-m", "face3d_nb.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120)


@pytest.mark.parametrize(("args", "message"), [
    (("app", "--host", "0.0.0.0", "--token", ""), "--host 0.0.0.0 listens beyond localhost: a token is required"),
    (("app", "--max-kernels", "0"), "--max-kernels must be at least 1, got 0"),
    (("app", "--port", "0"), "--port must be between 1 and 65535, got 0"),
    (("replay", "missing.jsonl", "--host", "10.0.0.1", "--token", ""), "a token is required"),
])
def test_bad_serving_options_are_one_line_and_status_2(args, message):
    proc = run_cli(*args)
    assert proc.returncode == 2
    assert proc.stderr.startswith("face3d-nb: error: ") and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


# -- the kernel cap, without a server ---------------------------------------------------------------
def run_async(coroutine):
    """``asyncio.run`` on a thread of its own: the browser tests' Playwright keeps an event loop
    running on the main thread for the whole session."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


def test_two_pages_arriving_together_cannot_both_take_the_last_slot(monkeypatch):
    from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager

    from face3d_nb.apps.kernels import AppBusyError, CappedKernelManager

    started = []

    async def slow_start(self, *, kernel_id=None, path=None, **kwargs):
        await asyncio.sleep(0.05)  # a kernel process takes a while to answer
        started.append(kernel_id)
        return kernel_id

    monkeypatch.setattr(AsyncMappingKernelManager, "start_kernel", slow_start)

    async def two_pages():
        manager = CappedKernelManager(max_kernels=1)
        return await asyncio.gather(manager.start_kernel(), manager.start_kernel(), return_exceptions=True)

    first, second = run_async(two_pages())
    assert started == [first]
    assert isinstance(second, AppBusyError) and second.status_code == 503
    assert second.reason == "The app is busy: 1 person is using it; try again later"


class Channel:
    """A ZeroMQ stream as jupyter_server's buffering sees it."""

    def __init__(self):
        self.open, self.on_message = True, None

    def closed(self) -> bool:
        return not self.open

    def on_recv(self, callback) -> None:
        self.on_message = callback

    def close(self) -> None:
        self.open = False


def test_a_page_that_closes_while_its_kernel_shuts_down_leaves_no_channel_open(monkeypatch):
    # Voila's page asks for its kernel's shutdown as it unloads, and its websocket ends meanwhile:
    # jupyter_server would start buffering the kernel's messages after clearing its buffers.
    from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager

    from face3d_nb.apps.kernels import CappedKernelManager

    manager = CappedKernelManager()
    channels = {name: Channel() for name in ("shell", "iopub", "stdin", "control")}

    async def shutting_down(self, kernel_id, now=False, restart=False):
        self.stop_buffering(kernel_id)
        await asyncio.sleep(0)  # the kernel takes a while to exit: the websocket ends now
        self.start_buffering(kernel_id, "session", channels)
        del self._kernels[kernel_id]

    monkeypatch.setattr(AsyncMappingKernelManager, "_async_shutdown_kernel", shutting_down)
    manager._kernels["kernel-1"] = None  # running
    run_async(manager.shutdown_kernel("kernel-1"))
    assert not any(channel.open for channel in channels.values())
    assert "kernel-1" not in manager._kernel_buffers


# -- a real server beyond localhost -----------------------------------------------------------------
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def request(url: str, method: str = "GET", data: dict | None = None,
            opener: urllib.request.OpenerDirector = OPENER) -> tuple[int, dict, str]:
    """(status, headers, body) of one request, redirects not followed; ``data``: a form to post."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        with opener.open(urllib.request.Request(url, body, method=method), timeout=PAGE_TIMEOUT) as response:
            return response.status, dict(response.headers), response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode(errors="replace")


class PublicApp(Server):
    """``face3d-nb app --host 0.0.0.0 --max-kernels 1``, reached at 127.0.0.1."""

    def command(self) -> list[str]:
        return [sys.executable, "-m", "face3d_nb.cli", "app", "--port", str(self.port), "--host", "0.0.0.0",
                "--max-kernels", "1"]

    def kernel_ids(self) -> list[str]:
        return [p.stem.removeprefix("kernel-") for p in self.connection_files()]


@pytest.fixture(scope="module")
def public_app(synthetic_store, tmp_path_factory):
    pytest.importorskip("voila")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(ENV_TOKEN, raising=False)  # the server generates its token
        with PublicApp("voila", tmp_path_factory.mktemp("public_app"), synthetic_store.home) as server:
            match = wait_for(lambda: re.search(rf"http://127\.0\.0\.1:{server.port}/\?token=(\S+)", server.log()), 60,
                             "the URL with its token in the server's output")
            yield server, match.group(1)


def test_beyond_localhost_a_page_without_the_token_goes_to_the_login_page(public_app):
    server, token = public_app
    for url in (f"{server.url}/", f"{server.url}/?token=not-{token}"):
        status, headers, _ = request(url)
        assert status == 302 and headers["Location"].startswith("/login"), (status, headers)
    status, _, _ = request(f"{server.url}/voila/api/shutdown/00000000-0000-0000-0000-000000000000", "POST")
    assert status == 403
    assert server.kernel_ids() == []


def test_with_the_token_one_page_is_served_and_the_next_is_told_the_app_is_busy(public_app):
    server, token = public_app
    cookies = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(NoRedirect, urllib.request.HTTPCookieProcessor(cookies))
    status, _, body = request(f"{server.url}/?token={token}", opener=browser)
    assert status == 200 and "application/vnd.jupyter.widget-view+json" in body
    [kernel] = server.kernel_ids()

    status, _, body = request(f"{server.url}/?token={token}")
    assert status == 503
    assert "The app is busy: 1 person is using it; try again later" in body
    assert server.kernel_ids() == [kernel]

    # What Voila's page does when it closes: post a shutdown of its kernel with its cookies and the
    # _xsrf cookie's value, no token. Without that value, the request is refused.
    shutdown = f"{server.url}/voila/api/shutdown/{kernel}"
    assert request(shutdown, "POST", {}, opener=browser)[0] == 403
    xsrf = next((c.value for c in cookies if c.name == "_xsrf"), None)
    assert xsrf, f"the page set no _xsrf cookie: {[c.name for c in cookies]}"
    assert request(shutdown, "POST", {"_xsrf": xsrf}, opener=browser)[0] == 204
    wait_for(lambda: server.kernel_ids() == [], 60, "the kernel's connection file removed")

    # The slot is free again.
    status, _, body = request(f"{server.url}/?token={token}")
    assert status == 200 and "application/vnd.jupyter.widget-view+json" in body
    assert len(server.kernel_ids()) == 1 and server.kernel_ids() != [kernel]

