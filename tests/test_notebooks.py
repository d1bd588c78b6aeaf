"""Every notebook under notebooks/ runs top to bottom, as a user would run it in JupyterLab."""

import json
from pathlib import Path

import nbformat
import pytest
from figure_text import MIN_PX, OUTPUT_AREA_PX
from nbclient.exceptions import CellExecutionError
from nbformat.v4 import new_code_cell

from labtwin.report.notebooks import execute_notebook

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


#: Run first in each notebook's kernel: from there on, every figure the notebook prints is measured
#: (tests/figure_text.py, run as a module of its own so no name of it meets the notebook's).
MEASURE_FIGURES = f"""import types as _labtwin_types
_labtwin_figure_text = _labtwin_types.ModuleType("figure_text")
exec({(Path(__file__).parent / "figure_text.py").read_text()!r}, _labtwin_figure_text.__dict__)
_labtwin_printed = _labtwin_figure_text.record_printed_figures()"""
REPORT_FIGURES = "import json as _labtwin_json\nprint(_labtwin_json.dumps(_labtwin_printed))"


def run_measuring_figures(notebook: Path, workdir: Path) -> tuple[nbformat.NotebookNode, list[dict]]:
    """*notebook* run top to bottom (in its own folder), with every figure it prints measured: the run notebook
    without the measuring cells, and one record per printed figure (``figure_text.record_printed_figures``)."""
    nb = nbformat.read(notebook, as_version=4)
    nb.cells = [new_code_cell(MEASURE_FIGURES), *nb.cells, new_code_cell(REPORT_FIGURES)]
    copy = workdir / notebook.name
    nbformat.write(nb, copy)
    ran = execute_notebook(copy, timeout=600, cwd=NOTEBOOKS)
    first, *cells, last = ran.cells
    assert first.outputs == [], f"measuring the figures failed: {first.outputs}"
    printed = json.loads(last.outputs[0]["text"])
    ran.cells = cells
    return ran, printed


@pytest.mark.slow
@pytest.mark.parametrize("notebook", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebook_runs_and_its_figures_are_legible(notebook, tmp_path):
    """Top to bottom with no error; every figure it shows, static or from a widget, has no text under 9 px at a
    notebook's width (issue 18)."""
    try:
        nb, printed = run_measuring_figures(notebook, tmp_path)
    except CellExecutionError as exc:
        pytest.fail(f"{notebook.name}: a cell failed:\n{exc}", pytrace=False)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    shown = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert len(printed) >= shown, f"{notebook.name}: {shown} figures shown, {len(printed)} measured"
    small = [(f["title"], f["width_px"], f["too_small"]) for f in printed if f["too_small"]]
    assert small == [], f"{notebook.name}: figure text under {MIN_PX} px at {OUTPUT_AREA_PX} px wide"


def test_the_figure_measure_finds_small_text_in_a_notebook(tmp_path):
    """A notebook with a figure whose tick labels are 6 pt (8.3 px at 100 dpi), and one drawn too wide for the
    output area (14 inches: 7 pt text shrinks to 5.9 px): both are reported, the legible one is not."""
    cells = [
        "%matplotlib inline\nimport matplotlib.pyplot as plt",
        "fig, ax = plt.subplots(figsize=(6, 3)); ax.plot([1, 2]); ax.tick_params(labelsize=6); ax.set_title('small')",
        "fig, ax = plt.subplots(figsize=(14, 3)); ax.plot([1, 2]); ax.set_title('wide', fontsize=7)",
        "fig, ax = plt.subplots(figsize=(6, 3)); ax.plot([1, 2]); ax.set_title('legible')",
    ]
    path = tmp_path / "small-text.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[new_code_cell(c) for c in cells]), path)
    (tmp_path / "run").mkdir()
    _, printed = run_measuring_figures(path, tmp_path / "run")
    assert [f["title"] for f in printed if f["too_small"]] == ["small", "wide"]


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
