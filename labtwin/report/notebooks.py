"""Execute a notebook top to bottom, headless, as CI and the slide export do.

The kernel is ``python3``: jupyter_client launches the native kernel with the
interpreter running this code (the project's venv), so notebooks see the same
labtwin that the caller imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import nbformat
from nbclient import NotebookClient


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
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(Path(cwd) if cwd else path.parent.resolve())}},
        store_widget_state=True,
    )
    client.execute()
    return nb
