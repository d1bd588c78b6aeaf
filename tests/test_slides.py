"""Slide decks open offline: no remote loads, every referenced asset on disk, figures inline."""

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from labtwin.report import slides
from labtwin.report.review import STATIC_NOTE_CLASS, WIDGET_STATE, WIDGET_VIEW, static_widgets
from labtwin.report.slides import (
    SlidesError,
    export_slides,
    find_web_assets,
    is_remote,
    loaded_urls,
    local_path,
    remote_loads,
)


def tiny_notebook(folder: Path) -> Path:
    nb = new_notebook(
        cells=[
            new_markdown_cell("# A deck\n\nwith math $x^2$", metadata={"slideshow": {"slide_type": "slide"}}),
            new_code_cell(
                "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([1, 3, 2])\nplt.show()",
                metadata={"slideshow": {"slide_type": "slide"}},
            ),
            new_code_cell(
                'import ipywidgets\nipywidgets.IntSlider(value=3, description="n")',
                metadata={"slideshow": {"slide_type": "slide"}},
            ),
        ]
    )
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / "tiny.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def deck(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("deck")
    return export_slides(tiny_notebook(folder), folder / "slides")


def test_deck_loads_nothing_remote(deck):
    urls = loaded_urls(deck.read_text())
    assert any(u.endswith("dist/reveal.js") for u in urls), urls
    assert [u for u in urls if is_remote(u)] == []
    assert remote_loads(deck) == []


def test_deck_assets_exist_on_disk(deck):
    urls = loaded_urls(deck.read_text())
    missing = [u for u in urls if not local_path(u, deck.parent).is_file()]
    assert missing == []
    for needed in ("reveal.js/dist/reveal.js", "reveal.js/plugin/notes/notes.js", "vendor/requirejs/require.js"):
        assert needed in {u.split("?")[0] for u in urls}


def test_figures_are_embedded_and_code_is_not(deck):
    html = deck.read_text()
    assert 'src="data:image/png;base64,' in html
    assert "ax.plot" not in html and "IntSlider" not in html and "hl-ipython3" not in html


def test_a_widget_becomes_a_static_note_with_its_settings():
    state = {
        "box": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_slider", "IPY_MODEL_out"]}},
        "slider": {"model_name": "IntSliderModel", "state": {"description": "n", "value": 3}},
        "pick": {
            "model_name": "DropdownModel",
            "state": {"description": "x", "index": 1, "_options_labels": ["a", "b"]},
        },
        "out": {
            "model_name": "OutputModel",
            "state": {"outputs": [{"output_type": "stream", "name": "stdout", "text": "3"}]},
        },
    }
    state["box"]["state"]["children"].append("IPY_MODEL_pick")
    view = {
        "output_type": "display_data",
        "metadata": {},
        "data": {WIDGET_VIEW: {"model_id": "box"}, "text/plain": "w"},
    }
    nb = new_notebook(cells=[new_code_cell("interact(f)", outputs=[nbformat.from_dict(view)])])
    nb.metadata["widgets"] = {WIDGET_STATE: {"state": state}}
    static = static_widgets(nb, source="notebooks/x.ipynb")
    note, shown = static.cells[0].outputs
    assert "Static in slides" in note.data["text/plain"] and "n=3, x=b" in note.data["text/plain"]
    assert "notebooks/x.ipynb" in note.data["text/plain"] and STATIC_NOTE_CLASS in note.data["text/html"]
    assert shown.text == "3" and "widgets" not in static.metadata
    assert nb.cells[0].outputs[0].data[WIDGET_VIEW]  # the notebook itself is left as it was


def test_the_tiny_decks_widget_is_a_static_note(deck):
    html = deck.read_text()
    assert STATIC_NOTE_CLASS in html and "at n=3" in html
    assert WIDGET_STATE not in html and WIDGET_VIEW not in html


def test_review_deck_navigates_linearly_on_a_fixed_slide(deck):
    html = deck.read_text()
    assert "navigationMode: 'linear'" in html and "width: 1280, height: 800" in html
    assert "labtwinFit(Reveal)" in html and "overflow-y', 'scroll'" not in html


def test_scanner_sees_remote_loads():
    html = (
        '<link rel="stylesheet" href="https://cdn.example/x.css"><script src="//cdn.example/y.js"></script>'
        '<script>require(["https://unpkg.com/reveal.js@4/dist/reveal.js"])</script>'
        '<style>@import url(https://fonts.example/f.css);</style><a href="https://ok.example">link</a>'
    )
    assert sorted(u for u in loaded_urls(html) if is_remote(u)) == [
        "//cdn.example/y.js",
        "https://cdn.example/x.css",
        "https://fonts.example/f.css",
        "https://unpkg.com/reveal.js@4/dist/reveal.js",
    ]


def test_missing_assets_say_run_make_setup(tmp_path, monkeypatch):
    monkeypatch.setenv("LABTWIN_WEB_ASSETS", str(tmp_path))
    monkeypatch.setattr(slides, "__file__", str(tmp_path / "a" / "b" / "slides.py"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SlidesError, match="make setup"):
        find_web_assets()
