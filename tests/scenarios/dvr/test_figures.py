"""dvr_figures.crossing_table: where each class is routed, per design."""

from pathlib import Path

import pytest

from labtwin.scenarios.dvr import SCENARIO
from labtwin.scenarios.dvr.figures import crossing_table, style_crossings
from labtwin.scenarios.dvr.model import CLASSES, simulate


@pytest.fixture(scope="module")
def runs():
    cloud, path = SCENARIO.cloud(None)
    return {
        label: simulate(cloud, knobs, 1, path)
        for label, knobs in {"legacy": {"router": "legacy"}, "dvr": {}, "learned": {"vip_arp": "learned"}}.items()
    }


def test_crossing_table_says_where_each_class_goes(runs):
    table = crossing_table(runs)
    assert list(table.columns) == ["legacy", "dvr", "learned"]
    assert set(CLASSES) <= set(table.index)
    routed = [c for c in CLASSES if c != "ew-same-network"]
    assert (table.loc[routed, "legacy"] == "NN").all()
    assert (table.loc["ew-same-network"] == "local").all()  # switched between compute nodes in every design
    assert table.loc["ew-cross-host", "dvr"] == "local" and table.loc["ns-snat", "dvr"] == "NN"
    assert table.loc["vip-after-failover", "dvr"] == "local ✗"
    assert table.loc["vip-after-failover", "learned"] == "local"
    assert table.loc["network-node share", "legacy"] == "100%"


def test_style_crossings_marks_network_node_and_unreachable_cells(runs):
    html = style_crossings(crossing_table(runs)).to_html()
    assert "#fde0dd" in html and "line-through" in html


def test_the_model_beside_a_run_observed_on_real_ovn():
    """The notebook's OVN table: every class of the recorded run, each with all of its comparisons agreeing; a
    path observed elsewhere shows as fewer agreeing comparisons on that class only."""
    from dataclasses import replace

    from labtwin.api import simulate_beside
    from labtwin.records import Probe, Run
    from labtwin.scenarios.dvr.figures import observed_beside_model

    observed = Run.load(Path(__file__).resolve().parents[3] / "traces" / "dvr" / "ovn")
    table = observed_beside_model(simulate_beside(observed, "topologies/dvr.yaml"), observed)
    assert len(table) == 9 and set(table.agree) == {"8/8"} and (table.model == table.observed).all()
    records = [
        replace(r, detail={**r.detail, "hops": r.detail["hops"][:-1]})
        if isinstance(r, Probe) and r.detail.get("class") == "ns-snat"
        else r
        for r in observed.records
    ]
    moved = observed_beside_model(simulate_beside(observed, "topologies/dvr.yaml"), replace(observed, records=records))
    assert moved.agree["ns-snat"] == "7/8" and (moved.agree.drop("ns-snat") == "8/8").all()


# --- the path diagrams, as a person reads them (issue 18: labels legible, never on a marker) --------------------
from labtwin import api  # noqa: E402
from labtwin.scenarios.dvr import figures  # noqa: E402


def drawn_boxes(fig):
    """The hop markers' and the hop labels' boxes on the drawn figure, in pixels: ``(x0, y0, x1, y1)``."""
    import matplotlib.collections
    import matplotlib.text

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    radius = (figures.NODE_SIZE**0.5) / 2 * fig.dpi / 72
    markers, labels = [], []
    for ax in fig.axes:
        for collection in ax.collections:
            if isinstance(collection, matplotlib.collections.PathCollection):
                for x, y in ax.transData.transform(collection.get_offsets()):
                    markers.append((x - radius, y - radius, x + radius, y + radius))
        for text in ax.texts:
            if isinstance(text, matplotlib.text.Annotation):
                box = text.get_window_extent(renderer)
                labels.append((box.x0, box.y0, box.x1, box.y1))
    return markers, labels


def overlapping(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.mark.parametrize("topology", ["dvr.yaml", "minimal.yaml"])
@pytest.mark.parametrize("router", ["legacy", "dvr", "ovn"])
def test_path_labels_never_sit_on_a_marker_or_on_each_other(topology, router):
    import matplotlib.pyplot as plt

    fig = figures.path_figure(api.simulate("dvr", api.topologies_dir() / topology, 1, router=router))
    markers, labels = drawn_boxes(fig)
    plt.close(fig)
    assert len(labels) > 20 and len(markers) > len(labels)
    assert not [(label, m) for label in labels for m in markers if overlapping(label, m)]
    assert not [(a, b) for i, a in enumerate(labels) for b in labels[i + 1 :] if overlapping(a, b)]


def test_the_check_finds_a_label_on_a_marker():
    """The same check on labels placed as they were before (in data units, 0.2 below the hop, two-line namespace
    labels): it finds them on markers and on each other."""
    import matplotlib.pyplot as plt

    fig = figures.path_figure(api.simulate("dvr", api.topologies_dir() / "dvr.yaml", 1, router="legacy"))
    for ax in fig.axes:
        for text in ax.texts:
            text.set_position((0, 0))  # every label moved onto its own hop
            text.set_text(text.get_text() + "\nqrouter")
    markers, labels = drawn_boxes(fig)
    plt.close(fig)
    assert [label for label in labels for m in markers if overlapping(label, m)]


def test_every_text_of_a_path_figure_is_at_least_9_px_at_its_notebook_size():
    """Drawn 8 inches wide, narrower than a notebook's output area, the figure is shown at its own size: each
    text's font in pixels is its points at the figure's dpi (matplotlib's 100, as the inline backend)."""
    import matplotlib.pyplot as plt

    fig = figures.path_figure(api.simulate("dvr", api.topologies_dir() / "dvr.yaml", 1))
    assert fig.get_size_inches()[0] <= 8
    sizes = [t.get_fontsize() * fig.dpi / 72 for t in fig.findobj(lambda a: hasattr(a, "get_fontsize"))]
    plt.close(fig)
    assert sizes and min(sizes) >= 9, sorted(sizes)[:5]
