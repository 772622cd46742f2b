"""The page's model download: why models are needed, consent for the Basel Face Model, a progress bar.

The Basel Face Model is for academic use only, so it is fetched only when the user ticks its box:
both when nothing is installed yet and when an app runs without it (the mean face), as on Binder,
whose image carries only the MIT-licensed files.
"""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import Callable

import ipywidgets as widgets

from ..models.download import DownloadCancelled
from ..models.store import AssetError, ModelStore

__all__ = ["ModelDownload"]

log = logging.getLogger(__name__)

_BFM_TEXT = ("Include the Basel Face Model (academic use only; without it the mesh is the mean face, posed but "
             "without expressions)")


class ModelDownload(widgets.VBox):
    """A notice, the Basel Face Model checkbox, a download button with its progress bar, a status line.

    ``store``: where the files go; ``keys(bfm)``: the files to fetch, with or without the BFM;
    ``reason``: the notice shown first; ``spawn(target, name)``: runs the download on a thread
    (the app's, so that closing the app waits for it); ``on_installed``: called on that thread once
    the files are in place (an :class:`AssetError` it raises is shown and the button offered again),
    after which the panel closes. Whatever goes wrong on that thread is logged and shown, and the
    button offered again. :meth:`close` stops a download in progress at its next chunk (its
    ``.part`` kept to resume, nothing half-installed).

    ``bfm_only`` (default False): the offer made to an app already running on the mean face: the
    box starts unticked, the button downloads only once it is ticked, and when the file is in place
    the panel stays and says to reload the page. Otherwise the box starts ticked and the user may
    untick it before downloading.

    Children: ``notice``, ``bfm`` (the checkbox), a row of ``button`` and ``progress``, ``status``.
    """

    def __init__(self, store: ModelStore, keys: Callable[[bool], list[str]], reason: str,
                 spawn: Callable[[Callable[[], None], str], None],
                 on_installed: Callable[[], None], bfm_only: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.add_class("face3d-model-download")
        self.notice = widgets.HTML(f"<div class='face3d-notice face3d-missing-models'>{html.escape(reason)}</div>")
        self.bfm = widgets.Checkbox(value=not bfm_only, indent=False, description=_BFM_TEXT,
                                    layout=widgets.Layout(width="auto"))
        self.button = widgets.Button(description="Download the Basel Face Model" if bfm_only else "Download models",
                                     button_style="primary", disabled=bfm_only)
        self.button.add_class("face3d-fetch")
        self.progress = widgets.FloatProgress(min=0.0, max=1.0, layout=widgets.Layout(visibility="hidden"))
        self.progress.add_class("face3d-fetch-progress")
        self.status = widgets.HTML()
        self.status.add_class("face3d-fetch-status")
        self._store, self._keys, self._spawn, self._on_installed = store, keys, spawn, on_installed
        self._bfm_only = bfm_only
        self._cancel = threading.Event()
        if bfm_only:
            self.bfm.observe(lambda change: setattr(self.button, "disabled", not change["new"]), "value")
        self.button.on_click(self._on_click)
        self.children = [self.notice, self.bfm, widgets.HBox([self.button, self.progress]), self.status]

    def _report(self, key: str, done: int, total: int | None) -> None:
        self.progress.value = done / total if total else 0.0
        size = f"{done / 1e6:.1f} / {total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
        self.status.value = f"downloading {html.escape(key)}: {size}"

    def _fetch(self) -> None:
        try:
            self._store.fetch(self._keys(self.bfm.value), progress=self._report, cancel=self._cancel)
            if self._cancel.is_set():
                raise DownloadCancelled("closed while the last file was being installed")
            self.status.value = "loading the models…"
            self._on_installed()
        except DownloadCancelled:
            log.info("model download stopped: the panel was closed")
            return
        except Exception as exc:  # noqa: BLE001 - the thread must end with the error shown, whatever it is
            if isinstance(exc, AssetError):
                log.warning("model download failed: %s", exc)
                message = str(exc)
            else:
                log.exception("model download failed")
                message = f"the download failed ({type(exc).__name__}: {exc}); see the log"
            self.status.value = f"<span class='face3d-fetch-error'>{html.escape(message)}</span>"
            self.button.disabled = self.bfm.disabled = False
            return
        if self._bfm_only:
            self.status.value = "The Basel Face Model is installed: reload the page to use it."
        else:
            self.close()

    def _on_click(self, _button) -> None:
        self.button.disabled = True
        self.bfm.disabled = True
        self.progress.layout.visibility = "visible"
        self.status.value = "starting the download…"
        self._spawn(self._fetch, "face3d-fetch")

    def close(self) -> None:
        self._cancel.set()
        for widget in (self.button, self.progress, *self.children):
            widget.close()
        super().close()
