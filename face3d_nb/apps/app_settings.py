"""The live app's settings: an :class:`EngineConfig`, or a settings file checked against what the app offers.

``face3d-nb app --config FILE`` checks the file with :func:`app_settings` before serving, then
passes its path to the app notebook's kernel in the ``FACE3D_APP_CONFIG`` environment variable;
the notebook hands :func:`config_from_env` to :class:`~face3d_nb.apps.live_app.FaceApp`.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from ..live.config import EngineConfig
from ..live.settings_file import Settings, load_settings
from ..view.transport_choice import TRANSPORTS
from ..widgets.camera import INPUT_SIZES

__all__ = ["ENV_CONFIG", "app_settings", "config_from_env", "verbose_logging"]

ENV_CONFIG = "FACE3D_APP_CONFIG"


def app_settings(config: EngineConfig | str | Path | None) -> Settings:
    """``config`` as the app's settings: an :class:`EngineConfig` (or None, the defaults) as it is; a
    path is read with :func:`~face3d_nb.live.settings_file.load_settings`, and its ``input_size`` and
    ``transport`` must be among the app's choices. Raises ``ValueError`` naming the file and key."""
    if config is None or isinstance(config, EngineConfig):
        return Settings(engine=config or EngineConfig())
    settings = load_settings(config)
    if settings.input_size is not None and settings.input_size not in INPUT_SIZES:
        raise ValueError(f"{config}: input_size: {settings.input_size} is not one the app offers "
                         f"({', '.join(map(str, INPUT_SIZES))})")
    if settings.transport is not None and settings.transport not in TRANSPORTS:
        raise ValueError(f"{config}: transport: {settings.transport!r} is not one of {', '.join(TRANSPORTS)}")
    return settings


def config_from_env() -> str | None:
    """The settings file ``face3d-nb app --config`` passed to this kernel, or None."""
    return os.environ.get(ENV_CONFIG) or None


def verbose_logging() -> None:
    """DEBUG records of the ``face3d_nb`` loggers, to the process's own stderr (a kernel's lands in
    the terminal that started the server) unless a handler is already there (the CLI's)."""
    logger = logging.getLogger("face3d_nb")
    logger.setLevel(logging.DEBUG)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.__stderr__)
        handler.setFormatter(logging.Formatter("face3d-nb: %(name)s: %(message)s"))
        logger.addHandler(handler)
