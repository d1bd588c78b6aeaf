"""Every notebook under notebooks/ runs top to bottom, as a user would run it in JupyterLab."""

from pathlib import Path

import pytest
from nbclient.exceptions import CellExecutionError

from labtwin.report.notebooks import execute_notebook

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.mark.slow
@pytest.mark.parametrize("notebook", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebook_runs(notebook):
    try:
        nb = execute_notebook(notebook, timeout=600, cwd=NOTEBOOKS)
    except CellExecutionError as exc:
        pytest.fail(f"{notebook.name}: a cell failed:\n{exc}", pytrace=False)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []


def test_there_are_notebooks():
    assert (NOTEBOOKS / "00-tour.ipynb").is_file()


@pytest.mark.parametrize("notebook", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebook_is_valid_nbformat_with_cell_ids(notebook, recwarn):
    """Valid against its nbformat schema, each cell with its own id (nbformat 4.5: a missing id is a warning
    today, an error in future nbformat versions)."""
    import json

    import nbformat

    raw = json.loads(notebook.read_text())
    ids = [cell.get("id") for cell in raw["cells"]]
    assert None not in ids and len(set(ids)) == len(ids), f"{notebook.name}: cells without an id or with a repeated one"
    nbformat.validate(nbformat.reads(notebook.read_text(), as_version=4))
    assert not [w for w in recwarn if "id" in str(w.message)]


@pytest.mark.slow
def test_kernel_is_this_environment(tmp_path):
    """Notebooks run on the interpreter running the tests (the venv), so they import this labtwin."""
    import sys

    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    path = tmp_path / "which.ipynb"
    nbformat.write(
        new_notebook(cells=[new_code_cell("import sys, labtwin\nprint(sys.prefix)\nprint(labtwin.__file__)")]), path
    )
    out = execute_notebook(path).cells[0].outputs[0]["text"].split()
    import labtwin

    assert out == [sys.prefix, labtwin.__file__]


def test_the_overridden_nbclient_method_keeps_its_signature():
    """SlicedWaitClient overrides nbclient's private _async_poll_for_reply (a workaround for
    jupyter/nbclient#312): if nbclient changes it, this fails before notebooks silently misbehave."""
    import inspect

    from nbclient import NotebookClient

    from labtwin.report.notebooks import SlicedWaitClient

    upstream = list(inspect.signature(NotebookClient._async_poll_for_reply).parameters)
    ours = list(inspect.signature(SlicedWaitClient._async_poll_for_reply).parameters)
    assert upstream == ours == ["self", "msg_id", "cell", "timeout", "task_poll_output_msg", "task_poll_kernel_alive"]
    assert hasattr(NotebookClient, "_async_check_alive") and hasattr(NotebookClient, "_async_handle_timeout")
