"""Notebooks -> reveal.js slide decks that open offline.

A design review happens in rooms without reliable network, so a deck must not
load anything remote. nbconvert's reveal template points at CDNs by default
(reveal.js, require.js, jQuery, MathJax, Mermaid, the widget renderer); here each
of those points at a local copy placed next to the deck, and figures travel as
base64 inside the html. ``make setup`` fetches the pinned browser packages once
into ``.cache/web/`` (see WEB_PACKAGES in the Makefile); :func:`export_slides`
copies the subset a deck needs into the output folder::

    out/slides/00-tour.slides.html
    out/slides/reveal.js/dist/...       reveal.js itself and its themes
    out/slides/vendor/...               require.js, jQuery, MathJax, widget renderer

After writing, the html is scanned (:func:`loaded_urls`) and any remote reference
is an error rather than a silently broken deck.

Each deck is a design-review deck (:mod:`labtwin.report.review`): prose, tables and
figures without code, widgets replaced by what they showed, the Right arrow through
every slide and subslide, each slide fitted to the window.
"""

from __future__ import annotations

import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Optional, Union

import nbformat
from jinja2 import DictLoader

from . import review
from .notebooks import execute_notebook


class SlidesError(RuntimeError):
    """The deck cannot be made offline (assets missing) or would load remote files."""


#: (package folder under .cache/web, parts of it to copy, folder next to the deck).
ASSETS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("reveal.js", ("dist/reveal.js", "dist/reveal.css", "dist/reset.css", "dist/theme", "plugin/notes"), "reveal.js"),
    ("requirejs", ("require.js",), "vendor/requirejs"),
    ("jquery", ("dist/jquery.min.js",), "vendor/jquery"),
    # MathJax 2 (the API nbconvert's template calls): the CommonHTML output and TeX input only.
    (
        "mathjax",
        (
            "MathJax.js",
            "config/TeX-AMS_CHTML-full.js",
            "config/Safe.js",
            "extensions",
            "jax/output/CommonHTML",
            "jax/element",
            "jax/input/TeX",
            "fonts/HTML-CSS/TeX/woff",
            "localization/en",
        ),
        "vendor/mathjax",
    ),
    ("jupyter-widgets-html-manager", ("dist",), "vendor/html-manager"),
)

#: Where the template looks for each library, relative to the deck.
URLS = {
    "reveal_url_prefix": "reveal.js",
    "require_js_url": "vendor/requirejs/require.js",
    "jquery_url": "vendor/jquery/dist/jquery.min.js",
    "mathjax_url": "vendor/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe",
    "widget_renderer_url": "vendor/html-manager/dist/embed-amd.js",
}
#: The theme whose fonts ship with reveal.js (most others @import web fonts).
THEME = "white"

# nbconvert's reveal template with the Mermaid import (an ES module from a CDN) removed (our notebooks draw
# with matplotlib, and a module import cannot load from file:// anyway), and reveal.js started as a review
# deck wants it (see review.py): linear navigation, a 1280x800 slide, each slide fitted on show, no scrolling.
_TEMPLATE = "labtwin_reveal.html.j2"
_TEMPLATE_SOURCE = (
    """{%- extends 'index.html.j2' -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block notebook_css -%}{{ super() }}<style type="text/css">"""
    + review.REVIEW_CSS
    + """</style>{%- endblock notebook_css -%}
{% block footer_js %}
<script>"""
    + review.FIT_JS
    + """
require({waitSeconds: 15}, ["{{ resources.reveal.url_prefix }}/dist/reveal.js",
                            "{{ resources.reveal.url_prefix }}/plugin/notes/notes.js"],
    function (Reveal, RevealNotes) {
        labtwinFit(Reveal);
        Reveal.initialize(Object.assign("""
    + review.reveal_config()
    + """, {plugins: [RevealNotes]}));
        Reveal.on('slidechanged', function () {
            if (window.MathJax && MathJax.Hub && MathJax.Hub.getAllJax(Reveal.getCurrentSlide())) {
                MathJax.Hub.Rerender(Reveal.getCurrentSlide());
            }
        });
    });
</script>
{% endblock footer_js %}
"""
)
_SKIP = shutil.ignore_patterns("*.map", "*.esm.js", "embed.js", "libembed-amd.js", "*.LICENSE.txt")


def export_slides(notebook: Union[str, Path], out_dir: Union[str, Path], execute: bool = True) -> Path:
    """Write ``out_dir/<notebook stem>.slides.html`` and the assets it needs; return its path.

    With *execute* the notebook runs top to bottom first (in its own folder), so the
    deck shows fresh outputs and widget state; otherwise the saved outputs are used.
    """
    notebook, out_dir = Path(notebook), Path(out_dir)
    web = find_web_assets()
    nb = execute_notebook(notebook) if execute else nbformat.read(notebook, as_version=4)
    out_dir.mkdir(parents=True, exist_ok=True)
    copy_assets(web, out_dir)
    deck = out_dir / f"{notebook.stem}.slides.html"
    nb = review.static_widgets(nb, source=f"notebooks/{notebook.name}")
    deck.write_text(render_deck(nb, title=notebook.stem), encoding="utf-8")
    remote = remote_loads(deck)
    if remote:
        raise SlidesError(f"{deck}: the deck would load remote files: {', '.join(sorted(set(remote)))}")
    return deck


def export_decks(notebooks: list[Path], out_dir: Union[str, Path], jobs: int = 1) -> list[Path]:
    """Each notebook run and written as ``out_dir/<stem>.slides.html``, *jobs* at a time (each in a process of its
    own), the assets copied once; the decks' paths, in the notebooks' order."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    copy_assets(find_web_assets(), out_dir)
    decks = [out_dir / f"{Path(nb).stem}.slides.html" for nb in notebooks]
    with ProcessPoolExecutor(max_workers=max(jobs, 1), mp_context=get_context("spawn")) as pool:
        for deck, html in zip(decks, pool.map(_executed_deck, [Path(nb) for nb in notebooks])):
            deck.write_text(html, encoding="utf-8")
    return decks


def _executed_deck(notebook: Path) -> str:
    nb = review.static_widgets(execute_notebook(notebook), source=f"notebooks/{notebook.name}")
    return render_deck(nb, title=notebook.stem)


def render_deck(nb: nbformat.NotebookNode, title: str, code: bool = False) -> str:
    """The reveal.js html of *nb*, every library URL local, images inlined, code cells' inputs left out (kept
    with *code*, for a deck about the code itself)."""
    from nbconvert import SlidesExporter

    exporter = SlidesExporter(
        extra_loaders=[DictLoader({_TEMPLATE: _TEMPLATE_SOURCE})],
        embed_images=True,
        reveal_theme=THEME,
        exclude_input=not code,
        exclude_input_prompt=not code,
        exclude_output_prompt=not code,
        **URLS,
    )
    exporter.template_file = _TEMPLATE
    html, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    return html


def find_web_assets() -> Path:
    """The folder ``make setup`` fills with browser packages: $LABTWIN_WEB_ASSETS or .cache/web."""
    candidates = [Path(os.environ["LABTWIN_WEB_ASSETS"])] if os.environ.get("LABTWIN_WEB_ASSETS") else []
    candidates += [Path(__file__).resolve().parents[2] / ".cache" / "web", Path.cwd() / ".cache" / "web"]
    for folder in candidates:
        if (folder / "reveal.js" / "dist" / "reveal.js").is_file():
            missing = [pkg for pkg, _, _ in ASSETS if not (folder / pkg).is_dir()]
            if missing:
                raise SlidesError(f"{folder} lacks {', '.join(missing)}: run `make setup` to fetch the slide assets")
            return folder
    raise SlidesError(
        "reveal.js not found (looked in "
        + ", ".join(str(c) for c in candidates)
        + "): run `make setup` to fetch reveal.js and the other offline slide assets"
    )


def copy_assets(web: Path, out_dir: Path) -> None:
    """Copy the parts of each browser package a deck loads next to the decks in *out_dir*."""
    for package, parts, dest in ASSETS:
        for part in parts:
            src, dst = web / package / part, out_dir / dest / part
            if src.is_dir():
                shutil.copytree(src, dst, ignore=_SKIP, dirs_exist_ok=True)
            elif src.is_file():
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
            else:
                raise SlidesError(f"{src} is missing: run `make setup` to fetch the slide assets again")


# --- what an html page loads ------------------------------------------------------

_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)""")
_CSS_IMPORT = re.compile(r"""@import\s+['"]([^'"]+)['"]""")
_JS_IMPORT = re.compile(r"""\bimport\s+(?:[\w{}\s,*]+\s+from\s+)?['"]([^'"]+)['"]""")
_JS_ASSET = re.compile(r"""['"]([^'"\s]+\.(?:m?js|css)(?:\?[^'"\s]*)?)['"]""")
_JS_TYPES = {"", "text/javascript", "application/javascript", "module"}


class _Loads(HTMLParser):
    """Collect what a page fetches: src/href of loading tags, CSS urls, script imports."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self._in: Optional[str] = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "link" and a.get("href"):
            self.urls.append(a["href"])
        elif tag != "a" and a.get("src"):
            self.urls.append(a["src"])
        if a.get("style"):
            self.urls += _CSS_URL.findall(a["style"])
        if tag == "style" or (tag == "script" and a.get("type", "").lower() in _JS_TYPES):
            self._in = tag

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "style":
            self.urls += _CSS_URL.findall(data) + _CSS_IMPORT.findall(data)
        elif self._in == "script":
            self.urls += _JS_IMPORT.findall(data) + _JS_ASSET.findall(data)


def loaded_urls(html: str) -> list[str]:
    """URLs the page would fetch when opened (not links a reader may click).

    >>> loaded_urls('<script src="a.js"></script><a href="https://x.org">x</a>')
    ['a.js']
    """
    parser = _Loads()
    parser.feed(html)
    return [u for u in parser.urls if not u.startswith(("data:", "#", "about:"))]


def remote_loads(deck: Path) -> list[str]:
    """Remote URLs that *deck* loads, directly or through the local stylesheets it loads."""
    remote, seen = [], set()
    pending = [(deck, url) for url in loaded_urls(deck.read_text(encoding="utf-8"))]
    while pending:
        page, url = pending.pop()
        if is_remote(url):
            remote.append(url)
            continue
        path = local_path(url, page.parent).resolve()
        if path.suffix == ".css" and path.is_file() and path not in seen:
            seen.add(path)
            css = path.read_text(encoding="utf-8", errors="replace")
            pending += [(path, u) for u in _CSS_URL.findall(css) + _CSS_IMPORT.findall(css)]
    return remote


def is_remote(url: str) -> bool:
    """True for absolute or protocol-relative URLs (``https://``, ``//cdn...``)."""
    return bool(re.match(r"^([a-z][a-z0-9+.-]*:)?//", url, re.I))


def local_path(url: str, deck_dir: Path) -> Path:
    """The file a relative URL in a deck resolves to (query and fragment dropped)."""
    return deck_dir / re.split(r"[?#]", url, maxsplit=1)[0]
