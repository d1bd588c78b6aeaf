"""How wide a notebook figure may be drawn to be shown at its own size (issue 18: no text under 9 px).

JupyterLab 4 shows an output image at most as wide as the output area (CSS ``max-width: 100%``), which is 848 CSS
pixels in a 1280x800 window (measured in chromium by ``tests/browser``; ``tests/figure_text.py`` holds the
number the tests check figures against). The inline backend prints at 100 dpi, so a figure at most
:data:`NOTEBOOK_WIDTH_IN` wide is shown unscaled, and a 7 pt text is 9.7 px tall. Wider, every text shrinks:
a 7 pt label on a 10-inch figure is 8.2 px.
"""

#: The widest a notebook figure is drawn, in inches (840 px at the inline backend's 100 dpi).
NOTEBOOK_WIDTH_IN = 8.4
#: The smallest text a notebook figure uses, in points: 9.7 px at 100 dpi.
SMALLEST_PT = 7
