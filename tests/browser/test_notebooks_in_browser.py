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
from figure_text import OUTPUT_AREA_PX
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
        assert notebook.output_area_width() >= OUTPUT_AREA_PX, "figures are measured for a wider output area"
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
    if interacts:
        reopened_shows_every_widget(lab, browser, name, len(interacts))


def reopened_shows_every_widget(lab, browser, name: str, expected: int, wait_s: float = 30) -> None:
    """The saved notebook opened again, as a person does the next day, and run no further: every widget it saved is
    drawn with the figure or table it showed, none as "Error displaying widget" or as its text fallback."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    notebook = open_notebook(browser, lab, name)
    try:
        try:
            notebook.page.wait_for_function(
                f"() => document.querySelectorAll('.jp-Notebook .widget-interact').length >= {expected}",
                timeout=wait_s * 1000,
            )
        except PlaywrightTimeout:
            pass  # the assertions below say what the page shows instead
        undrawn = notebook.undrawn_widgets()
        assert undrawn == [], f"{name}: reopened, widgets not drawn; shown instead: {undrawn}"
        interacts = notebook.interacts()
        assert len(interacts) == expected, f"{name}: reopened, {len(interacts)} interact boxes of {expected} drawn"
        empty = [i for i, interact in enumerate(interacts, 1) if not interact.shown()["drawn"]]
        assert empty == [], f"{name}: reopened, interact box(es) {empty} show no figure, table or text"
    finally:
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
    saved = nbformat.read(notebook_file, as_version=4)  # saved by errors(), with its widgets' state
    saved.metadata.pop("widgets")  # as JupyterLab saves without saveState
    nbformat.write(saved, notebook_file)
    with pytest.raises(AssertionError, match="reopened, widgets not drawn"):
        reopened_shows_every_widget(lab, browser, notebook_file.name, expected=2, wait_s=5)
