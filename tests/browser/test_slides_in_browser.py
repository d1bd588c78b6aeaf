"""Each notebook's deck as a reviewer presents it, in a real browser at 1280x800 and 1920x1080: the Right arrow
walks every slide (subslides too, as many as the deck has), each slide fits its window (every element of it,
tables and figures included, inside the visible slide, nothing cut off inside a scroll box, no slide shrunk
below a readable scale), no code input shows, and each widget is replaced by a visible "static in slides" note.

The decks are exported once per module as ``make slides`` does (executed, offline, into a temporary folder),
or taken from ``$LABTWIN_TEST_DECKS`` (a folder of ``*.slides.html``, e.g. ``out/slides``) to check decks
already made. Each deck is opened over file://. A screenshot of each slide that does not fit goes to
``out/browser/slides/``, with the problems of every slide in ``out/browser/slides/<deck>-<viewport>.json``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from lab_driver import NOTEBOOKS, ROOT
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from labtwin.report.review import READABLE_SCALE, STATIC_NOTE_CLASS, WIDGET_VIEW
from labtwin.report.slides import copy_assets, export_decks, find_web_assets, render_deck

pytestmark = [pytest.mark.browser, pytest.mark.slow]

OUT = ROOT / "out" / "browser" / "slides"
VIEWPORTS = ((1280, 800), (1920, 1080))
DECKS = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))

#: What is wrong with the slide on show: each element (display:none ones aside) outside the visible slide box
#: (reveal.js's scaled slide, cut to the window), each element whose content overflows a box that clips or
#: scrolls it (a table losing columns, a clipped line, a slide one would have to scroll), each code input
#: shown, and the scales the deck fitted the slide's text and figures to.
MEASURE_JS = """(tolerance) => {
    const section = Reveal.getCurrentSlide();
    const slides = document.querySelector('.reveal .slides').getBoundingClientRect();
    const area = {left: Math.max(slides.left, 0), top: Math.max(slides.top, 0),
                  right: Math.min(slides.right, innerWidth), bottom: Math.min(slides.bottom, innerHeight)};
    const name = el => el.tagName.toLowerCase() + (el.className && typeof el.className === 'string'
        ? '.' + el.className.trim().split(/\\s+/).slice(0, 2).join('.') : '');
    const problems = [];
    for (const el of [section, ...section.querySelectorAll('*')]) {
        if (el.closest('aside.notes, .jp-CodeCell .jp-InputArea')) continue;  // code is counted below
        const r = el.getBoundingClientRect();
        if (r.width === 0 && r.height === 0) continue;
        if (r.left < area.left - tolerance || r.top < area.top - tolerance
            || r.right > area.right + tolerance || r.bottom > area.bottom + tolerance) {
            problems.push(`${name(el)} outside the slide: [${Math.round(r.left)}, ${Math.round(r.top)}, `
                + `${Math.round(r.right)}, ${Math.round(r.bottom)}] in [${Math.round(area.left)}, `
                + `${Math.round(area.top)}, ${Math.round(area.right)}, ${Math.round(area.bottom)}]`);
        }
        const style = getComputedStyle(el);
        const clips = v => v !== 'visible';
        if ((clips(style.overflowX) && el.scrollWidth > el.clientWidth + tolerance)
            || (clips(style.overflowY) && el.scrollHeight > el.clientHeight + tolerance)) {
            problems.push(`${name(el)} cuts off its content: ${el.scrollWidth}x${el.scrollHeight} `
                + `in ${el.clientWidth}x${el.clientHeight}`);
        }
    }
    const code = [...section.querySelectorAll('.jp-CodeCell')]
        .filter(cell => [...cell.querySelectorAll('.jp-InputArea')].some(el => el.getBoundingClientRect().height > 0))
        .length;
    if (code) problems.push(`${code} code inputs shown`);
    return {problems, scale: parseFloat(section.getAttribute('data-fit-scale') ?? '1'),
            figures: parseFloat(section.getAttribute('data-figure-scale') ?? '1')};
}"""
#: Where the deck is: horizontal and vertical slide index.
WHERE_JS = "() => { const i = Reveal.getIndices(); return [i.h, i.v ?? 0]; }"
TOLERANCE_PX = 1
REVEAL_GLOBAL_JS = (
    """() => new Promise(done => require(['reveal.js/dist/reveal.js'], R => { window.Reveal = R; done(); }))"""
)


@pytest.fixture(scope="module")
def decks(chromium_installed, tmp_path_factory) -> Path:
    """Every notebook's deck: exported here as `make slides` does, or those in $LABTWIN_TEST_DECKS."""
    if os.environ.get("LABTWIN_TEST_DECKS"):
        return Path(os.environ["LABTWIN_TEST_DECKS"])
    folder = tmp_path_factory.mktemp("slides")
    export_decks([NOTEBOOKS / f"{name}.ipynb" for name in DECKS], folder, jobs=2)
    return folder


def open_deck(browser, deck: Path, viewport: tuple[int, int]):
    width, height = viewport
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(deck.as_uri())
    # the deck loads reveal.js through require.js, which leaves no global: the same module, asked for again
    page.wait_for_function("() => window.require && window.require.defined", timeout=30_000)
    page.evaluate(REVEAL_GLOBAL_JS)
    page.wait_for_function("() => window.Reveal && Reveal.isReady()", timeout=30_000)
    page.evaluate("() => Reveal.configure({transition: 'none', backgroundTransition: 'none'})")
    page.evaluate("() => document.fonts.ready")
    return page


def walk(page, deck_name: str, viewport: tuple[int, int], out: Path = OUT) -> dict:
    """The Right arrow, pressed until the deck stops moving; each slide reached measured once. Returns the
    slides reached in order, the deck's own count, and the problems and fitted scale of each slide."""
    total = page.evaluate("() => Reveal.getTotalSlides()")
    fragments = page.evaluate("() => document.querySelectorAll('.reveal .slides .fragment').length")
    seen: list[tuple[int, int]] = []
    slides: dict[str, dict] = {}
    where = tuple(page.evaluate(WHERE_JS))
    for _ in range(total + fragments + 2):
        if where not in seen:
            seen.append(where)
            page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
            measured = page.evaluate(MEASURE_JS, TOLERANCE_PX)
            key = f"{len(seen)}:{where[0]}.{where[1]}"
            slides[key] = measured
            if measured["problems"] or measured["scale"] < READABLE_SCALE:
                out.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(out / f"{deck_name}-{viewport[0]}x{viewport[1]}-{len(seen):02d}.png"))
        if page.evaluate("() => Reveal.isLastSlide() && !Reveal.availableFragments().next"):
            break
        page.keyboard.press("ArrowRight")
        where = tuple(page.evaluate(WHERE_JS))
    return {"total": total, "reached": len(seen), "slides": slides}


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=lambda v: f"{v[0]}x{v[1]}")
@pytest.mark.parametrize("name", DECKS)
def test_the_right_arrow_walks_every_slide_and_each_fits_without_code(decks, browser, name, viewport):
    deck = decks / f"{name}.slides.html"
    started = time.perf_counter()
    page = open_deck(browser, deck, viewport)
    try:
        result = walk(page, name, viewport)
    finally:
        page.close()
    size = f"{viewport[0]}x{viewport[1]}"
    overflowing = {k: v["problems"][:3] for k, v in result["slides"].items() if v["problems"]}
    too_small = {k: v["scale"] for k, v in result["slides"].items() if v["scale"] < READABLE_SCALE}
    OUT.mkdir(parents=True, exist_ok=True)
    record = {**result, "overflowing": len(overflowing), "too_small": len(too_small)}
    record["seconds"] = round(time.perf_counter() - started, 2)
    (OUT / f"{name}-{size}.json").write_text(json.dumps(record, indent=1) + "\n")
    assert result["reached"] == result["total"], (
        f"{name} at {size}: the Right arrow reached {result['reached']} of the deck's {result['total']} slides"
    )
    assert not overflowing, (
        f"{name} at {size}: {len(overflowing)} of {result['total']} slides do not fit (screenshots in {OUT}): "
        + json.dumps(overflowing, indent=1)
    )
    assert not too_small, f"{name} at {size}: slides shrunk below {READABLE_SCALE} to fit (split them): {too_small}"


@pytest.mark.parametrize("name", DECKS)
def test_widgets_are_replaced_by_a_static_note(decks, name):
    """As many "static in slides" notes as the executed notebook had widget outputs; no widget left to draw."""
    html = (decks / f"{name}.slides.html").read_text(encoding="utf-8")
    assert WIDGET_VIEW not in html, f"{name}: a widget is left in the deck"
    source = (NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8")
    if "interact(" in source:
        assert STATIC_NOTE_CLASS in html, (
            f"{name}: its widgets are gone from the deck without a 'static in slides' note"
        )


def check_notebook():
    """A deck with what the walk must catch: a subslide, a slide of 70 lines, a table of 16 wide columns and a code
    cell (its output saved: nothing runs)."""

    def slide(kind: str) -> dict:
        return {"slideshow": {"slide_type": kind}}

    header = "".join(f"<th>a-wide-column-{i:02d}</th>" for i in range(16))
    table = f"<table><tr>{header}</tr><tr>{'<td>1</td>' * 16}</tr></table>"
    return new_notebook(
        cells=[
            new_markdown_cell("# check", metadata=slide("slide")),
            new_markdown_cell("## a subslide", metadata=slide("subslide")),
            new_markdown_cell("## tall\n\n" + "\n\n".join(f"line {i}" for i in range(70)), metadata=slide("slide")),
            new_code_cell("table", metadata=slide("slide"), outputs=[new_output("display_data", {"text/html": table})]),
            new_code_cell(
                "print('some code')", metadata=slide("slide"), outputs=[new_output("stream", text="some code\n")]
            ),
        ]
    )


def test_the_walk_sees_skipped_subslides_overflow_small_text_and_code(chromium_installed, browser, tmp_path):
    """The same deck twice: as exported (the 70 lines fitted below a readable scale, all else fits), and with its
    code, reveal.js's default navigation and no fitting (a subslide skipped, the tall slide and the table past the
    slide's edges, the code shown)."""
    copy_assets(find_web_assets(), tmp_path)
    nb = check_notebook()
    fitted, raw = tmp_path / "fitted.slides.html", tmp_path / "raw.slides.html"
    fitted.write_text(render_deck(nb, title="fitted"))
    unfitted = render_deck(nb, title="raw", code=True).replace("labtwinFit(Reveal);", "")
    raw.write_text(unfitted.replace("navigationMode: 'linear'", "navigationMode: 'default'"))
    results = {}
    for deck in (fitted, raw):
        page = open_deck(browser, deck, VIEWPORTS[0])
        try:
            results[deck.stem.split(".")[0]] = walk(page, deck.stem, VIEWPORTS[0], out=tmp_path)
        finally:
            page.close()
    good, bad = results["fitted"], results["raw"]
    assert good["reached"] == good["total"] == 5
    assert [v["scale"] < READABLE_SCALE for v in good["slides"].values()] == [False, False, True, False, False]
    assert [v["problems"] for v in good["slides"].values()] == [[]] * 5
    assert bad["reached"] == 4 and bad["total"] == 5
    title, tall, wide, code = (v["problems"] for v in bad["slides"].values())
    assert title == []
    assert any("outside the slide" in p for p in tall), tall
    assert any("table outside the slide" in p for p in wide), wide
    assert "1 code inputs shown" in code, code
