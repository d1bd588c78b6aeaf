"""The sg-fanout model: PTG counts, per-strategy formulas, growth, the train-2019 case, determinism.

Expected counts are computed here from the formulas (neutron-facts 3.2-3.5),
not read from the model: the model derives them from each strategy's semantics.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from labtwin.description import load_cloud
from labtwin.records import Run
from labtwin.scenarios import get_scenario, topologies_dir
from labtwin.scenarios.sg_fanout.model import simulate_layout, summarize, sweep
from labtwin.scenarios.sg_fanout.model.strategies import (
    IPTABLES_PORT_BASE_RULES,
    OVS_FLOWS_PER_CONJ_RULE,
    OVS_FLOWS_PER_RULE,
    OVS_PORT_BASE_FLOWS,
)
from labtwin.scenarios.sg_fanout.profiles import TRAIN_2019, load_profile, save_profile
from labtwin.scenarios.sg_fanout.spec import generated_layout

SCENARIO = get_scenario("sg-fanout")
R, OTHER = 1, 1  # the generated group: ingress any from itself, egress any


def run_summary(firewall, members, hosts, placement="spread", seed=0, joins=1, leaves=0):
    layout = generated_layout(members, hosts, placement, joins, leaves)
    return summarize(simulate_layout(layout, firewall, "train-2019", seed))


def expected(firewall: str, m: int, hosts_with_members: int) -> tuple[int, int]:
    """(updates, rules_written) for one join onto a host that already has members."""
    b = IPTABLES_PORT_BASE_RULES + OTHER
    f_ovs = OVS_PORT_BASE_FLOWS + OVS_FLOWS_PER_RULE * OTHER + OVS_FLOWS_PER_CONJ_RULE * R
    f_sub = OVS_PORT_BASE_FLOWS + OVS_FLOWS_PER_RULE * (OTHER + R)
    h = hosts_with_members
    return {
        "iptables": (m + 1, (m + 1) * (b + R * m)),
        "ipset": (m + 1 + h, (m + 1) * (b + R) + h),
        "ovs": (m + 1 + h, f_ovs * (m + 1) + 2 * R * h),
        "subtable": (1 + h, f_sub + h),
    }[firewall]


def test_ptg_170_members_one_host_one_join_171_versus_2():
    assert run_summary("iptables", 170, 1, "packed")["updates_total"] == 171
    assert run_summary("subtable", 170, 1, "packed")["updates_total"] == 2


def test_fanout_reaches_every_agent_even_without_members():
    s = run_summary("subtable", 5, 20, "packed", joins=2)
    assert s["rpc_casts"] == 2 and s["rpc_received"] == 2 * 20
    assert s["hosts_with_members"] == 1


@pytest.mark.parametrize("firewall", ["iptables", "ipset", "ovs", "subtable"])
@pytest.mark.parametrize(
    "members,hosts,placement",
    [(170, 1, "packed"), (170, 10, "spread"), (60, 6, "spread"), (200, 100, "spread"), (40, 100, "packed")],
)
def test_h_host_formulas(firewall, members, hosts, placement):
    s = run_summary(firewall, members, hosts, placement)
    updates, rules = expected(firewall, members, min(hosts, members) if placement == "spread" else 1)
    assert (s["updates_total"], s["rules_written"]) == (updates, rules)


@pytest.mark.parametrize("firewall", ["ipset", "ovs", "subtable"])
def test_join_onto_a_host_without_members_creates_its_group_object(firewall):
    # 3 members dealt over 5 hosts: the join lands on compute-4, which has none yet.
    s = run_summary(firewall, 3, 5, "spread")
    per_ip = 2 * R if firewall == "ovs" else 1
    updates, rules = expected(firewall, 3, 3)
    assert s["hosts_with_members"] == 4
    assert s["updates_total"] == updates + 1  # one more group object: the new host's
    assert s["rules_written"] == rules + 4 * per_ip  # created with all M+1 members


def test_refreshes_are_every_referencing_port_except_with_the_subtable():
    assert run_summary("ipset", 80, 4)["refreshes_total"] == 81
    assert run_summary("ovs", 80, 4)["refreshes_total"] == 81
    assert run_summary("subtable", 80, 4)["refreshes_total"] == 1


def test_a_leave_rewrites_the_remaining_members_and_removes_one_filter():
    s = run_summary("iptables", 30, 3, joins=0, leaves=1)
    assert (s["filters_written"], s["filters_removed"]) == (29, 1)


@pytest.mark.parametrize(
    "firewall, filters, groups", [("iptables", 29, 0), ("ipset", 29, 3), ("ovs", 29, 3), ("subtable", 0, 3)]
)
def test_a_leave_per_strategy_removes_the_filter_and_the_address_everywhere(firewall, filters, groups):
    s = run_summary(firewall, 30, 3, joins=0, leaves=1)
    assert (s["filters_written"], s["filters_removed"], s["group_writes"]) == (filters, 1, groups)
    # the removed filter is a changed object too (a diff shows its chains / flows gone)
    assert s["objects_changed"] == (filters if firewall == "iptables" else 0) + 1 + groups


def test_a_host_losing_its_last_member_destroys_its_group_object():
    s = run_summary("ipset", 2, 2, joins=0, leaves=1)  # m-0001 on compute-1, m-0002 (leaves) on compute-2
    assert (s["filters_removed"], s["group_writes"], s["filters_written"]) == (1, 2, 1)


def test_after_a_leave_the_departed_address_is_blocked_by_every_remaining_member():
    run = SCENARIO.simulate(None, SCENARIO.design({"members": "6", "hosts": "2", "leaves": "2"}), 0, "")
    gone = run.probes[run.probes.detail.apply(lambda d: "leave" in d)]
    assert set(gone.verdict) == {"blocked"}
    # m-0006 leaves first (m-0001..5 remain), then m-0005 (m-0001..4); j-0001 was probed at its join
    assert {src: sorted(g.dst) for src, g in gone.groupby("src")} == {
        "m-0006": ["m-0001", "m-0002", "m-0003", "m-0004", "m-0005"],
        "m-0005": ["m-0001", "m-0002", "m-0003", "m-0004"],
    }
    assert not run.probes.duplicated(["src", "dst", "protocol", "port"]).any()


def slopes(df, column):
    return {fw: float(np.polyfit(np.log(g.members), np.log(g[column]), 1)[0]) for fw, g in df.groupby("firewall")}


def test_growth_with_members_on_one_host():
    df = sweep(members=[100, 150, 200, 300, 500, 700, 1000], hosts=[1], placement="packed")
    rules, ready = slopes(df, "rules_written"), slopes(df, "port_ready_s")
    assert 1.8 < rules["iptables"] < 2.2 and 1.8 < ready["iptables"] < 2.2
    for linear in ("ipset", "ovs"):
        assert 0.9 < rules[linear] < 1.1 and 0.7 < ready[linear] < 1.2
    assert abs(rules["subtable"]) < 0.05 and abs(ready["subtable"]) < 0.1


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_train_2019_150_members_one_host(seed):
    assert 60 <= run_summary("iptables", 150, 1, "packed", seed)["port_ready_s"] <= 300
    assert run_summary("subtable", 150, 1, "packed", seed)["port_ready_s"] < 10


def test_probes_every_member_both_ways_and_the_outsider_blocked():
    run = SCENARIO.simulate(None, SCENARIO.design({"members": "12", "hosts": "3"}), 0, "")
    probes = run.probes
    assert (probes.verdict == "allowed").sum() == 2 * 12
    blocked = probes[probes.verdict == "blocked"]
    assert set(zip(blocked.src, blocked.dst)) == {("j-0001", "outsider"), ("outsider", "j-0001")}
    assert probes.latency_s.max() == pytest.approx(run.summary["port_ready_s"])


def test_same_seed_same_bytes(tmp_path):
    design = SCENARIO.design({"members": "40", "hosts": "4", "joins": "3", "leaves": "1"})
    paths = [
        SCENARIO.simulate(None, design, seed, "").save(tmp_path / str(i)) / "records.jsonl"
        for i, seed in enumerate((7, 7, 8))
    ]
    first, again, other = (p.read_bytes() for p in paths)
    assert first == again
    assert first != other
    assert (
        Run.load(tmp_path / "0").summary["updates_total"]
        == SCENARIO.simulate(None, design, 7, "").summary["updates_total"]
    )


def test_topology_gives_group_and_hosts_and_ignores_member_knobs():
    path = topologies_dir() / "sg-fanout.yaml"
    run = SCENARIO.simulate(
        load_cloud(path), SCENARIO.design({"members": "999", "hosts": "50", "firewall": "subtable"}), 0, str(path)
    )
    assert (run.summary["members"], run.summary["hosts"], run.summary["group"]) == (12, 4, "cluster")
    assert "ignored" in run.summary["note"]
    assert run.summary["updates_total"] == 1 + 3  # members on 3 hosts
    assert set(run.probes.protocol) == {"tcp"} and set(run.probes.port) == {22}


def test_scenario_runs_without_a_topology():
    assert SCENARIO.needs_topology is False and SCENARIO.default_topology == "sg-fanout.yaml"
    run = SCENARIO.simulate(None, SCENARIO.design(), 0, "")
    assert run.summary["members"] == 20 and set(run.summary["busy_s"]) == {"compute-1", "compute-2"}


def test_profile_json_round_trip_and_unknown_keys(tmp_path):
    path = save_profile(TRAIN_2019.with_overrides(name="measured", iptables_rule_s=1e-4), tmp_path / "m.json")
    assert load_profile(str(path)).iptables_rule_s == 1e-4
    partial = tmp_path / "p.json"
    partial.write_text(json.dumps({"ovs_flow_s": 1e-3}))
    assert load_profile(partial).ovs_flow_s == 1e-3 and load_profile(partial).polling_interval_s == 2.0
    partial.write_text(json.dumps({"bogus": 1}))
    with pytest.raises(ValueError, match="bogus"):
        load_profile(partial)
    with pytest.raises(ValueError, match="unknown cost profile"):
        load_profile("no-such-profile")


def test_a_cheaper_profile_file_makes_iptables_faster(tmp_path):
    path = save_profile(TRAIN_2019.with_overrides(name="fast", iptables_rule_s=1e-5), tmp_path / "fast.json")
    design = SCENARIO.design({"members": "150", "hosts": "1", "placement": "packed", "profile": str(path)})
    assert SCENARIO.simulate(None, design, 0, "").summary["port_ready_s"] < 10


def test_figures_show_each_strategy_and_its_slope(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from labtwin.scenarios.sg_fanout.figures import growth_figure, ready_figure

    df = sweep(members=[100, 300, 1000], hosts=[1, 10], placement="spread")
    growth = growth_figure(df)
    labels = [t.get_text() for t in growth.axes[0].get_legend().get_texts()]
    assert [label.split()[0] for label in labels] == ["iptables", "ipset", "ovs", "subtable"]
    assert labels[0].startswith("iptables (slope 1.9") or labels[0].startswith("iptables (slope 2.0")
    ready = ready_figure(df)
    assert [ax.get_title() for ax in ready.axes] == ["1 host", "10 hosts"]
    growth.savefig(tmp_path / "growth.png", dpi=40)
    ready.savefig(tmp_path / "ready.png", dpi=40)
    assert (tmp_path / "ready.png").stat().st_size > 2_000
    plt.close("all")
