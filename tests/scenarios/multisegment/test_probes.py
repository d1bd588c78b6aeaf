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
    assert not any(k[0].startswith("vm-r1") and k[1].startswith("vm-r2") for k in p)  # racks apart


def test_network_naming_leaks_across_hosts_of_the_physnet(cloud):
    p = rows(cloud, "many", "network")
    assert p[("vm-r2-c", "vm-r2-b", "broadcast")]["verdict"] == "allowed"
    assert p[("vm-r2-c", "vm-r2-b", "icmp-via-gateway")]["verdict"] == "allowed"  # routing follows subnets
    assert probe_metrics(list(p.values()))["arp_leaks"] == 4


def test_one_probes_only_admitted_ports(cloud):
    p = rows(cloud, "one", "network")
    assert {k[0] for k in p} == {"vm-r1-a", "vm-r1-b"}


def test_broadcast_domains_join_transitively():
    domains = {"h1": [{"segments": ["a", "b"]}], "h2": [{"segments": ["b", "c"]}, {"segments": ["d"]}]}
    joined = broadcast_domains(domains)
    assert joined["a"] == joined["c"] != joined["d"]


def test_simulate_records_the_probes_and_counts():
    run = simulate(None, SCENARIO.design({"racks": 1, "hosts_per_rack": 2, "demand": 10}), 1)
    assert len(run.probes) == 8 and run.summary["probe_count"] == 8
    assert set(run.probes.protocol) == {"arp", "icmp", "icmp-via-gateway", "broadcast"}
