"""Each notebook as a person uses it in JupyterLab, in a real browser: Run All shows no error, and every widget,
moved once, redraws the figure or table it drives.

What each notebook did is kept under ``out/browser/`` (a CI artefact): a screenshot (scrolled to the last widget
moved) and ``<notebook>.json`` with Run All's seconds and each widget's latency, from the input event to the
first frame of the redrawn output.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from lab_driver import (
    NOTEBOOKS,
    ROOT,
    Interact,
    NotebookPage,
    WidgetDidNotRedraw,
    interact_calls,
    open_notebook,
)
from nbformat.v4 import new_code_cell, new_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow]

OUT = ROOT / "out" / "browser"
SETTLE_MS = 1000


def move_every_control(interact: Interact) -> dict[str, float]:
    """Each control moved once; its latency, by label. An error naming the control whose output did not redraw.
    Then nothing more arrives: a change counted as done before its last output would leave that output to be
    taken for the next control's."""
    assert interact.shown()["drawn"], "after Run All the widget's output shows no figure, table or text"
    latencies = {control.label: interact.change(control) for control in interact.controls()}
    last = interact.shown()["content"]
    interact.page.wait_for_timeout(SETTLE_MS)
    assert interact.shown()["content"] == last, f"the output changed again {SETTLE_MS} ms after the last change"
    return latencies


def keep(notebook: NotebookPage, run_all_s: float, latencies: dict[str, float]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    record = {"run_all_s": round(run_all_s, 2), "widget_latency_s": {k: round(v, 3) for k, v in latencies.items()}}
    (OUT / f"{Path(notebook.name).stem}.json").write_text(json.dumps(record, indent=1) + "\n")


@pytest.mark.parametrize("name", sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")))
def test_run_all_shows_no_error_and_every_widget_redraws(lab, browser, name):
    notebook = open_notebook(browser, lab, name)
    interacts: list[Interact] = []
    try:
        run_all_s = notebook.run_all()
        assert notebook.errors() == [], f"{name}: Run All shows error outputs"
        assert notebook.unrun_cells() == 0, f"{name}: Run All left cells unrun"
        interacts = notebook.interacts()
        expected = interact_calls(NOTEBOOKS / name)
        assert len(interacts) == expected, (
            f"{name}: {len(interacts)} interact boxes on the page, the code makes {expected}"
        )
        latencies: dict[str, float] = {}
        for interact in interacts:
            latencies.update(move_every_control(interact))
        assert notebook.widgets_without_state() == [], f"{name}: saved without its widgets' state"
        keep(notebook, run_all_s, latencies)
    finally:
        notebook.screenshot(OUT / f"{Path(name).stem}.png", around=interacts[-1].box if interacts else None)
        notebook.page.close()
        lab.shut_down_kernels()


#: A notebook with what the test above must catch: a widget whose output never changes, the sg-fanout bug (a
#: figure drawn without plt.show() leaves the widget's output), an error, and a cell Run All leaves unrun after it.
DRIVER_CHECK = (
    "%matplotlib inline\nimport ipywidgets as widgets\nimport matplotlib.pyplot as plt",
    "@widgets.interact(x=['a', 'b'])\ndef same(x):\n    print('the same whatever x is')",
    "@widgets.interact(n=(1, 3))\ndef outside(n):\n    plt.plot(range(n))",
    "1 / 0",
    "print('never run')",
)


def test_the_driver_sees_errors_unrun_cells_and_widgets_that_do_not_redraw(lab, browser):
    notebook_file = lab.notebooks / "driver-check.ipynb"
    kernel = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    cells = [new_code_cell(code) for code in DRIVER_CHECK]
    nbformat.write(new_notebook(cells=cells, metadata={"kernelspec": kernel}), notebook_file)
    notebook = open_notebook(browser, lab, notebook_file.name)
    try:
        notebook.run_all()
        assert "ZeroDivisionError" in "\n".join(notebook.errors())
        assert notebook.unrun_cells() == 1
        same, outside = notebook.interacts()
        assert same.shown()["drawn"] and not outside.shown()["drawn"]
        for interact in (same, outside):
            (control,) = interact.controls()
            with pytest.raises(WidgetDidNotRedraw, match="showed nothing new"):
                interact.change(control, timeout_s=3)
    finally:
        notebook.page.close()
        lab.shut_down_kernels()
