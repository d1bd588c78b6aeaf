"""dvr's cases for the scenario contract (tests/test_scenario_contract.py): every class's path, crossing, NAT
and reachability equal the model's, and what each design must show."""

CASES = {
    "legacy": {"router": "legacy"},
    "dvr": {"router": "dvr"},
    "dvr-proposals": {
        "router": "dvr",
        "ipv6_fast_exit": "true",
        "distributed_snat": "true",
        "distributed_dhcp": "true",
        "vip_arp": "learned",
    },
}


def check(case, report, model, emulation, out):
    paths = {p["class"]: p for p in emulation.summary["paths"]}
    assert len(paths) == 9 and all(p["hops"] for p in paths.values())
    assert not paths["ew-same-network"]["via_network_node"] and paths["ew-same-network"]["ttl"] == 64  # switched
    if case == "legacy":
        assert all(p["via_network_node"] for cls, p in paths.items() if cls != "ew-same-network")
    if case == "dvr":  # bug 1774459: the permanent ARP entry still names the old master
        assert not paths["vip-after-failover"]["reachable"]
        assert paths["ns-snat"]["nat"] == "snat fixed->qg" and paths["ns-fip-in"]["nat"] == "dnat fip->fixed"
    if case == "dvr-proposals":
        assert emulation.summary["network_node_share"] == 0.0
        assert paths["vip-after-failover"]["reachable"] and paths["ns-snat"]["nat"] == "snat fixed->fg"
