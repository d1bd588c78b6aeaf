"""The sg-fanout notebook's live figure: per-host writes add up to the summary, the run sits on its curve."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import json  # noqa: E402
import statistics  # noqa: E402
from pathlib import Path  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from labtwin.api import simulate  # noqa: E402
from labtwin.calibration import Calibration, pace_scale  # noqa: E402
from labtwin.records import Run  # noqa: E402
from labtwin.scenarios.sg_fanout.calibrate import MEASURED_PROFILE  # noqa: E402
from labtwin.scenarios.sg_fanout.figures import (  # noqa: E402
    calibration_figure,
    join_figure,
    ready_per_join,
    twin_figure,
    twin_table,
    writes_per_host,
)
from labtwin.scenarios.sg_fanout.model import sweep  # noqa: E402


@pytest.mark.parametrize("firewall", ["iptables", "ipset", "ovs", "subtable"])
def test_writes_per_host_add_up_to_updates_total(firewall):
    run = simulate("sg-fanout", seed=1, firewall=firewall, members=40, hosts=4, placement="spread")
    writes = writes_per_host(run)
    assert list(writes["host"]) == [f"compute-{i}" for i in range(1, 5)]
    assert int(writes["filters"].sum() + writes["group_objects"].sum()) == run.summary["updates_total"]


def test_subtable_writes_one_group_object_per_host_and_one_filter():
    run = simulate("sg-fanout", seed=1, firewall="subtable", members=30, hosts=3, placement="spread")
    writes = writes_per_host(run)
    assert list(writes["group_objects"]) == [1, 1, 1]
    assert int(writes["filters"].sum()) == 1


def test_join_figure_draws_the_run_on_its_curve(tmp_path):
    run = simulate("sg-fanout", seed=1, firewall="iptables", members=170, hosts=1, placement="packed")
    curve = sweep(members=(10, 100, 1000), hosts=(1,), firewalls=("iptables",), placement="packed", seed=1)
    fig = join_figure(run, curve)
    left, right = fig.axes
    assert left.get_title().startswith("171 updates: 171 port filters + 0 group objects")
    line, dot = right.get_lines()[:2]
    assert list(line.get_xdata()) == [10, 100, 170, 1000]
    assert dot.get_ydata()[0] == pytest.approx(run.summary["port_ready_s"])
    fig.savefig(tmp_path / "join.png", dpi=40)
    assert (tmp_path / "join.png").stat().st_size > 2_000
    plt.close("all")


TRACES = Path(__file__).resolve().parents[3] / "traces" / "sg-fanout"
FIREWALLS = ("iptables", "ipset", "ovs", "subtable")
EXAMPLE = Calibration.from_file(MEASURED_PROFILE)


def trace_pairs() -> dict:
    """The committed per-strategy traces, each beside the model on its design (calibrated profile)."""
    pairs = {}
    for fw in FIREWALLS:
        emulated = Run.load(TRACES / fw)
        knobs = {**emulated.design, "profile": str(MEASURED_PROFILE)}  # the calibration of the traces' machine
        pairs[fw] = (simulate("sg-fanout", seed=emulated.seed, **knobs), emulated)
    return pairs


def test_ready_per_join_has_one_time_per_join_and_the_summary_is_their_median():
    for model, emulated in trace_pairs().values():
        for run in (model, emulated):
            times = ready_per_join(run)
            assert len(times) == run.summary["joins"] == 5
            assert statistics.median(times) == pytest.approx(run.summary["port_ready_s"], abs=1e-6)


def test_twin_table_sets_model_beside_emulation_per_strategy():
    pairs = trace_pairs()
    table = twin_table(pairs)
    assert list(table.index) == list(FIREWALLS)
    assert (table.updates_total_model == table.updates_total_emulation).all()
    assert table.loc["subtable", "updates_total_model"] < table.loc["ipset", "updates_total_model"]
    model, emulated = pairs["ovs"]
    pace = table.loc["ovs", "pace"]
    assert pace == pytest.approx(pace_scale(emulated.summary["pace_s"], EXAMPLE.method["pace_s"]["ovs"]))
    expected = (
        abs(model.summary["port_ready_s"] * pace - emulated.summary["port_ready_s"]) / emulated.summary["port_ready_s"]
    )
    assert table.loc["ovs", "ready_error"] == pytest.approx(expected)


def test_twin_figure_draws_counts_and_every_join_with_the_tolerance_band():
    pairs = trace_pairs()
    fig = twin_figure(pairs, band=(1.25, 1.55))
    left, right = fig.axes
    heights = [round(b.get_height()) for b in left.patches]
    # per strategy: updates (model, emulation), changed (model, emulation); bars drawn series by series
    table = twin_table(pairs)
    assert heights[:4] == list(table.updates_total_model) and heights[4:8] == list(table.updates_total_emulation)
    dots = [line for line in right.get_lines() if line.get_marker() == "o"]
    assert [len(d.get_ydata()) for d in dots] == [5, 5, 5, 5]
    np.testing.assert_allclose(dots[1].get_ydata(), np.array(ready_per_join(pairs["ipset"][1])) * 1e3)
    band = right.collections[0].get_paths()[0].vertices[:, 1]
    centre = table.loc["iptables", "port_ready_s_model"] * table.loc["iptables", "pace"] * 1e3
    assert (band.min(), band.max()) == pytest.approx((centre / 1.25, centre * 1.55))
    plt.close(fig)


def test_calibration_figure_shows_each_strategy_and_the_unfitted_check():
    report = json.loads((TRACES / "calibration.json").read_text())
    fig = calibration_figure(report)
    assert [ax.get_title() for ax in fig.axes] == list(FIREWALLS)
    check = {row["firewall"]: row for row in report["check"]}
    for ax in fig.axes:
        squares = [line for line in ax.get_lines() if line.get_marker() == "s"]
        assert len(squares) == 1
        assert squares[0].get_xdata()[0] == check[ax.get_title()]["members"] == 30
        assert squares[0].get_ydata()[0] == pytest.approx(check[ax.get_title()]["emulation_s"] * 1e3)
    emulated = [y for ax in fig.axes for line in ax.get_lines() if line.get_marker() in "os" for y in line.get_ydata()]
    low, high = fig.axes[0].get_ylim()  # shared: every point in view, in every panel (ovs's were cut off)
    assert low == 0 and max(emulated) <= high
    plt.close(fig)
