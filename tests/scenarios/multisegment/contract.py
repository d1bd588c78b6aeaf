"""multisegment's cases for the scenario contract (tests/test_scenario_contract.py): real bridges, VLAN fabric
and rack routers on the default topology (rack2 has two segments; r2-c1 holds a VM on each), one case per
segments_per_host x bridge_naming."""

#: The scenario generates a cloud when given none; these cases study the repository's topology.
TOPOLOGY = "multisegment.yaml"

CASES = {
    f"{sph}-{naming}": {"segments_per_host": sph, "bridge_naming": naming, "demand": 50}
    for sph in ("one", "many")
    for naming in ("network", "segment")
}


def verdict(run, src, dst, protocol):
    p = run.probes
    return p[(p.src == src) & (p.dst == dst) & (p.protocol == protocol)].iloc[0]


def check(case, report, model, emulated, out):
    sph, naming = case.split("-")
    s = emulated.summary
    same = verdict(emulated, "vm-r1-a", "vm-r1-b", "icmp")
    assert same.verdict == "allowed" and same.detail["hops"] == 0  # L2: TTL unchanged
    assert verdict(emulated, "vm-r1-a", "vm-r1-b", "arp").verdict == "allowed"
    if sph == "one":
        assert {r["port"] for r in s["ports_refused"]} == {"vm-r2-a", "vm-r2-b", "vm-r2-c"}
        assert s["vms"] == 3 and s["probes_via_gateway"] == 2  # no second segment: only rack1 <-> rack3 routes
        between = verdict(emulated, "vm-r1-a", "vm-r3-a", "icmp-via-gateway")
        assert between.verdict == "allowed" and between.detail["hops"] == 2  # both racks' routers, over the spine
        return
    routed = verdict(emulated, "vm-r2-a", "vm-r2-b", "icmp-via-gateway")
    assert routed.verdict == "allowed" and routed.detail["hops"] == 1
    assert routed.detail["reply_src_macs"] == [routed.detail["gateway_mac"]]
    leak = "allowed" if naming == "network" else "blocked"
    for protocol in ("arp", "broadcast"):
        assert verdict(emulated, "vm-r2-a", "vm-r2-b", protocol).verdict == leak
        assert verdict(emulated, "vm-r2-c", "vm-r2-b", protocol).verdict == leak  # the merge reaches r2-c2's VM
    (r2c1,) = [d for d in s["l2_domains_measured"]["r2-c1"] if "r2-s2" in d["segments"]]
    assert r2c1["leak"] == (naming == "network") and s["l2_leaks"] == (naming == "network")
    assert s["longest_interface_name"] == "enp195a366.2021"
