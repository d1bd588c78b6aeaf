"""The model's probe predictions: L2 inside a segment, one hop across, leaks where bridges merge."""

import pytest

from labtwin.scenarios.multisegment import SCENARIO
from labtwin.scenarios.multisegment.model import simulate
from labtwin.scenarios.multisegment.model.probes import broadcast_domains, predicted_probes, probe_metrics


@pytest.fixture(scope="module")
def cloud():
    return SCENARIO.cloud()[0]


def rows(cloud, sph, naming):
    design = SCENARIO.design({"segments_per_host": sph, "bridge_naming": naming})
    return {(r["src"], r["dst"], r["protocol"]): r for r in predicted_probes(cloud, design)}


def test_same_segment_is_l2_and_other_segment_one_hop(cloud):
    p = rows(cloud, "many", "segment")
    assert p[("vm-r2-a", "vm-r2-c", "arp")]["verdict"] == "allowed"
    assert p[("vm-r2-a", "vm-r2-c", "icmp")]["hops"] == 0
    assert p[("vm-r2-a", "vm-r2-b", "arp")]["verdict"] == "blocked"
    assert p[("vm-r2-a", "vm-r2-b", "icmp-via-gateway")]["verdict"] == "allowed"
    assert p[("vm-r2-a", "vm-r2-b", "icmp")]["hops"] == 1
    across = [k for k in p if k[0][:5] != k[1][:5]]  # between racks: routed by both racks' routers, no L2
    assert across and all(k[2].startswith("icmp") and p[k]["hops"] == 2 for k in across)


def test_network_naming_leaks_across_hosts_of_the_physnet(cloud):
    p = rows(cloud, "many", "network")
    assert p[("vm-r2-c", "vm-r2-b", "broadcast")]["verdict"] == "allowed"
    assert p[("vm-r2-c", "vm-r2-b", "icmp-via-gateway")]["verdict"] == "allowed"  # routing follows subnets
    assert probe_metrics(list(p.values()))["arp_leaks"] == 4


def test_one_probes_only_admitted_ports(cloud):
    p = rows(cloud, "one", "network")
    assert {k[0] for k in p} == {"vm-r1-a", "vm-r1-b", "vm-r3-a"}  # rack 3's one admitted VM: inter-rack only
    assert not any(k[0].startswith("vm-r2") or k[1].startswith("vm-r2") for k in p)  # refused under `one`


def test_broadcast_domains_join_transitively():
    domains = {"h1": [{"segments": ["a", "b"]}], "h2": [{"segments": ["b", "c"]}, {"segments": ["d"]}]}
    joined = broadcast_domains(domains)
    assert joined["a"] == joined["c"] != joined["d"]


def test_simulate_records_the_probes_and_counts():
    run = simulate(None, SCENARIO.design({"racks": 1, "hosts_per_rack": 2, "demand": 10}), 1)
    assert len(run.probes) == 8 and run.summary["probe_count"] == 8
    assert set(run.probes.protocol) == {"arp", "icmp", "icmp-via-gateway", "broadcast"}


def test_racks_reach_each_other_through_their_routers_two_hops(cloud):
    got = rows(cloud, "many", "network")
    cross = {k: r for k, r in got.items() if r["hops"] == 2}
    racks = {cloud.host[cloud.port[r["src"]].host].rack for r in cross.values()}
    assert len(racks) == 3 and len(cross) == 12  # the first VM of each rack to each other's, icmp and via-gateway
    assert {k[2] for k in cross} == {"icmp", "icmp-via-gateway"}
    assert all(r["verdict"] == "allowed" for r in cross.values())


def test_inter_rack_pairs_take_the_first_vm_of_each_rack():
    from labtwin.scenarios.multisegment.spec import inter_rack_pairs

    vms = [("a1", "r1"), ("a2", "r1"), ("b1", "r2"), ("c1", "r3")]
    assert inter_rack_pairs(vms) == [("a1", "b1"), ("a1", "c1"), ("b1", "a1"), ("b1", "c1"), ("c1", "a1"), ("c1", "b1")]
    assert inter_rack_pairs([("a1", "r1"), ("a2", "r1")]) == []
