"""Wait for a kernel's execute reply in short polling slices (nbclient stall fix).

The problem (jupyter/nbclient#312): ``NotebookClient._async_poll_for_reply``
awaits the kernel's ``execute_reply`` with a single ``shell_channel.get_msg``
call whose timeout is the whole cell timeout. In a notebook that imports
torch and then runs an ipywidgets ``interact`` cell, the reply often arrives
while that single zmq poll does not wake up, so the cell "runs" for the full
timeout (e.g. 310 s instead of 6 s) although the kernel finished long ago.
This hits ``pytest --nbmake`` and the book's execution (myst-nb / jupyter-cache
call nbclient) alike.

The fix: the same waiting logic, but each ``get_msg`` call waits at most
:data:`POLL_SLICE_SECONDS`; an empty slice simply polls again until the cell's
own deadline. A fresh poll notices a reply that is already on the socket, so
the cell completes as soon as the kernel answers. Timeouts, interrupts and
dead-kernel detection behave as in nbclient (the code below follows nbclient
0.11's ``_async_poll_for_reply`` step by step).

Two ways in, one module:

* Sphinx / Jupyter Book: listed under ``sphinx: local_extensions`` in
  ``book/_config.yml``; :func:`setup` applies the patch when the build starts,
  before any notebook is executed.
* pytest / nbmake: ``tests/conftest.py`` loads this file and calls
  :func:`apply`.

If nbclient's private method ever changes shape, :func:`apply` leaves nbclient
alone and says so (a warning, which fails a ``-W`` book build on purpose): the
stall would come back silently otherwise.
"""
from __future__ import annotations

import asyncio
import inspect
import warnings
from queue import Empty
from time import monotonic
from typing import Any

POLL_SLICE_SECONDS = 0.25
"""Longest single wait for the kernel's reply before polling again."""

_PATCHED_MARKER = "_fgvc_sliced_poll"
# The parameters of nbclient's method that this replacement mirrors
# (nbclient 0.5 .. 0.11); anything else means nbclient changed under us.
_EXPECTED_PARAMETERS = (
    "self", "msg_id", "cell", "timeout", "task_poll_output_msg", "task_poll_kernel_alive",
)


async def _sliced_poll_for_reply(
    self: Any,
    msg_id: str,
    cell: Any,
    timeout: int | None,
    task_poll_output_msg: asyncio.Future[Any],
    task_poll_kernel_alive: asyncio.Future[Any],
) -> dict[str, Any]:
    """Drop-in replacement for ``NotebookClient._async_poll_for_reply``."""
    from nbclient.exceptions import CellTimeoutError
    from nbclient.util import ensure_async
    from nbclient.client import timestamp

    assert self.kc is not None
    deadline = None if timeout is None else monotonic() + timeout
    reply_after_timeout: dict[str, Any] | None = None
    while True:
        if reply_after_timeout is not None:
            # nbclient's error_on_timeout: report the timeout as this cell's reply
            msg = reply_after_timeout
            msg["parent_header"] = {"msg_id": msg_id}
        else:
            wait = POLL_SLICE_SECONDS
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - monotonic()))
            try:
                msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=wait))
            except Empty:
                if deadline is None or monotonic() < deadline:
                    continue  # a quiet slice, not a timeout: poll again
                # The cell's whole timeout has passed: nbclient's handling.
                task_poll_kernel_alive.cancel()
                await self._async_check_alive()
                reply_after_timeout = await self._async_handle_timeout(timeout, cell)
                if reply_after_timeout is None:
                    # kernel interrupted without an error reply: wait a full
                    # timeout again, as nbclient does (no tight retry loop)
                    deadline = monotonic() + (timeout or 0)
                continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue  # a late reply to an earlier request
        if self.record_timing:
            cell["metadata"]["execution"]["shell.execute_reply"] = timestamp(msg)
        try:
            await asyncio.wait_for(task_poll_output_msg, self.iopub_timeout)
        except (asyncio.TimeoutError, Empty):
            if self.raise_on_iopub_timeout:
                task_poll_kernel_alive.cancel()
                raise CellTimeoutError.error_from_timeout_and_cell(
                    "Timeout waiting for IOPub output", self.iopub_timeout, cell
                ) from None
            self.log.warning("Timeout waiting for IOPub output")
        task_poll_kernel_alive.cancel()
        return msg


setattr(_sliced_poll_for_reply, _PATCHED_MARKER, True)


def is_applied() -> bool:
    """Whether nbclient currently uses the sliced poll."""
    from nbclient.client import NotebookClient

    return getattr(NotebookClient._async_poll_for_reply, _PATCHED_MARKER, False)


def apply() -> bool:
    """Install the sliced poll into ``nbclient.NotebookClient`` (idempotent).

    Returns True when the patch is active, False (with a warning) when the
    installed nbclient does not have the method this patch replaces.
    """
    from nbclient.client import NotebookClient

    if is_applied():
        return True
    original = getattr(NotebookClient, "_async_poll_for_reply", None)
    parameters = tuple(inspect.signature(original).parameters) if original else ()
    if parameters != _EXPECTED_PARAMETERS:
        warnings.warn(
            "book/_ext/nbclient_poll.py: this nbclient version has no "
            "_async_poll_for_reply(self, msg_id, cell, timeout, task_poll_output_msg, "
            f"task_poll_kernel_alive) (found {parameters or 'none'}); the stall fix for "
            "jupyter/nbclient#312 is NOT applied. Fix: check whether this nbclient fixed "
            "the stall itself (then delete the patch) or update the patch to the new code.",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    NotebookClient._async_poll_for_reply = _sliced_poll_for_reply
    return True


def setup(app: Any) -> dict[str, Any]:
    """Sphinx entry point: apply the patch before notebooks are executed."""
    from sphinx.util import logging as sphinx_logging

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        applied = apply()
    if not applied:
        for warning in caught:
            sphinx_logging.getLogger(__name__).warning(str(warning.message))
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
