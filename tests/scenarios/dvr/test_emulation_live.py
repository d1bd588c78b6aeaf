"""Live DVR emulation (root + OVS): every class's path, crossing, NAT and reachability equal the model's."""

import pytest

from labtwin.scenarios import get_scenario
from labtwin.twin import compare

pytestmark = pytest.mark.emulation

DESIGNS = {
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


@pytest.mark.parametrize("label", sorted(DESIGNS))
def test_twin_agrees_and_teardown_restores(live, ledger_dir, snapshot, tmp_path, label):
    before = snapshot()
    spec = get_scenario("dvr")
    cloud, topology = spec.cloud()
    design = spec.design(DESIGNS[label])
    model = spec.simulate(cloud, design, 1, topology)
    emulation = spec.emulate(cloud, design, 1, topology, out_dir=tmp_path / "run")
    assert snapshot() == before
    assert not list(ledger_dir.glob("*.jsonl"))
    report = compare(model, emulation, spec.tolerances, spec.probe_details)
    assert report.agree, report.disagreements.to_dict("records")
    paths = {p["class"]: p for p in emulation.summary["paths"]}
    assert len(paths) == 8 and all(p["hops"] for p in paths.values())
    if label == "legacy":
        assert all(p["via_network_node"] for p in paths.values())
    if label == "dvr":  # bug 1774459: the permanent ARP entry still names the old master
        assert not paths["vip-after-failover"]["reachable"]
        assert paths["ns-snat"]["nat"] == "snat fixed->qg" and paths["ns-fip-in"]["nat"] == "dnat fip->fixed"
    if label == "dvr-proposals":
        assert emulation.summary["network_node_share"] == 0.0
        assert paths["vip-after-failover"]["reachable"] and paths["ns-snat"]["nat"] == "snat fixed->fg"
