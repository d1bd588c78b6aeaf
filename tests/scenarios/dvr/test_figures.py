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
