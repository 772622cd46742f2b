"""Serving the app notebook with Voila, with the settings the live app needs.

- ``JUPYTER_WIDGETS_ECHO=0`` in the kernels' environment: otherwise ipywidgets 8 echoes every
  value synced from the page straight back to it.
- Idle kernels are culled (a page that vanished without saying goodbye), connected ones never.
- The app's settings file (``face3d-nb app --config FILE``) reaches the kernels as the absolute
  path in ``FACE3D_APP_CONFIG`` (:data:`~face3d_nb.apps.app_settings.ENV_CONFIG`); without one the
  variable is removed, so a value left in the shell does not leak in.
- Everything the page loads comes from this server (widget front ends are served as prebuilt
  JupyterLab extensions; no CDN), on localhost unless told otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

from .app_settings import ENV_CONFIG, app_settings

__all__ = ["app_notebook", "serve_app", "voila_argv"]

CULL_IDLE_TIMEOUT = 600
CULL_INTERVAL = 60


class NotebookMissingError(FileNotFoundError):
    """The app notebook is not part of this installation."""


def app_notebook(name: str = "face3d_app.ipynb") -> Path:
    """A notebook of ours (default: the app's), shipped in the package (wheel installs) or in the source tree."""
    here = Path(__file__).resolve().parent
    for candidate in (here / name, here.parents[1] / "notebooks" / name):
        if candidate.is_file():
            return candidate
    raise NotebookMissingError(f"{name} is missing from the installation (expected in the package or "
                               "in notebooks/ of the source tree)")


def voila_argv(notebook: Path, port: int, host: str = "localhost", open_browser: bool = False) -> list[str]:
    """Command-line arguments for Voila serving ``notebook`` on ``host:port`` exactly."""
    argv = [
        str(notebook),
        f"--port={port}",
        "--Voila.port_retries=0",
        f"--Voila.ip={host}",
        f"--MappingKernelManager.cull_idle_timeout={CULL_IDLE_TIMEOUT}",
        f"--MappingKernelManager.cull_interval={CULL_INTERVAL}",
        "--MappingKernelManager.cull_connected=False",
        "--VoilaConfiguration.enable_nbextensions=False",
    ]
    if not open_browser:
        argv.append("--no-browser")
    return argv


def serve_app(port: int = 8866, host: str = "localhost", open_browser: bool = False,
              notebook: Path | None = None, config: Path | None = None) -> None:
    """Run Voila on ``notebook`` (default: the app notebook) until interrupted (Ctrl-C); ``config``:
    the settings file the app notebook's kernels read, checked first (``ValueError`` naming the file
    and the key, before anything is served)."""
    if config is not None:
        app_settings(config)
    from voila.app import Voila  # noqa: PLC0415 - the server stack is only needed here

    notebook = notebook or app_notebook()
    # Kernels are started by this process and inherit its environment.
    os.environ["JUPYTER_WIDGETS_ECHO"] = "0"
    if config is None:
        os.environ.pop(ENV_CONFIG, None)
    else:
        os.environ[ENV_CONFIG] = str(Path(config).resolve())
    Voila.launch_instance(argv=voila_argv(notebook, port, host, open_browser))
