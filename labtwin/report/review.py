"""What makes a notebook's deck a design-review deck: prose, tables and figures only, each slide fitted.

The deck keeps no code (nbconvert's ``exclude_input``: code cells show their outputs only), replaces each
widget by the output it showed when the notebook ran plus a visible "static in slides" note (a widget in
a deck has no kernel behind it: it would look live and change nothing), walks every slide and subslide
with the Right arrow (reveal.js ``navigationMode: 'linear'``), and fits each slide in the logical
:data:`SLIDE_WIDTH` x :data:`SLIDE_HEIGHT` box reveal.js scales to the window: a table or text block
wider than the slide is scaled to its width, then a slide taller or wider than the box is scaled as a
whole (:data:`FIT_JS`; the scale applied is kept in the slide's ``data-fit-scale``). A slide that would
need to shrink below :data:`READABLE_SCALE` holds too much and is split in the notebook's slide metadata.
"""

from __future__ import annotations

import copy
import html
from typing import Any

import nbformat

#: reveal.js's logical slide, scaled as a whole to the window (16:10, the 1280x800 window's shape).
SLIDE_WIDTH = 1280
SLIDE_HEIGHT = 800
#: reveal.js's margin around the slide, a fraction of its size.
SLIDE_MARGIN = 0.04
#: Below this scale a slide's text is too small to read from the back of a room: split the slide instead.
READABLE_SCALE = 0.6

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
#: The class of the note that stands where a widget was.
STATIC_NOTE_CLASS = "labtwin-static-note"

REVIEW_CSS = """
.reveal .slides section .labtwin-fit { display: flow-root; width: 100%; }
.reveal .labtwin-wide { overflow: visible; }
.reveal .jp-OutputArea-output, .reveal .jp-RenderedHTMLCommon,
.reveal .jp-InputArea, .reveal .jp-OutputArea { overflow: visible; }
.reveal section img { max-width: 100%; height: auto; display: block; margin: 0 auto; }
.reveal div.jp-OutputArea-output > pre { width: auto; }
.reveal .labtwin-static-note { font-size: 16px; color: #555; border-left: 4px solid #e0a000;
                               padding: 2px 10px; margin: 4px 0; }
"""

#: Fits the slide on show (reveal.js shows only the current slide and its neighbours: a hidden slide has no size).
FIT_JS = """
function labtwinFit(Reveal) {
    function box(section) {
        var first = section.firstElementChild;
        if (first && first.classList.contains('labtwin-fit') && first === section.lastElementChild) return first;
        var fit = document.createElement('div');
        fit.className = 'labtwin-fit';
        while (section.firstChild) fit.appendChild(section.firstChild);
        section.appendChild(fit);
        return fit;
    }
    function fitWide(fit) {
        // a table or text block wider than its column: scaled to the column's width, the space it keeps with it;
        // the smallest scale used
        var least = 1;
        fit.querySelectorAll('table, .jp-OutputArea-output > pre').forEach(function (block) {
            if (block.parentElement.closest('table')) return;
            var holder = block.parentElement;
            if (!holder.classList.contains('labtwin-wide')) {
                holder = document.createElement('div');
                holder.className = 'labtwin-wide';
                block.parentNode.insertBefore(holder, block);
                holder.appendChild(block);
            }
            block.style.transform = '';
            holder.style.height = '';
            var room = holder.clientWidth, width = block.scrollWidth;
            if (room > 0 && width > room + 1) {
                var s = room / width;
                least = Math.min(least, s);
                block.style.transformOrigin = 'top left';
                block.style.transform = 'scale(' + s + ')';
                holder.style.height = Math.ceil(block.offsetHeight * s) + 'px';
            }
        });
        return least;
    }
    function fitImages(fit, H) {
        // figures taller than the room the slide's text leaves them: shrunk together, their shape kept;
        // the smallest scale used
        var images = [...fit.querySelectorAll('img')].filter(function (img) { return img.offsetHeight > 0; });
        images.forEach(function (img) { img.style.maxHeight = ''; });
        var excess = fit.offsetHeight - H;
        var tall = images.reduce(function (sum, img) { return sum + img.offsetHeight; }, 0);
        if (excess <= 0 || tall === 0) return 1;
        var f = Math.max(tall - excess, 0) / tall;
        images.forEach(function (img) { img.style.maxHeight = Math.floor(img.offsetHeight * f) + 'px'; });
        return f;
    }
    function fitSlide(section) {
        if (!section) return;
        var W = Reveal.getConfig().width, H = Reveal.getConfig().height;
        var fit = box(section);
        fit.style.transform = '';
        fit.style.marginBottom = '';
        var wide = fitWide(fit);
        var figures = fitImages(fit, H);
        var h = fit.offsetHeight, w = fit.scrollWidth;
        var s = Math.min(1, H / Math.max(h, 1), W / Math.max(w, 1));
        if (s < 1) {
            fit.style.transformOrigin = 'top center';
            fit.style.transform = 'scale(' + s + ')';
            fit.style.marginBottom = -Math.ceil(h * (1 - s)) + 'px';
        }
        // what the smallest text on the slide is scaled to, and its figures
        section.setAttribute('data-fit-scale', (s * wide).toFixed(3));
        section.setAttribute('data-figure-scale', (s * figures).toFixed(3));
    }
    function fitCurrent() {
        fitSlide(Reveal.getCurrentSlide());
        Reveal.layout();
    }
    Reveal.on('ready', fitCurrent);
    Reveal.on('slidechanged', fitCurrent);
    window.addEventListener('load', fitCurrent);
    document.querySelectorAll('.reveal img').forEach(function (img) {
        if (!img.complete) img.addEventListener('load', fitCurrent);
    });
    if (window.MathJax && MathJax.Hub) {
        Reveal.on('slidechanged', function () { MathJax.Hub.Queue(fitCurrent); });
    }
    window.labtwinFitCurrent = fitCurrent;
}
"""


def reveal_config() -> str:
    """The options Reveal.initialize gets (a JavaScript object literal)."""
    return (
        "{controls: true, progress: true, history: true, transition: 'slide', slideNumber: 'c/t',"
        f" navigationMode: 'linear', center: true, width: {SLIDE_WIDTH}, height: {SLIDE_HEIGHT},"
        f" margin: {SLIDE_MARGIN}, minScale: 0.2, maxScale: 2.0}}"
    )


def static_widgets(nb: nbformat.NotebookNode, source: str) -> nbformat.NotebookNode:
    """A copy of *nb* where each widget output is replaced by what its Output widgets showed when the notebook
    ran, under a note naming the controls' settings and *source*, the notebook where they can be moved; the
    widget state is dropped (nothing is left for a widget renderer to draw)."""
    nb = copy.deepcopy(nb)
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view is None:
                outputs.append(output)
                continue
            model_id = view.get("model_id", "")
            outputs.append(static_note(settings(state, model_id), source))
            outputs += [nbformat.from_dict(o) for o in shown_outputs(state, model_id)]
        cell.outputs = outputs
    nb.metadata.pop("widgets", None)
    return nb


def static_note(controls: list[str], source: str) -> nbformat.NotebookNode:
    at = f" at {', '.join(controls)}" if controls else ""
    text = f"Static in slides: the widget's output{at}. Move its controls in {source}."
    return nbformat.v4.new_output(
        "display_data",
        data={"text/html": f'<p class="{STATIC_NOTE_CLASS}">{html.escape(text)}</p>', "text/plain": text},
    )


def _descendants(state: dict[str, Any], model_id: str, seen: set[str] | None = None) -> list[str]:
    """*model_id* and every model under it (a box's children, depth first)."""
    seen = set() if seen is None else seen
    if model_id in seen or model_id not in state:
        return []
    seen.add(model_id)
    found = [model_id]
    for child in state[model_id].get("state", {}).get("children", []):
        if isinstance(child, str) and child.startswith("IPY_MODEL_"):
            found += _descendants(state, child[len("IPY_MODEL_") :], seen)
    return found


def settings(state: dict[str, Any], model_id: str) -> list[str]:
    """``description=value`` of each control under the widget, as it was when the notebook ran."""
    found = []
    for mid in _descendants(state, model_id):
        model = state[mid].get("state", {})
        label = str(model.get("description", "")).strip()
        if not label:
            continue
        if isinstance(model.get("index"), int) and "_options_labels" in model:
            value = model["_options_labels"][model["index"]]
        elif "value" in model:
            value = model["value"]
        else:
            continue
        found.append(f"{label}={value}")
    return found


def shown_outputs(state: dict[str, Any], model_id: str) -> list[dict[str, Any]]:
    """What the widget's Output widgets held when the notebook ran."""
    return [
        output
        for mid in _descendants(state, model_id)
        if state[mid].get("model_name") == "OutputModel"
        for output in state[mid].get("state", {}).get("outputs", [])
    ]
