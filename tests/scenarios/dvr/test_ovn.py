"""dvr under control=ovn: the knob's implications, reading OVN's Geneve header, the walk from sightings to the
model's hops (no root), and the twin through real OVN (live)."""

import json

import pytest

from labtwin import api
from labtwin.description import load_cloud
from labtwin.scenarios import topologies_dir
from labtwin.scenarios.base import ScenarioError
from labtwin.scenarios.dvr.emulation.observe import Sighting
from labtwin.scenarios.dvr.emulation.ovn_observe import Event, Hops, LogicalMap, Walker, geneve
from labtwin.scenarios.dvr.knobs import DvrDesign
from labtwin.scenarios.dvr.model.paths import class_paths
from labtwin.scenarios.dvr.spec import external_network, the_router


def test_router_ovn_and_control_ovn_imply_each_other_and_a_contradiction_is_refused():
    assert DvrDesign.of({"router": "ovn"}).control == "ovn"
    assert DvrDesign.of({"control": "ovn"}).router == "ovn"
    with pytest.raises(ScenarioError, match="control=ovn builds OVN's logical routers only"):
        DvrDesign.of({"control": "ovn", "router": "dvr"})
    with pytest.raises(ScenarioError, match="router=ovn is ML2/OVN's logical router"):
        DvrDesign.of({"control": "labtwin", "router": "ovn"})


def test_ovns_geneve_option_names_the_datapath_and_both_logical_ports():
    header = bytes([0x02, 0, 0x65, 0x58, 0, 0, 4, 0])  # two 4-byte option words, VNI 4
    option = bytes([0x01, 0x02, 0x80, 0x01]) + ((3 << 16) | 2).to_bytes(4, "big")
    assert geneve(header + option + b"inner") == (4, 3, 2, b"inner")
    assert geneve(header + bytes([0x01, 0x03, 0x80, 0x01, 0, 3, 0, 2]) + b"x") is None  # not OVN's option class


@pytest.fixture
def dvr():
    cloud = load_cloud(topologies_dir() / "dvr.yaml")
    design = DvrDesign.of({"router": "ovn"})
    router = the_router(cloud)
    plane = Hops(cloud, router, external_network(cloud, router).name)
    logical = LogicalMap(
        datapaths={2: ("switch", "tenant-a"), 4: ("router", "router1")},
        ports={(4, 3): "lrp-a", (4, 2): "cr-lrp-gw"},
        hosts_by_encap={"192.168.77.1": "network-1", "192.168.77.2": "compute-1", "192.168.77.3": "compute-2"},
        router_ports={"lrp-a": ("qr", ("tenant-a-v4",))},
        macs={},
        cr_lrp_host="network-1",
    )
    return cloud, design, plane, logical


def _seen(t: float) -> Sighting:
    return Sighting(t, 4, True, "10.10.0.2", "203.0.113.1", 64)


def test_a_packet_redirected_to_the_gateway_chassis_walks_the_models_centralized_path(dvr):
    cloud, design, plane, logical = dvr
    model = next(p for p in class_paths(cloud, design) if p.traffic_class == "ns-fip-out")
    tunnel = Event("tunnel", "compute-1", _seen(1), to_host="network-1", datapath=("router", "router1"))
    tunnel = Event(**{**tunnel.__dict__, "inport": "lrp-a", "outport": "cr-lrp-gw"})
    events = [
        Event("tap", "compute-1", _seen(0), port="web-1"),
        tunnel,
        Event("provider", "network-1", _seen(2), port="external", to_host="external"),
        Event("external", "external", _seen(3)),
    ]
    walk = Walker(plane, logical, 4).walk(events)
    assert tuple(walk.hops) == model.hops
    # a packet that left compute-1 for compute-2 instead is another path: the walk follows the wire
    astray = Event(**{**tunnel.__dict__, "to_host": "compute-2"})
    out = Event("provider", "compute-2", _seen(2), port="external", to_host="external")
    wrong = Walker(plane, logical, 4).walk([events[0], astray, out, events[3]])
    assert tuple(wrong.hops) != model.hops and "compute-2:br-int:cr-lrp" in " ".join(wrong.hops)


@pytest.mark.emulation
def test_real_ovn_walks_the_models_paths_for_every_class(live, ovn, tmp_path):
    report, model, emulation = api.twin("dvr", "topologies/dvr.yaml", 1, out=tmp_path, router="ovn")
    assert report.agree, report.disagreements.to_dict("records")
    compared = {r["kind"] for r in report.rows.to_dict("records") if r["agree"] is True}
    assert {
        "probe",
        "probe.hops",
        "probe.wires",
        "probe.nat",
        "probe.ttl",
        "probe.reply",
        "probe.reply_ttl",
    } <= compared
    classes = {p["class"] for p in emulation.summary["paths"] if p["reachable"]}
    assert classes == {"ew-same-host", "ew-cross-host", "ew-same-network", "ns-fip-out", "ns-fip-in", "ns-snat"} | {
        "ns-ipv6",
        "dhcp",
        "vip-after-failover",
    }
    nb = json.loads((tmp_path / "emulation" / "ovn-nb.json").read_text())
    # the VIP's port is virtual, its parents the keepalived pair (ovn_client._set_unset_virtual_port_type)
    vip = [
        p for p in nb["Logical_Switch_Port"].values() if dict(p["external_ids"][1]).get("neutron:port_name") == "vip"
    ]
    assert [p["type"] for p in vip] == ["virtual"]
    assert emulation.summary["gateway_chassis"] == "network-1"
    assert 0 < emulation.summary["vip_rebind_s"] < 10


@pytest.mark.emulation
def test_distributed_floating_ips_and_a_gateway_failover_through_real_ovn(live, ovn, tmp_path):
    """On two gateway chassis (topologies/dvr-ha-gateway.yaml): floating IPs leave and enter on the VM's chassis,
    SNAT on the active gateway; then the active gateway's underlay link is cut, and the SNAT client's pings are
    answered again when BFD says so, within the tolerance of the model's mean (the twin compares it)."""
    report, model, emulation = api.twin(
        "dvr", "topologies/dvr-ha-gateway.yaml", 1, out=tmp_path, router="ovn", ovn_distributed_fip=True
    )
    assert report.agree, report.disagreements.to_dict("records")
    (compared,) = [r for r in report.rows.to_dict("records") if r["key"] == "gateway_failover_s"]
    assert compared["agree"] and compared["emulation"] > 1.5  # BFD, not a lucky ping before the cut took hold
    failover = emulation.summary["gateway_failover"]
    assert {failover["cut"], failover["took_over"]} == {"network-1", "network-2"}  # the other chassis took over
    assert failover["sent_before_cut"] >= 5 and failover["answered_before_cut"] >= failover["sent_before_cut"] - 1
    paths = {p["class"]: p for p in emulation.summary["paths"]}
    assert not paths["ns-fip-out"]["via_network_node"] and not paths["ns-fip-in"]["via_network_node"]
    assert paths["ns-snat"]["via_network_node"]  # SNAT stays on the gateway chassis
    nb = json.loads((tmp_path / "emulation" / "ovn-nb.json").read_text())
    fips = [n for n in nb["NAT"].values() if n["type"] == "dnat_and_snat"]
    assert fips and all(isinstance(n["external_mac"], str) for n in fips)  # Neutron wrote external_mac


def test_a_vlan_networks_router_port_is_routed_on_the_gateway_chassis():
    """topologies/minimal.yaml's tenant network is VLAN 101: Neutron sets reside-on-redirect-chassis on its router
    port (OVNClient._gen_router_port_options), so its traffic is switched on VLAN 101 to the gateway chassis
    and routed there; the same network's two VMs meet on the physnet's bridge, not a tunnel."""
    cloud = load_cloud(topologies_dir() / "minimal.yaml")
    found = {p.traffic_class: p for p in class_paths(cloud, DvrDesign.of({"router": "ovn"}))}
    snat = found["ns-snat"]
    assert [(w.src_host, w.dst_host, w.network_type, w.segmentation_id) for w in snat.wires] == [
        ("compute-1", "network-1", "vlan", 101),
        ("network-1", "external", "flat", None),
    ]
    router_stages = [h for h in snat.hops if ":br-int:" in h]
    assert [h.split(":")[0] for h in router_stages] == ["network-1", "network-1"]  # lrp and cr-lrp, both there
    same = found["ew-same-network"]
    assert "compute-1:br-vlan" in same.hops and [w.network_type for w in same.wires] == ["vlan"]


def test_the_ovn_emulation_takes_a_router_on_a_vlan_network():
    """It reads where OVN routed from the tagged frames on the physnet (test_ovn_vlan.py), so it no longer refuses
    one; what the model refuses (a VLAN network beside a tunnelled one) is refused before (below)."""
    from labtwin.scenarios.dvr.emulation.emulable import check_emulable

    assert check_emulable(load_cloud(topologies_dir() / "minimal.yaml"), DvrDesign.of({"router": "ovn"})) is None


def test_what_the_ovn_model_does_not_draw_is_refused_by_name():
    from labtwin.scenarios.base import TopologyUnfit

    minimal = topologies_dir() / "minimal.yaml"
    with pytest.raises(TopologyUnfit, match="redirect-type=bridged: not modelled"):
        api.simulate("dvr", minimal, router="ovn", ovn_distributed_fip=True)
    text = minimal.read_text().replace("interfaces: [private-v4]", "interfaces: [private-v4, tun-v4]")
    text = text.replace("networks:\n", "networks:\n  - name: tun\n", 1)
    text = text.replace("subnets:\n", "subnets:\n  - {name: tun-v4, network_id: tun, cidr: 10.7.0.0/24}\n", 1)
    from labtwin.description import parse_cloud
    from labtwin.scenarios.dvr import missing

    lacks = missing(parse_cloud(text), DvrDesign.of({"router": "ovn"}))
    assert lacks == ["router router1's networks all tunnelled or all VLAN/flat under OVN (mixed: not modelled)"]
