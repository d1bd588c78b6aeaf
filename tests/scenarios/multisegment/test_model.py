"""The multisegment model: IPAM 409s and exhaustion, segments added, bridge names, migration."""

from __future__ import annotations

import hashlib
import random
from collections import Counter

import pytest

from labtwin.records import record_line
from labtwin.scenarios.multisegment import SCENARIO
from labtwin.scenarios.multisegment.model import expected_l2_domains, simulate
from labtwin.scenarios.multisegment.model.agents import (
    bridge_name,
    get_interface_name,
    make_agent,
    vlan_subinterface_name,
)
from labtwin.scenarios.multisegment.model.cloud import build_ipam, generate_cloud
from labtwin.scenarios.multisegment.model.ipam import NO_SEGMENT, IpamError, SegmentInfo


def run(cloud=None, seed=7, **knobs):
    base = {"racks": 1, "hosts_per_rack": 1, "demand": 1500}
    return simulate(cloud, SCENARIO.design({**base, **knobs}), seed)


def events(result, kind):
    return [e for e in result.records if getattr(e, "kind", None) == kind]


def counted(records) -> int:
    """Requests in allocation records: one each, or a batch's ``count``."""
    return sum(e.detail.get("count", 1) for e in records)


@pytest.fixture(scope="module")
def topology():
    cloud, _ = SCENARIO.cloud()
    return cloud


# --- the must-hold numbers -------------------------------------------------------------
def test_one_segment_per_host_fills_its_22_and_fails_the_rest():
    s = run(segments_per_host="one").summary
    assert s["allocations_ok"] == 1020
    assert s["allocations_failed"]["subnet_exhausted"] == 480
    assert s["allocations_failed_total"] == 480
    assert s["segments_needed"] == 1
    assert s["segments_per_host_max"] == 1


def test_one_with_a_second_segment_mapped_gets_409s():
    result = run(segments_per_host="one", operator="always")
    s = result.summary
    assert s["allocations_ok"] == 1020
    assert s["allocations_failed"]["host_connected_to_multiple_segments"] == 480
    assert s["segments_needed"] == 2 and s["segments_per_host_max"] == 2
    failed = events(result, "allocation_failed")
    assert {e.detail["status"] for e in failed} == {409}
    added = events(result, "segment_added")[0]
    assert all(e.t >= added.t for e in failed)  # the 409s start once the segment is mapped
    assert s["dhcp_unserved"] == ["rack1-s2"]  # one DHCP port per network per agent, pre-2023


def test_many_allocates_everything_over_two_segments():
    result = run(segments_per_host="many")
    s = result.summary
    assert s["allocations_ok"] == 1500 and s["allocations_failed_total"] == 0
    assert s["segments_needed"] == 2 and s["segments_added"] == 1
    per_segment: Counter = Counter()
    for e in events(result, "allocation_ok"):
        per_segment[e.detail["segment"]] += e.detail.get("count", 1)
    assert per_segment == {"r1-seg1": 1020, "rack1-s2": 480}
    assert s["free_addresses"]["r1-seg1-v4"] == 0


def test_network_naming_merges_two_segments_in_one_bridge():
    s = run(segments_per_host="many", bridge_naming="network").summary
    assert s["bridge_collision_count"] == 1
    (collision,) = s["bridge_collisions"]
    assert collision["segments"] == ["r1-seg1", "rack1-s2"]
    assert s["bridge_names"]["r1-c1"] == [collision["device"]]


def test_segment_naming_has_no_collision_and_names_fit():
    s = run(segments_per_host="many", bridge_naming="segment").summary
    assert s["bridge_collision_count"] == 0
    assert len(s["bridge_names"]["r1-c1"]) == 2
    assert s["names_fit"] and s["longest_interface_name_len"] <= 15
    assert all(len(n) == 14 and n.startswith("brq") for n in s["bridge_names"]["r1-c1"])


@pytest.mark.parametrize("naming,collisions", [("network", 1), ("segment", 0)])
def test_ovs_local_vlans_follow_the_manager_key(naming, collisions):
    s = run(segments_per_host="many", bridge_naming=naming, agent="ovs").summary
    assert s["bridge_collision_count"] == collisions
    lvids = s["local_vlans"]["r1-c1"]
    assert len(set(lvids.values())) == 2 - collisions


# --- determinism ----------------------------------------------------------------------
def test_same_seed_same_records_and_other_seed_differs():
    knobs = {"segments_per_host": "many", "racks": 2, "hosts_per_rack": 3, "demand": 400}
    a, b, c = run(seed=3, **knobs), run(seed=3, **knobs), run(seed=4, **knobs)
    lines = lambda r: [record_line(x) for x in r.records]  # noqa: E731
    assert lines(a) == lines(b) and a.summary == b.summary
    assert lines(a) != lines(c)


def test_arrivals_are_poisson_over_the_horizon():
    from labtwin.scenarios.multisegment.model.cloud import Rack
    from labtwin.scenarios.multisegment.model.demand import draw

    rack = Rack("rack1", "physnet-r1", ("h1", "h2", "h3", "h4"))
    arrivals = draw(rack, 1000, 10 * 86400.0, seed=7)
    gaps = [b - a for a, b in zip([0.0, *arrivals.times[:-1]], arrivals.times)]
    mean = sum(gaps) / len(gaps)
    assert mean == pytest.approx(10 * 86400 / 1000, rel=0.15)
    assert sorted(gaps)[500] < mean  # exponential gaps: median below the mean
    assert Counter(arrivals.host(i) for i in range(1000)).keys() == set(rack.hosts)  # every host drawn
    result = run(segments_per_host="many", demand=1000, days=10)
    assert result.summary["requests"] == 1000
    times = [e.detail.get("until", e.t) for e in result.records if getattr(e, "kind", "").startswith("allocation")]
    assert max(times) == pytest.approx(arrivals.times[-1], rel=0.2) and max(times) < 10 * 86400 * 1.2


# --- operator policy --------------------------------------------------------------------
def test_lead_time_costs_allocations_unless_the_operator_acts_early():
    late = run(segments_per_host="many", lead_time_h=24, days=30).summary
    early = run(segments_per_host="many", lead_time_h=24, days=30, add_segment_at=200).summary
    assert late["allocations_failed"]["subnet_exhausted"] > 0
    assert early["allocations_failed_total"] == 0 and early["allocations_ok"] == 1500


# --- migration --------------------------------------------------------------------------
def test_rolling_restart_moves_every_port_of_a_linux_bridge_host():
    result = run(
        segments_per_host="many", bridge_naming="segment", migration="rolling-restart", migrate_at=0.9, hosts_per_rack=2
    )
    s = result.summary
    assert set(s["downtime_s"]) == {"r1-c1", "r1-c2"} and all(v > 0 for v in s["downtime_s"].values())
    restarts = [e for e in events(result, "agent_restart") if e.detail["phase"] == "start"]
    assert s["ports_affected"] == sum(e.detail["ports"] for e in restarts) > 0
    assert s["bridge_collisions_seen"] > 0 and s["bridge_collision_count"] == 0  # migration fixed the leak
    stops = [e.t for e in events(result, "agent_restart") if e.detail["phase"] == "stop"]
    assert stops[1] >= stops[0] + s["downtime_s"]["r1-c1"]  # one host at a time


def test_restart_without_renaming_affects_no_port():
    s = run(segments_per_host="many", bridge_naming="network", migration="rolling-restart").summary
    assert s["ports_affected"] == 0 and s["downtime_s"]["r1-c1"] > 0


def test_ovs_migration_moves_only_the_second_segments_ports():
    result = run(
        segments_per_host="many", bridge_naming="segment", agent="ovs", migration="rolling-restart", migrate_at=0.95
    )
    s = result.summary
    started = events(result, "migration_start")[0].t
    before = [e for e in events(result, "allocation_ok") if e.detail["segment"] == "rack1-s2"]
    assert all(e.detail.get("until", e.t) < started or e.t > started for e in before)  # no batch spans it
    assert 0 < s["ports_affected"] == counted(e for e in before if e.t < started) + 1  # and its DHCP port


# --- Neutron's naming and IPAM pieces --------------------------------------------------------
def test_names_follow_neutron():
    seg = SegmentInfo("s", "0123456789abcdef", "fedcba9876543210", "p", 2001)
    assert bridge_name(seg, "network") == "brqfedcba98765"
    assert bridge_name(seg, "segment") == "brq0123456789a"
    digest = hashlib.sha1(b"enp175s0f1np1").hexdigest()[:6]
    assert vlan_subinterface_name("enp175s0f1np1", 2001) == "enp1" + digest + ".2001"
    assert vlan_subinterface_name("enp175s0f1np1", 7) == "enp175s0f1np1.7"  # fits: kept as is
    assert get_interface_name("br-provider", "int-") == "int-br-provider"


def test_host_without_mapping_reaches_no_segment():
    cloud = generate_cloud(1, 1, 22, "linuxbridge")
    ipam = build_ipam(cloud, "routed", "many", random.Random(0))
    ipam.host_physnets["lonely"] = frozenset()
    with pytest.raises(IpamError) as err:
        ipam.allocate("lonely")
    assert err.value.reason == NO_SEGMENT
    assert len(ipam.subnets[0].free) == 1021  # a /22 pool: 1024 - network - broadcast - gateway


# --- the default topology ------------------------------------------------------------------
def test_default_topology_rack_with_two_segments_409s_under_one(topology):
    result = run(topology, segments_per_host="one", demand=300)
    failed = events(result, "allocation_failed")
    rack2 = [e for e in failed if e.host.startswith("r2-") or e.detail.get("rack") == "rack2"]
    assert counted(rack2) == 300 + 3  # the demand and the file's three rack2 ports
    assert {e.detail["reason"] for e in rack2} == {"host_connected_to_multiple_segments"}


def test_expected_l2_domains_predict_the_leak(topology):
    design = SCENARIO.design({"segments_per_host": "many", "bridge_naming": "network"})
    domains = expected_l2_domains(topology, design)
    assert [d["segments"] for d in domains["r2-c1"]] == [["r2-s1", "r2-s2"]]
    assert [h for h, ds in domains.items() if any(d["leak"] for d in ds)] == ["r2-c1"]
    design = SCENARIO.design({"segments_per_host": "many", "bridge_naming": "segment"})
    assert not any(d["leak"] for ds in expected_l2_domains(topology, design).values() for d in ds)
    design = SCENARIO.design({"segments_per_host": "one", "bridge_naming": "segment"})
    assert not any(h.startswith("r2-") for h in expected_l2_domains(topology, design))


def test_agent_rekey_reports_moved_ports():
    agent = make_agent("linuxbridge", "h", {"p": "eth0"}, "network")
    a = SegmentInfo("a", "aaaaaaaaaaaaaaaa", "nnnnnnnnnnnnnnnn", "p", 10)
    b = SegmentInfo("b", "bbbbbbbbbbbbbbbb", "nnnnnnnnnnnnnnnn", "p", 11)
    agent.plug("port-1", "vm1", a)
    agent.plug("port-2", "vm2", b)
    assert agent.collisions()[0]["segments"] == ["a", "b"]
    _, moved = agent.rekey("segment")
    assert moved == 2 and agent.collisions() == []


@pytest.mark.parametrize("module", ["ipam"])
def test_doctests(module):
    import doctest
    import importlib

    failed, tried = doctest.testmod(importlib.import_module(f"labtwin.scenarios.multisegment.model.{module}"))
    assert tried > 0 and failed == 0


# --- figures and tables (read the records, recompute nothing) ------------------------------
def test_report_reads_the_run(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from labtwin.scenarios.multisegment import figures

    leak = run(segments_per_host="many", bridge_naming="network", migration="rolling-restart", demand=1100)
    frame = figures.allocation_frame(leak)
    assert frame["ok"].iloc[-1] == leak.summary["allocations_ok"] == 1100
    assert list(figures.segment_additions(leak)["segment"]) == ["rack1-s2"]
    table = figures.bridge_table(leak)
    assert table["collision"].tolist() == [True] and table["segments"].iloc[0] == "r1-seg1, rack1-s2"
    for fig in (figures.allocation_figure([leak, run(segments_per_host="one")]), figures.migration_timeline(leak)):
        fig.savefig(tmp_path / "f.png")
        assert (tmp_path / "f.png").stat().st_size > 1000
