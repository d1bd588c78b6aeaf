"""dvr_figures.crossing_table: where each class is routed, per design."""

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
