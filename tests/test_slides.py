"""Slide decks open offline: no remote loads, every referenced asset on disk, figures inline."""

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from labtwin.report import slides
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
                "import ipywidgets\nipywidgets.IntSlider(value=3)", metadata={"slideshow": {"slide_type": "slide"}}
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


def test_figures_and_widgets_are_embedded(deck):
    html = deck.read_text()
    assert 'src="data:image/png;base64,' in html
    assert "application/vnd.jupyter.widget-state+json" in html


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
