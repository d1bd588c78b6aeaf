"""labtwin.testing: each helper passes on a design that holds, and fails in domain words."""

import dataclasses

import pytest

from labtwin.api import simulate
from labtwin.scenarios import get_scenario
from labtwin.testing import (
    RunMismatch,
    assert_allocations_succeed,
    assert_blocked,
    assert_interface_names_fit,
    assert_no_bridge_collisions,
    assert_only_classes_cross_network_node,
    assert_path_avoids,
    assert_path_crosses,
    assert_reachable,
    assert_ready_within,
    assert_twin_agrees,
    assert_updates_at_most,
    describe_run,
)
from labtwin.twin import compare


def fails(match):
    return pytest.raises(AssertionError, match=match)


def test_probe_helpers_name_ports_flow_and_reason():
    run = simulate("reachability")
    assert_reachable(run, "vm-a", "vm-c", "tcp:22")
    assert_blocked(run, "vm-a", "vm-c", "icmp")
    with fails(r"vm-a reaches vm-c on tcp:22, expected it blocked(.|\n)*reason: egress default"):
        assert_blocked(run, "vm-a", "vm-c", "tcp:22")
    with pytest.raises(
        RunMismatch, match="never probed vm-a -> vm-c on udp:53; flows probed for that pair: icmp, tcp:22"
    ):
        assert_reachable(run, "vm-a", "vm-c", "udp:53")


def test_path_helpers_show_the_hops_and_the_network_node():
    dvr = simulate("dvr", router="dvr")
    assert_path_crosses(dvr, "ns-snat", "network")
    assert_path_crosses(dvr, "ns-snat", "network-1")
    assert_path_avoids(dvr, "ew-cross-host", "network")
    with fails(
        r"ns-snat crosses the network node \(network-1\) at network-1:br-tun(.|\n)*path web-2 -> external: "
        r"compute-1:tap.* -> .*network-1:snat-.*(.|\n)*design: router=dvr"
    ):
        assert_path_avoids(dvr, "ns-snat", "network")
    with fails(r"ns-snat crosses snat-\* \(a namespace or device\) at network-1:snat-\S+:sg-"):
        assert_path_avoids(dvr, "ns-snat", "snat-")
    with fails("ew-same-host does not cross the network node"):
        assert_path_crosses(dvr, "ew-same-host", "network")
    with pytest.raises(RunMismatch, match="no traffic class 'ns-snta'"):
        assert_path_avoids(dvr, "ns-snta", "network")


def test_only_classes_lists_every_extra_class_with_its_path():
    # Neutron 29's DVR sends IPv6 out the VM host's own fip- (create_rtr_2_fip_link): only SNAT and DHCP cross
    assert_only_classes_cross_network_node(simulate("dvr", router="dvr"), {"ns-snat", "dhcp"})
    with fails(
        r"beyond ns-snat cross the network node: dhcp(.|\n)*dhcp \(web-1 -> dhcp\): "
        r"(.|\n)*network node share of the traffic: 0\.\d+"
    ):
        assert_only_classes_cross_network_node(simulate("dvr", router="dvr"), {"ns-snat"})
    with fails("ew-same-host"):
        assert_only_classes_cross_network_node(simulate("dvr", router="legacy"), {"ns-snat", "ns-ipv6", "dhcp"})


def test_fanout_helpers_give_both_numbers_and_the_workload():
    iptables = simulate("sg-fanout", firewall="iptables", members=170, hosts=1, placement="packed")
    assert_updates_at_most(iptables, iptables.summary["updates_total"])
    with fails(
        r"1 port\(s\) joining a group of 170 members on 1 host\(s\) with iptables made 171 data-plane "
        r"updates, more than the 2 allowed"
    ):
        assert_updates_at_most(iptables, 2)
    with fails(r"the new port is ready after \d+\.\d s \(median\), not within 10 s(.|\n)*busiest host: compute-1"):
        assert_ready_within(iptables, 10)


def test_multisegment_helpers_give_reasons_and_collisions():
    one = simulate("multisegment", racks=1, hosts_per_rack=1, demand=1500, segments_per_host="one")
    with fails(r"480 of 1500 port requests got no address(.|\n)*subnet_exhausted 480"):
        assert_allocations_succeed(one)
    many = simulate("multisegment", racks=1, hosts_per_rack=1, demand=1500, segments_per_host="many")
    assert_allocations_succeed(many, demand=1500)
    with fails("only 1500 allocations for a demand of 1600"):
        assert_allocations_succeed(many, demand=1600)
    with fails(r"1 bridge collision\(s\)(.|\n)*host r1-c1: brq\S+ carries segments r1-seg1, rack1-s2"):
        assert_no_bridge_collisions(many)
    assert_interface_names_fit(many)
    with fails("has 14 characters, more than 10"):
        assert_interface_names_fit(many, limit=10)


def test_summary_helpers_refuse_other_scenarios_and_missing_keys():
    with pytest.raises(RunMismatch, match="reads a multisegment run's summary; got a dvr run"):
        assert_no_bridge_collisions(simulate("dvr"))
    run = dataclasses.replace(simulate("sg-fanout"), summary={})
    with pytest.raises(RunMismatch, match="summary has no port_ready_p95_s"):
        assert_ready_within(run, 10, statistic="p95")


def test_twin_helper_lists_each_disagreement():
    model = simulate("reachability")
    flipped = [
        dataclasses.replace(r, verdict="blocked") if getattr(r, "src", None) == "vm-a" and r.dst == "vm-b" else r
        for r in model.records
    ]
    emulation = dataclasses.replace(model, backend="emulation", records=flipped)
    assert_twin_agrees(compare(model, model.__class__(**{**vars(model), "backend": "emulation"}), ()))
    report = compare(model, emulation, get_scenario("reachability").tolerances)
    with fails(
        r"twin reachability: model and emulation disagree on 2 of 2\d comparisons"
        r"(.|\n)*probe vm-a->vm-b icmp: model allowed, emulation blocked"
    ):
        assert_twin_agrees(report)


def test_describe_run_names_every_knob():
    run = simulate("sg-fanout", members=5)
    assert describe_run(run).startswith(
        "sg-fanout model run, seed 1, topology generated from the knobs; design: firewall=iptables members=5"
    )
