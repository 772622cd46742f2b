"""Serving the app notebook with Voila, with the settings the live app needs.

- ``JUPYTER_WIDGETS_ECHO=0`` in the kernels' environment: otherwise ipywidgets 8 echoes every
  value synced from the page straight back to it.
- Idle kernels are culled (a page that vanished without saying goodbye), connected ones never.
- At most ``max_kernels`` pages at once (:mod:`~face3d_nb.apps.kernels`): one more gets HTTP 503
  and a page saying the app is busy.
- Beyond localhost (``--host`` not a loopback address or ``localhost``) every page needs a token:
  the one given (``--token`` or ``FACE3D_TOKEN``) or one generated per run. Voila's own token
  handling (jupyter_server's identity provider) checks it; a page without it is sent to the login
  page. The URL with ``?token=`` is logged at start, as Jupyter does.
- The server remembers the signature of every message a kernel sends the page, to refuse replays;
  :data:`DIGEST_HISTORY` keeps the last 1,024 instead of jupyter_client's 65,536, which are ~10 MB
  of server memory per page, filled at the rate the page streams (0.7 MB/min with one face: the
  server's growth in ``benchmarks/bench_soak.py``).
- A page's kernel ends when the page closes: Voila's page then posts a shutdown request with its
  ``_xsrf`` cookie, which jupyter_server checks on every POST, but Voila's page handler never has
  tornado issue that cookie; :func:`xsrf_cookie_hook` (Voila's prelaunch hook) does. Without it the
  request is refused (403) and a closed page's kernel runs on, holding its slot, until culled.
- The app's settings file (``face3d-nb app --config FILE``) reaches the kernels as the absolute
  path in ``FACE3D_APP_CONFIG`` (:data:`~face3d_nb.apps.app_settings.ENV_CONFIG`); without one the
  variable is removed, so a value left in the shell does not leak in.
- Everything the page needs comes from this server (widget front ends are served as prebuilt
  JupyterLab extensions; no CDN), on localhost unless told otherwise. Voila's page template also
  links Font Awesome's CSS from a CDN; the app uses no icon from it and works when it fails.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

from ..models.download import is_loopback

__all__ = ["Serving", "add_serve_options", "app_notebook", "is_loopback", "serve_app", "serving", "voila_argv",
           "xsrf_cookie_hook"]

log = logging.getLogger(__name__)

CULL_IDLE_TIMEOUT = 600
CULL_INTERVAL = 60
MAX_KERNELS = 4
DIGEST_HISTORY = 1024
ENV_TOKEN = "FACE3D_TOKEN"
KERNEL_MANAGER = "face3d_nb.apps.kernels.CappedKernelManager"


class NotebookMissingError(FileNotFoundError):
    """The app notebook is not part of this installation."""


@dataclass(frozen=True)
class Serving:
    """Where and how the app is served: ``token`` "" means none (loopback only)."""

    host: str
    port: int
    token: str = ""
    max_kernels: int = MAX_KERNELS

    def urls(self) -> list[str]:
        """The addresses to open, with ``?token=`` when one is needed (for a wildcard host, this
        machine's name and the loopback address, like Jupyter)."""
        hosts = [socket.gethostname(), "127.0.0.1"] if self.host in ("", "0.0.0.0", "::") else [self.host]
        query = f"?token={self.token}" if self.token else ""
        # An IPv6 address goes in brackets in a URL.
        hosts = [f"[{host}]" if ":" in host and not host.startswith("[") else host for host in hosts]
        return [f"http://{host}:{self.port}/{query}" for host in hosts]


def serving(host: str = "localhost", port: int = 8866, token: str | None = None,
            max_kernels: int = MAX_KERNELS) -> Serving:
    """Check the serving options (``ValueError`` naming the option) and settle the token: ``token``,
    else ``FACE3D_TOKEN``, else a new one beyond localhost, else none."""
    if not 0 < port < 65536:
        raise ValueError(f"--port must be between 1 and 65535, got {port}")
    if max_kernels < 1:
        raise ValueError(f"--max-kernels must be at least 1, got {max_kernels}")
    if token is None:
        token = os.environ.get(ENV_TOKEN)
    if token is None:
        token = "" if is_loopback(host) else secrets.token_urlsafe(32)
    if not token and not is_loopback(host):
        raise ValueError(f"--host {host} listens beyond localhost: a token is required "
                         f"(leave out --token and {ENV_TOKEN} to have one generated)")
    return Serving(host, port, token, max_kernels)


def add_serve_options(parser: argparse.ArgumentParser, what: str) -> None:
    """The options of the commands that serve a page (``app``, ``replay``)."""
    parser.add_argument("--port", type=int, default=8866, help="port to listen on (default: 8866)")
    parser.add_argument("--host", default="localhost", help="interface to listen on (default: localhost); any "
                        "other than localhost needs a token, generated unless given")
    parser.add_argument("--token", help=f"the token pages need (default: ${ENV_TOKEN}, else generated beyond "
                        "localhost, else none)")
    parser.add_argument("--max-kernels", type=int, default=MAX_KERNELS, metavar="N",
                        help=f"pages served at once; one more is told the app is busy (default: {MAX_KERNELS})")
    parser.add_argument("--open", action="store_true", help=f"open the {what} in a web browser")


def app_notebook(name: str = "face3d_app.ipynb") -> Path:
    """A notebook of ours (default: the app's), shipped in the package (wheel installs) or in the source tree."""
    here = Path(__file__).resolve().parent
    for candidate in (here / name, here.parents[1] / "notebooks" / name):
        if candidate.is_file():
            return candidate
    raise NotebookMissingError(f"{name} is missing from the installation (expected in the package or "
                               "in notebooks/ of the source tree)")


def voila_argv(notebook: Path, port: int, host: str = "localhost", open_browser: bool = False, token: str = "",
               max_kernels: int = MAX_KERNELS) -> list[str]:
    """Command-line arguments for Voila serving ``notebook`` on ``host:port`` exactly; ``token`` ""
    serves without one."""
    argv = [
        str(notebook),
        f"--port={port}",
        "--Voila.port_retries=0",
        f"--Voila.ip={host}",
        f"--MappingKernelManager.cull_idle_timeout={CULL_IDLE_TIMEOUT}",
        f"--MappingKernelManager.cull_interval={CULL_INTERVAL}",
        "--MappingKernelManager.cull_connected=False",
        f"--VoilaConfiguration.multi_kernel_manager_class={KERNEL_MANAGER}",
        f"--CappedKernelManager.max_kernels={max_kernels}",
        f"--Session.digest_history_size={DIGEST_HISTORY}",
    ]
    if token:
        argv.append(f"--Voila.token={token}")
    if not open_browser:
        argv.append("--no-browser")
    return argv


def xsrf_cookie_hook(handler, notebook, cwd: str):
    """Voila's prelaunch hook (``handler``: the page's tornado request handler): have tornado set the
    page's ``_xsrf`` cookie (reading the token does), before the page's first byte is sent."""
    _ = handler.xsrf_token
    return notebook


def serve_app(where: Serving, open_browser: bool = False, notebook: Path | None = None,
              config: Path | None = None) -> None:
    """Run Voila on ``notebook`` (default: the app notebook) until interrupted (Ctrl-C); ``config``:
    the settings file the app notebook's kernels read, checked first (``ValueError`` naming the file
    and the key, before anything is served)."""
    from .app_settings import ENV_CONFIG, app_settings  # noqa: PLC0415 - keeps the CLI's parser light

    if config is not None:
        app_settings(config)
    from traitlets.config import Config  # noqa: PLC0415
    from voila.app import Voila  # noqa: PLC0415 - the server stack is only needed here

    notebook = notebook or app_notebook()
    # Kernels are started by this process and inherit its environment.
    os.environ["JUPYTER_WIDGETS_ECHO"] = "0"
    if config is None:
        os.environ.pop(ENV_CONFIG, None)
    else:
        os.environ[ENV_CONFIG] = str(Path(config).resolve())
    os.environ.pop(ENV_TOKEN, None)  # the kernels have no use for it
    if where.token:
        # Logged whatever the level, as Jupyter does: without it nobody can open the page.
        log.warning("to open the app, copy one of these URLs into a browser:\n%s",
                    "\n".join(f"    {url}" for url in where.urls()))
    # A callable cannot be given on a command line: the hook comes as configuration.
    Voila.launch_instance(argv=voila_argv(notebook, where.port, where.host, open_browser, where.token,
                                          where.max_kernels),
                          config=Config({"VoilaConfiguration": {"prelaunch_hook": xsrf_cookie_hook}}))
