"""The figures the notebooks' widgets redraw, as a person sees them (issue 18): no text under 9 px at a notebook's
width (``figure_text``: its points at the inline backend's 100 dpi, scaled to the output area), and no two texts
on each other. Every figure a notebook shows, static ones included, is measured for size by ``test_notebooks``."""

import matplotlib

matplotlib.use("agg")

import figure_text  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from labtwin import api  # noqa: E402
from labtwin.figure_size import NOTEBOOK_WIDTH_IN  # noqa: E402


def dvr_widget_figure():
    from labtwin.scenarios.dvr.figures import path_figure

    return path_figure(api.simulate("dvr", api.topologies_dir() / "dvr.yaml", 1), ["ns-snat"])


def multisegment_widget_figure():
    from labtwin.scenarios.multisegment.figures import allocation_figure

    designs = [("one", "network"), ("one", "segment"), ("many", "network"), ("many", "segment")]
    runs = [
        api.simulate("multisegment", segments_per_host=s, bridge_naming=b, racks=1, hosts_per_rack=1, demand=1500)
        for s, b in designs
    ]
    return allocation_figure(runs)


def sg_fanout_widget_figure():
    from labtwin.scenarios.sg_fanout.figures import join_figure
    from labtwin.scenarios.sg_fanout.model import sweep

    run = api.simulate("sg-fanout", seed=1, members=170, hosts=10, placement="spread", firewall="iptables")
    curve = sweep(members=[10, 30, 100, 1000], hosts=(10,), firewalls=("iptables",), placement="spread", seed=1)
    return join_figure(run, curve)


def texts(fig):
    """Every text drawn (``figure_text.texts``), with its box in pixels."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return [(text, text.get_window_extent(renderer)) for text in figure_text.texts(fig)]


def _rotated(text) -> bool:
    return text.get_rotation() % 180 != 0


@pytest.mark.parametrize("draw", [dvr_widget_figure, multisegment_widget_figure, sg_fanout_widget_figure])
def test_a_widget_figure_is_legible_at_a_notebooks_width(draw):
    fig = draw()
    try:
        drawn = texts(fig)
        assert fig.get_size_inches()[0] <= NOTEBOOK_WIDTH_IN  # shown at its own size
        assert figure_text.too_small(fig, fig.dpi) == []
        on_each_other = [
            (a.get_text(), b.get_text())
            for i, (a, box_a) in enumerate(drawn)
            for b, box_b in drawn[i + 1 :]
            if box_a.overlaps(box_b) and not (_rotated(a) and _rotated(b))  # slanted labels' boxes overlap
        ]
        assert not on_each_other
    finally:
        plt.close(fig)


def test_the_check_finds_titles_on_each_other_and_small_text():
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3))
    left.set_title("a title long enough to run into the title of the panel beside it, as sg-fanout's did")
    right.set_title("the other panel's title")
    right.set_xlabel("small", fontsize=5)
    drawn = texts(fig)
    assert any(a.overlaps(b) for i, (_, a) in enumerate(drawn) for _, b in drawn[i + 1 :])
    assert [text for text, _ in figure_text.too_small(fig, 100)] == ["small"]
    plt.close(fig)
