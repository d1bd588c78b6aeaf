"""The figures the notebooks' widgets redraw, as a person sees them (issue 18): drawn at most 9 inches wide they
are shown unscaled in a notebook's output area (wider than 900 px at JupyterLab's default width), so a text's
size on screen is its points at the figure's dpi (100, as the inline backend): none may be under 9 px, and no
two texts may sit on each other."""

import matplotlib

matplotlib.use("agg")

import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.text  # noqa: E402
import pytest  # noqa: E402

from labtwin import api  # noqa: E402

MIN_PX, MAX_INCHES = 9, 9


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
    """Every non-empty text drawn, with its box in pixels (tick labels only where their tick is in view: the
    axis keeps labels for ticks outside it, which are not drawn)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    hidden = {id(label) for ax in fig.axes for label in _ticks_out_of_view(ax)}
    found = fig.findobj(lambda a: isinstance(a, matplotlib.text.Text) and a.get_visible() and a.get_text().strip())
    return [(t, t.get_window_extent(renderer)) for t in found if id(t) not in hidden]


def _ticks_out_of_view(ax):
    for axis, (low, high) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        low, high = sorted((low, high))
        for tick in axis.get_major_ticks() + axis.get_minor_ticks():
            if not low <= tick.get_loc() <= high:
                yield from (tick.label1, tick.label2)


def _rotated(text) -> bool:
    return text.get_rotation() % 180 != 0


@pytest.mark.parametrize("draw", [dvr_widget_figure, multisegment_widget_figure, sg_fanout_widget_figure])
def test_a_widget_figure_is_legible_at_a_notebooks_width(draw):
    fig = draw()
    try:
        drawn = texts(fig)
        assert fig.get_size_inches()[0] <= MAX_INCHES
        small = [(t.get_text(), t.get_fontsize()) for t, _ in drawn if t.get_fontsize() * fig.dpi / 72 < MIN_PX]
        assert not small
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
    plt.close(fig)
    assert any(a.overlaps(b) for i, (_, a) in enumerate(drawn) for _, b in drawn[i + 1 :])
    assert min(t.get_fontsize() for t, _ in drawn) * 100 / 72 < MIN_PX
