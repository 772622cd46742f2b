"""Real servers, a real browser and a fake camera for the browser tests and the app benchmarks.

- :func:`write_y4m` turns a video file into the raw YUV4MPEG2 file Chromium's fake camera plays.
- :class:`Server` runs Voila (``face3d-nb app``) or JupyterLab as a subprocess on a free
  localhost port, with the model cache and a private runtime dir, and stops it (whole process
  group) on exit.
- :class:`NotebookServer` runs Voila on a notebook of the caller's (:func:`write_notebook` makes one).
- :class:`KernelProbe` connects a second client to the kernel a page started (by its connection
  file; :func:`probe_for` finds it) and evaluates expressions there: the kernel's view of the
  widgets, for assertions.
- :func:`launch_chromium` starts Debian's Chromium through Playwright with software WebGL.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from .assets import ROOT
from .polling import wait_until

CHROMIUM = Path(os.environ.get("FACE3D_CHROMIUM", "/usr/bin/chromium"))


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not CHROMIUM.is_file():
        return f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set FACE3D_CHROMIUM)"
    try:
        import playwright.sync_api  # noqa: F401, PLC0415
    except ImportError:
        return "the playwright Python package is not installed"
    for module in ("voila", "jupyterlab", "pythreejs", "ipywebrtc", "anywidget"):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed"
    return None


def write_y4m(video: Path, out: Path, width: int = 640, height: int = 360, frames: int | None = None,
              transform: Callable[[np.ndarray, int], np.ndarray] | None = None) -> Path:
    """Write every frame of ``video``, resized to ``width`` x ``height``, as 4:2:0 YUV4MPEG2.

    ``frames`` caps how many are written (None: all); ``transform(frame, i)``, when given, turns
    the resized BGR frame (height, width, 3) number ``i`` (0-based) into the one written.
    """
    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise RuntimeError(f"cannot read {video}")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25
    count = 0
    with open(out, "wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F{round(fps)}:1 Ip A1:1 C420jpeg\n".encode("ascii"))
        while frames is None or count < frames:
            ok, frame = capture.read()
            if not ok:
                break
            frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
            if transform is not None:
                frame = transform(frame, count)
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
            count += 1
    capture.release()
    if count == 0:
        raise RuntimeError(f"no frame decoded from {video}")
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A Jupyter-stack server subprocess (``kind`` "voila" or "lab") on a free localhost port;
    ``config``: the app's settings file (``face3d-nb app --config``, "voila" only)."""

    def __init__(self, kind: str, workdir: Path, face3d_home: Path, startup_timeout: float = 120.0,
                 config: Path | None = None):
        self.kind = kind
        self.config = config
        self.port = free_port()
        self.token = "face3d-test-token"
        self.workdir = workdir
        self.runtime_dir = workdir / "runtime"
        self.log_path = workdir / f"{kind}.log"
        self.startup_timeout = startup_timeout
        self.env = {
            **os.environ,
            "FACE3D_HOME": str(face3d_home),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "JUPYTER_RUNTIME_DIR": str(self.runtime_dir),
            "JUPYTER_CONFIG_DIR": str(workdir / "config"),
            "JUPYTER_DATA_DIR": str(workdir / "data"),
            "IPYTHONDIR": str(workdir / "ipython"),
            "JUPYTER_PLATFORM_DIRS": "1",
            # Voila writes kernel connection files to a temporary folder of its own: keep it here.
            "TMPDIR": str(workdir / "tmp"),
        }
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        if self.kind == "voila":
            config = ["--config", str(self.config)] if self.config else []
            return [sys.executable, "-m", "face3d_nb.cli", "app", "--port", str(self.port), "--host", "127.0.0.1",
                    *config]
        notebooks = ROOT / "notebooks"
        settings = self.workdir / "lab-settings"
        return [
            sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={self.port}", "--ServerApp.port_retries=0",
            "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={notebooks}",
            "--allow-root", "--LabApp.expose_app_in_browser=True", f"--LabApp.user_settings_dir={settings}",
        ]

    def __enter__(self) -> Server:
        self.runtime_dir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "tmp").mkdir(exist_ok=True)
        env = dict(self.env)
        if self.kind == "lab":
            # JupyterLab as people run it: widget echo stays on (`face3d-nb app` turns it off for Voila).
            # No news feed (nothing leaves this machine) and no toast asking about it.
            settings = self.workdir / "lab-settings" / "@jupyterlab" / "apputils-extension"
            settings.mkdir(parents=True, exist_ok=True)
            (settings / "notification.jupyterlab-settings").write_text(
                json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(self.command(), cwd=self.workdir, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until(self._ready, self.startup_timeout, 0.5, f"{self.kind} to answer on {self.url}")
        except BaseException:
            self.__exit__()
            raise
        return self

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.kind} exited with {self.process.returncode}:\n{self.log()}")
        # Any HTTP answer means the server is up (Voila has no status endpoint; loading "/" would
        # start a kernel).
        try:
            with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=5):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    def api(self, path: str):
        with urllib.request.urlopen(f"{self.url}{path}?token={self.token}", timeout=10) as response:
            return json.loads(response.read())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path.exists() else ""

    def connection_files(self) -> list[Path]:
        """Connection files of the kernels this server started, oldest first."""
        found = [*self.runtime_dir.rglob("kernel-*.json"), *(self.workdir / "tmp").rglob("kernel-*.json")]
        return sorted(found, key=lambda p: p.stat().st_mtime)

    def __exit__(self, *exc_info) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        if hasattr(self, "_log"):
            self._log.close()


class NotebookServer(Server):
    """Voila, with the app's server settings, serving ``notebook`` instead of the app (tests and
    benchmarks that need a page of their own); connection files go to ``runtime_dir`` as above."""

    def __init__(self, notebook: Path, workdir: Path, face3d_home: Path, startup_timeout: float = 120.0):
        super().__init__("voila", workdir, face3d_home, startup_timeout)
        self.notebook = notebook
        self.env["JUPYTER_WIDGETS_ECHO"] = "0"

    def command(self) -> list[str]:
        from face3d_nb.apps.serve import voila_argv  # noqa: PLC0415

        return [sys.executable, "-m", "voila", *voila_argv(self.notebook, self.port, "127.0.0.1"),
                f"--Voila.connection_dir_root={self.runtime_dir}"]


def write_notebook(path: Path, code: str) -> Path:
    """A one-cell notebook running ``code``."""
    cell = {"cell_type": "code", "execution_count": None, "id": "main", "metadata": {}, "outputs": [], "source": code}
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.write_text(json.dumps({"cells": [cell], "metadata": {"kernelspec": kernelspec}, "nbformat": 4,
                                "nbformat_minor": 5}))
    return path


class KernelProbe:
    """A second client on a running kernel: ``probe.eval("expr")`` returns ``repr``-able results as
    Python values (the expression's ``repr`` is evaluated here with ``ast.literal_eval``)."""

    def __init__(self, connection_file: Path):
        from jupyter_client import BlockingKernelClient  # noqa: PLC0415

        self.client = BlockingKernelClient(connection_file=str(connection_file))
        self.client.load_connection_file()
        self.client.start_channels()
        # Not ``wait_for_ready``: once the kernel answers, it reads iopub until 0.2 s pass without a
        # message, which never happens while the app streams mesh updates (it hung there).
        self._execute("", timeout=60)

    def _execute(self, code: str, timeout: float, **options) -> dict:
        # The reply comes on the shell channel. Waiting on iopub instead (execute_interactive) fails
        # after a minute or so of not reading it: the app's widget traffic overflows the unread
        # subscription and the kernel's "idle" for this request is dropped with the rest.
        msg_id = self.client.execute(code, silent=True, store_history=False, **options)
        deadline = time.monotonic() + timeout
        while True:
            try:
                reply = self.client.get_shell_msg(timeout=max(deadline - time.monotonic(), 0.001))
            except queue.Empty:
                raise TimeoutError(f"the kernel did not answer {code or options!r} in {timeout:.0f} s") from None
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply["content"]

    def run(self, code: str, timeout: float = 60.0) -> None:
        content = self._execute(code, timeout)
        if content["status"] != "ok":
            raise RuntimeError(f"kernel error running {code!r}: {content.get('evalue')}")

    def eval(self, expression: str, timeout: float = 60.0):
        import ast  # noqa: PLC0415

        value = self._execute("", timeout, user_expressions={"value": expression})["user_expressions"]["value"]
        if value["status"] != "ok":
            raise RuntimeError(f"kernel error evaluating {expression!r}: {value.get('evalue')}")
        return ast.literal_eval(value["data"]["text/plain"])

    def close(self) -> None:
        self.client.stop_channels()


def probe_for(server: Server, known: set | frozenset = frozenset(), timeout: float = 120.0) -> KernelProbe:
    """A client on the newest kernel ``server`` started that is not in ``known`` (its connection files
    taken before the page was opened)."""
    path = wait_until(lambda: [p for p in server.connection_files() if p not in known], timeout,
                      message=f"a kernel connection file from {server.kind}")[-1]
    return KernelProbe(path)


BROWSER_ARGS = [
    "--no-sandbox",
    "--use-gl=angle",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--ignore-gpu-blocklist",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-device-for-media-stream",
]


def launch_chromium(playwright, y4m: Path | None = None, allow_camera: bool = True, cameras: int = 1):
    """Headless Debian Chromium whose camera plays ``y4m`` (None: Chromium's generated test
    pattern); ``allow_camera`` False denies it.

    ``cameras`` > 1 offers that many cameras instead, each showing the test pattern: a camera
    playing a file is always the only one.
    """
    if cameras > 1:
        fake = "--use-fake-device-for-media-stream"
        args = [*(a for a in BROWSER_ARGS if a != fake), f"{fake}=device-count={cameras}"]
    else:
        args = [*BROWSER_ARGS, *([f"--use-file-for-fake-video-capture={y4m}"] if y4m is not None else [])]
    if allow_camera:
        args.append("--use-fake-ui-for-media-stream")
    else:
        args.append("--deny-permission-prompts")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)



#: Kernel code true once the notebook's app is running (``app = FaceApp()`` has started its engine).
APP_RUNNING = "'app' in globals() and app.engine is not None"


@contextmanager
def app_page(browser, server: Server, viewport: dict, timeout_ms: float = 240_000) -> Iterator[tuple[object, KernelProbe]]:
    """A page of the app ``server`` serves and a probe on its kernel, once the app runs there;
    both closed on leaving."""
    page = browser.new_page(viewport=viewport)
    try:
        page.goto(f"{server.url}/", timeout=timeout_ms)
        probe = probe_for(server)
        try:
            wait_until(lambda: probe.eval(APP_RUNNING), 180, 0.5, "the app in the kernel")
            yield page, probe
        finally:
            probe.close()
    finally:
        page.close()
