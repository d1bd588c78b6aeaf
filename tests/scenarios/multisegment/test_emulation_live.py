"""multisegment live (root + OVS): real bridges, VLAN fabric and rack routers; the twin agrees.

One test per combination of segments_per_host x bridge_naming on the default
topology (rack2 has two segments; r2-c1 holds a VM on each).
"""

import pytest

from labtwin.scenarios.multisegment import SCENARIO
from labtwin.scenarios.multisegment.emulation import emulate
from labtwin.scenarios.multisegment.model import simulate
from labtwin.twin import compare

pytestmark = pytest.mark.emulation


def verdict(run, src, dst, protocol):
    p = run.probes
    return p[(p.src == src) & (p.dst == dst) & (p.protocol == protocol)].iloc[0]


@pytest.mark.parametrize(
    "sph,naming", [("one", "network"), ("one", "segment"), ("many", "network"), ("many", "segment")]
)
def test_twin_agrees_and_packets_show_the_design(live, ledger_dir, snapshot, tmp_path, sph, naming):
    before = snapshot()
    cloud, path = SCENARIO.cloud()
    design = SCENARIO.design({"segments_per_host": sph, "bridge_naming": naming, "demand": 50})
    emulated = emulate(cloud, design, 1, path, out_dir=tmp_path / "run")
    assert snapshot() == before and not list(ledger_dir.glob("*.jsonl"))
    report = compare(simulate(cloud, design, 1), emulated, SCENARIO.tolerances)
    assert report.agree, report.disagreements.to_dict("records")
    s = emulated.summary
    same = verdict(emulated, "vm-r1-a", "vm-r1-b", "icmp")
    assert same.verdict == "allowed" and same.detail["hops"] == 0  # L2: TTL unchanged
    assert verdict(emulated, "vm-r1-a", "vm-r1-b", "arp").verdict == "allowed"
    if sph == "one":
        assert {r["port"] for r in s["ports_refused"]} == {"vm-r2-a", "vm-r2-b", "vm-r2-c"}
        assert s["vms"] == 3 and s["probes_via_gateway"] == 0
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
