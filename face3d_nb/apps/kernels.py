"""The kernel manager ``face3d-nb app`` gives Voila: a cap on kernels, and no channels kept for dead ones.

Every page of the app is a kernel of its own (about 200 MB, two ONNX Runtime sessions and an engine
thread), and Voila starts one per page load without limit. :class:`CappedKernelManager` refuses a new
kernel while ``max_kernels`` are running or starting: the request ends with HTTP 503 and Voila's
error page reads "The app is busy: N people are using it; try again later", before any kernel
process exists. A page that closes shuts its kernel down (Voila's page does so on unload), which
frees its slot; a page that vanished without saying goodbye is culled once idle (``serve``).

When a page closes, its shutdown request and the end of its websocket race. If the websocket ends
while the kernel is shutting down, jupyter_server starts buffering the kernel's messages for a
reconnection after it has already cleared that kernel's buffers: the page's four ZeroMQ channels
then stay open for good (about 0.5 MB of server memory and four descriptors a page, seen in
``benchmarks/bench_churn.py``). Here a kernel on its way out gets no buffer; its channels close.

``face3d-nb app`` selects it with ``--VoilaConfiguration.multi_kernel_manager_class`` and sets
``--CappedKernelManager.max_kernels``.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado import web
from traitlets import Integer

from .serve import MAX_KERNELS

__all__ = ["AppBusyError", "CappedKernelManager", "busy_message"]


def busy_message(in_use: int) -> str:
    """What the visitor who found every slot taken reads (one line, also the HTTP reason phrase)."""
    who = "1 person is" if in_use == 1 else f"{in_use} people are"
    return f"The app is busy: {who} using it; try again later"


class AppBusyError(web.HTTPError):
    """Every kernel slot is taken: HTTP 503 with :func:`busy_message` as the reason."""

    def __init__(self, in_use: int, limit: int):
        super().__init__(503, "%d of %d kernels in use", in_use, limit, reason=busy_message(in_use))


class CappedKernelManager(AsyncMappingKernelManager):
    """Voila's kernel manager with at most ``max_kernels`` kernels running or starting at once, and
    no message buffering for kernels that are shutting down."""

    max_kernels = Integer(MAX_KERNELS, min=1, config=True, help="Kernels (app pages) served at once; the next one gets HTTP 503.")

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        # Kernels between the check and their entry in the running list: counted too, so that two
        # page loads arriving together cannot both take the last slot.
        self._starting: set[str] = set()
        self._ending: set[str] = set()

    def in_use(self) -> int:
        """Kernels running or starting."""
        return len(set(self.list_kernel_ids()) | self._starting)

    async def start_kernel(self, *, kernel_id: str | None = None, path: str | None = None, **kwargs: Any) -> str:
        if kernel_id is not None and kernel_id in self:
            return await super().start_kernel(kernel_id=kernel_id, path=path, **kwargs)
        in_use = self.in_use()
        if in_use >= self.max_kernels:
            raise AppBusyError(in_use, self.max_kernels)
        # The check above and this reservation run without an await between them.
        kernel_id = kernel_id or self.new_kernel_id()
        self._starting.add(kernel_id)
        try:
            return await super().start_kernel(kernel_id=kernel_id, path=path, **kwargs)
        finally:
            self._starting.discard(kernel_id)

    async def _async_shutdown_kernel(self, kernel_id: str, now: bool = False, restart: bool = False) -> None:
        if restart:
            return await super()._async_shutdown_kernel(kernel_id, now=now, restart=restart)
        self._ending.add(kernel_id)
        try:
            return await super()._async_shutdown_kernel(kernel_id, now=now, restart=restart)
        finally:
            self._ending.discard(kernel_id)

    shutdown_kernel = _async_shutdown_kernel

    def start_buffering(self, kernel_id: str, session_key: str, channels: dict) -> None:
        if kernel_id not in self._ending:
            super().start_buffering(kernel_id, session_key, channels)
            return
        for stream in channels.values():
            if not stream.closed():
                stream.on_recv(None)
                stream.close()
