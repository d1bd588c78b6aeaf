"""The L2 wiring a path crosses: the OVS agent with the openvswitch or iptables_hybrid firewall, or the Linux
bridge agent (issue 12: qbr/qvb/qvo and brq devices, named as Neutron names them)."""

from __future__ import annotations

import pytest

from labtwin.description import load_cloud
from labtwin.scenarios import get_scenario, topologies_dir
from labtwin.scenarios.base import ScenarioError
from labtwin.scenarios.dvr import missing
from labtwin.scenarios.dvr.emulation.emulable import NotEmulated, check_emulable
from labtwin.scenarios.dvr.knobs import DvrDesign
from labtwin.scenarios.dvr.model.paths import class_paths


@pytest.fixture(scope="module")
def cloud():
    return load_cloud(topologies_dir() / "dvr.yaml")


def path(cloud, cls, **knobs):
    return next(p for p in class_paths(cloud, DvrDesign.of(knobs)) if p.traffic_class == cls)


def test_the_hybrid_firewall_puts_qbr_qvb_qvo_between_the_tap_and_br_int(cloud):
    web1 = cloud.port["web-1"]
    short = str(web1.id)[:11]
    hops = path(cloud, "ew-cross-host", router="legacy", firewall_driver="iptables_hybrid").hops
    assert hops[:5] == (
        f"compute-1:tap{short}",
        f"compute-1:qbr{short}",  # where iptables filters (neutron/agent/linux/iptables_firewall.py)
        f"compute-1:qvb{short}",
        f"compute-1:qvo{short}",
        "compute-1:br-int",
    )
    app1 = str(cloud.port["app-1"].id)[:11]
    assert hops[-4:] == (f"compute-2:qvo{app1}", f"compute-2:qvb{app1}", f"compute-2:qbr{app1}", f"compute-2:tap{app1}")
    plain = path(cloud, "ew-cross-host", router="legacy").hops
    assert [h for h in hops if ":qv" not in h and ":qbr" not in h] == list(plain)


def test_the_linux_bridge_agent_plugs_into_brq_and_tunnels_through_vxlan_devices(cloud):
    p = path(cloud, "ew-cross-host", router="legacy", agent="linuxbridge")
    tenant_a, tenant_b = (str(cloud.network[n].id)[:11] for n in ("tenant-a", "tenant-b"))
    assert p.hops[1:5] == (f"compute-1:brq{tenant_a}", "compute-1:vxlan-1001", "fabric", "network-1:vxlan-1001")
    assert f"network-1:brq{tenant_b}" in p.hops and "compute-2:vxlan-1002" in p.hops
    assert not any("br-int" in h or "br-tun" in h for h in p.hops)
    assert [(w.network, w.segmentation_id) for w in p.wires] == [("tenant-a", 1001), ("tenant-b", 1002)]


def test_the_linux_bridge_agent_has_no_dvr_and_says_so_before_any_work(cloud):
    design = get_scenario("dvr").design({"agent": "linuxbridge"})
    assert missing(cloud, design) == [
        "router router1 in legacy mode, not dvr (agent=linuxbridge builds legacy routers only: DVR needs the "
        "OVS agent; --set router=legacy)"
    ]
    with pytest.raises(ScenarioError, match="DVR needs the OVS agent"):
        class_paths(cloud, DvrDesign.of({"agent": "linuxbridge"}))
    both = get_scenario("dvr").design({"agent": "linuxbridge", "router": "legacy", "distributed_dhcp": "true"})
    assert missing(cloud, both) == [
        "the OVS agent for distributed_dhcp (its dhcp extension; agent=linuxbridge has none)"
    ]


def test_ovn_ignores_the_ovs_agent_knobs(cloud):
    assert path(cloud, "ew-cross-host", router="ovn", firewall_driver="iptables_hybrid").hops == (
        path(cloud, "ew-cross-host", router="ovn").hops
    )


def test_the_labtwin_emulation_builds_only_the_openvswitch_wiring(cloud):
    for knobs in ({"firewall_driver": "iptables_hybrid"}, {"agent": "linuxbridge", "router": "legacy"}):
        with pytest.raises(NotEmulated, match="model-only"):
            check_emulable(cloud, DvrDesign.of(knobs))
