"""The sg-fanout notebook's live figure: per-host writes add up to the summary, the run sits on its curve."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from labtwin.api import simulate  # noqa: E402
from labtwin.model.sg_fanout import sweep  # noqa: E402
from labtwin.report.sg_fanout_figures import join_figure, writes_per_host  # noqa: E402


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
