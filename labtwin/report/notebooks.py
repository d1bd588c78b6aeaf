"""Execute a notebook top to bottom, headless, as CI and the slide export do.

The kernel is ``python3``: jupyter_client launches the native kernel with the
interpreter running this code (the project's venv), so notebooks see the same
labtwin that the caller imported.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from queue import Empty
from time import monotonic
from typing import Optional, Union

import nbformat
from nbclient import NotebookClient
from nbclient.client import timestamp
from nbclient.exceptions import CellTimeoutError
from nbclient.util import ensure_async

#: Longest single wait for a cell's execute reply; see :class:`SlicedWaitClient`.
REPLY_WAIT_SLICE_S = 1.0


class SlicedWaitClient(NotebookClient):
    """nbclient, waiting for each cell's execute reply in short slices.

    Measured here: now and then the asyncio ZMQ socket misses the wake-up for
    an execute reply that has already arrived (the kernel is idle, the client
    still waits). nbclient waits for the reply in one call as long as the cell
    timeout, so one missed wake-up stalled a 1-second widget cell for the whole
    timeout (60 s of 60 s; 10 minutes with the default), then carried on as if
    nothing happened. Waiting in slices of :data:`REPLY_WAIT_SLICE_S` re-checks
    the socket each second: the same notebook ran 6 of 6 times without a stall
    (it stalled 1 run in 3 before). The cell timeout still applies as a whole.

    The symptom matches the open upstream issue jupyter/nbclient#312 ("when cell
    contains ipywidget, execute cell will sometimes blocks").

    Overrides nbclient's private ``_async_poll_for_reply`` (nbclient 0.10-0.11, pinned
    below 0.12 in pyproject.toml); ``tests/test_notebooks.py`` pins the overridden
    signature and :meth:`_finish_reply` follows nbclient 0.11's ``client.py`` (the
    reply's timing, then the IOPub wait: on its timeout the kernel-alive poll is
    cancelled and ``CellTimeoutError`` raised, as nbclient does).
    """

    async def _async_poll_for_reply(self, msg_id, cell, timeout, task_poll_output_msg, task_poll_kernel_alive):
        deadline = None if timeout is None else monotonic() + timeout
        while True:
            left = None if deadline is None else deadline - monotonic()
            if left is not None and left <= 0:  # out of time: nbclient's own timeout handling
                return await super()._async_poll_for_reply(
                    msg_id, cell, 0, task_poll_output_msg, task_poll_kernel_alive
                )
            try:
                wait = REPLY_WAIT_SLICE_S if left is None else min(REPLY_WAIT_SLICE_S, left)
                msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=wait))
            except Empty:
                await self._async_check_alive()
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                return await self._finish_reply(msg, cell, task_poll_output_msg, task_poll_kernel_alive)

    async def _finish_reply(self, msg, cell, task_poll_output_msg, task_poll_kernel_alive):
        """What nbclient does once the reply is in: timing, then the outputs (IOPub)."""
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


def execute_notebook(
    path: Union[str, Path], timeout: int = 600, cwd: Optional[Union[str, Path]] = None
) -> nbformat.NotebookNode:
    """Run every cell of *path* in a fresh kernel and return the executed notebook.

    The working directory is *cwd* (default: the notebook's own folder, so relative
    paths like ``../topologies/minimal.yaml`` resolve as in JupyterLab). A failing cell
    raises ``nbclient.exceptions.CellExecutionError`` carrying that cell's source and
    traceback. Widget state is stored in the notebook so exported decks can render it.
    """
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    client = SlicedWaitClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(Path(cwd) if cwd else path.parent.resolve())}},
        store_widget_state=True,
    )
    client.execute()
    return nb
