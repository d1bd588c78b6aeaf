"""Design checks on DVR packet paths (topologies/dvr.yaml): what still needs the network node."""

from labtwin.testing import (
    assert_blocked,
    assert_only_classes_cross_network_node,
    assert_path_avoids,
    assert_path_crosses,
    assert_reachable,
)


def test_dvr_keeps_east_west_and_floating_ips_on_compute_nodes(simulate):
    run = simulate("dvr", router="dvr")
    for traffic_class in ("ew-same-host", "ew-cross-host", "ns-fip-out", "ns-fip-in"):
        assert_path_avoids(run, traffic_class, "network")
    assert_path_crosses(run, "ns-snat", "snat-")


def test_with_fast_exit_and_distributed_dhcp_only_snat_needs_the_network_node(simulate):
    run = simulate("dvr", router="dvr", ipv6_fast_exit=True, distributed_dhcp=True)
    assert_only_classes_cross_network_node(run, {"ns-snat"})


def test_distributed_snat_takes_snat_off_the_network_node(simulate):
    run = simulate("dvr", router="dvr", distributed_snat=True)
    assert_path_avoids(run, "ns-snat", "network")
    assert_path_avoids(run, "ns-snat", "snat-")


def test_learned_arp_keeps_a_vip_reachable_after_vrrp_failover(simulate):
    # bug 1774459: the server's permanent ARP entry still points at the old master
    assert_blocked(simulate("dvr", vip_arp="static"), "web-2", "10.10.0.100", "icmp")
    assert_reachable(simulate("dvr", vip_arp="learned"), "web-2", "10.10.0.100", "icmp")


# The twin on real namespaces (every class: the same hops, network-node crossing, NAT and reachability) is the
# scenario contract's case dvr: tests/test_scenario_contract.py, tests/scenarios/dvr/contract.py.
