"""The text of a matplotlib figure at the size a person sees it in a notebook (issue 18: none under 9 px).

Standard library and matplotlib only: the notebook test runs this file's source inside each notebook's kernel
(:func:`record_printed_figures`), so every figure the notebook shows, widget or static, is measured as the inline
backend prints it, and ``test_figures_legible`` measures the widget figures with the same functions.

A text's size on screen is its points at the printing dpi, scaled down when the figure is wider than the output
area: JupyterLab shows an image at most as wide as the area (CSS ``max-width: 100%``). The area is
:data:`OUTPUT_AREA_PX` wide in the browser harness's 1280x800 window (measured there, and checked by
``tests/browser``). Stated: the image's width is taken as the figure's width at the printing dpi; the inline
backend's "tight" crop can make it a little narrower (then shown larger) or wider.
"""

from __future__ import annotations

MIN_PX = 9
#: Width in CSS pixels of a notebook's output area in JupyterLab 4 in a 1280x800 window (the browser harness's).
OUTPUT_AREA_PX = 848


def texts(fig) -> list:
    """Every visible, non-empty text of *fig* (tick labels only where their tick is in view: an axis keeps labels
    for ticks outside it, which are not drawn)."""
    import matplotlib.text

    hidden = {id(label) for ax in fig.axes for label in _ticks_out_of_view(ax)}
    found = fig.findobj(lambda a: isinstance(a, matplotlib.text.Text) and a.get_visible() and a.get_text().strip())
    return [text for text in found if id(text) not in hidden]


def _ticks_out_of_view(ax):
    for axis, (low, high) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        low, high = sorted((low, high))
        for tick in axis.get_major_ticks() + axis.get_minor_ticks():
            if not low <= tick.get_loc() <= high:
                yield from (tick.label1, tick.label2)


def shown_scale(width_px: float, area_px: float = OUTPUT_AREA_PX) -> float:
    """How much an image *width_px* wide is scaled to fit an output area *area_px* wide."""
    return min(1.0, area_px / width_px)


def too_small(fig, dpi: float, area_px: float = OUTPUT_AREA_PX) -> list[tuple[str, float]]:
    """Each text of *fig*, printed at *dpi* and shown in an area *area_px* wide, under :data:`MIN_PX`: (text, px)."""
    scale = shown_scale(fig.get_size_inches()[0] * dpi, area_px)
    sizes = [(text.get_text()[:40], round(text.get_fontsize() * dpi / 72 * scale, 1)) for text in texts(fig)]
    return [(text, px) for text, px in sizes if px < MIN_PX]


def record_printed_figures() -> list[dict]:
    """From now on, every figure printed (by the inline backend or ``savefig``) adds to the returned list: its
    number, title, width in pixels and its texts under :data:`MIN_PX` as shown."""
    from matplotlib.backend_bases import FigureCanvasBase

    printed: list[dict] = []
    original = FigureCanvasBase.print_figure

    def print_and_measure(canvas, *args, **kwargs):
        result = original(canvas, *args, **kwargs)
        fig = canvas.figure
        dpi = kwargs.get("dpi") or fig.dpi
        dpi = fig.dpi if dpi == "figure" else float(dpi)
        titles = [ax.get_title() for ax in fig.axes if ax.get_title()] or [fig.get_suptitle()]
        printed.append(
            {
                "figure": fig.number if hasattr(fig, "number") else None,
                "title": titles[0][:60],
                "width_px": round(fig.get_size_inches()[0] * dpi),
                "dpi": dpi,
                "inches": [round(float(x), 2) for x in fig.get_size_inches()],
                "too_small": too_small(fig, dpi),
            }
        )
        return result

    FigureCanvasBase.print_figure = print_and_measure
    return printed
