"""The path search over a cloud's devices (labtwin.scenarios.dvr.model.search), on the provider networks of the
networking guide (tests/conformance 35 and 36 check it against the documented walks)."""

from pathlib import Path

from labtwin.description import load_cloud, parse_cloud
from labtwin.scenarios.dvr.knobs import DvrDesign
from labtwin.scenarios.dvr.model.search import PHYSICAL_ROUTER, device_graph, search

CONFORMANCE = Path(__file__).resolve().parents[2] / "conformance"
SAME_NETWORK = CONFORMANCE / "35-path-provider-ew1" / "topology.yaml"
TWO_NETWORKS = CONFORMANCE / "36-path-provider-ew2" / "topology.yaml"
OVS_FIREWALL = DvrDesign.of({"firewall_driver": "openvswitch"})


def test_one_segment_meets_on_the_physnets_wire():
    cloud = load_cloud(SAME_NETWORK)
    found = search(cloud, cloud.port["instance1"], cloud.port["instance2"], OVS_FIREWALL)
    devices = [h.split(":")[-1] for h in found.hops]
    assert devices[1:3] == ["br-int", "br-provider"] and devices[4:6] == ["br-provider", "br-int"]
    assert found.ttl == 64 and [(w.src_host, w.dst_host, w.segmentation_id) for w in found.wires] == [
        ("compute1", "compute2", 101)
    ]
    assert found.reply == found.hops[::-1]


def test_two_segments_meet_through_the_physical_router_holding_both_gateways():
    cloud = load_cloud(TWO_NETWORKS)
    found = search(cloud, cloud.port["instance1"], cloud.port["instance2"], OVS_FIREWALL)
    assert PHYSICAL_ROUTER in found.hops and found.ttl == 63
    assert [(w.src_host, w.dst_host, w.segmentation_id) for w in found.wires] == [
        ("compute1", PHYSICAL_ROUTER, 101),
        (PHYSICAL_ROUTER, "compute1", 102),
    ]


def test_no_way_without_a_gateway_on_both_segments_or_a_mapping_on_the_host():
    text = TWO_NETWORKS.read_text()
    no_gateway = parse_cloud(text.replace("gateway_ip: 192.0.2.1}", "gateway_ip: null}"))
    found = search(no_gateway, no_gateway.port["instance1"], no_gateway.port["instance2"], OVS_FIREWALL)
    assert not found.reachable and found.hops == () and "no router" in found.note
    cloud = load_cloud(SAME_NETWORK)
    unmapped = cloud.model_copy(deep=True)
    unmapped.host["compute2"].bridge_mappings.clear()
    assert not search(unmapped, unmapped.port["instance1"], unmapped.port["instance2"], OVS_FIREWALL).reachable


def test_the_hybrid_firewall_adds_its_devices_per_port():
    cloud = load_cloud(SAME_NETWORK)
    segment = cloud.segment["provider1-vlan"]
    hybrid = device_graph(cloud, DvrDesign.of({"firewall_driver": "iptables_hybrid"}), segment)
    plain = device_graph(cloud, OVS_FIREWALL, segment)
    assert hybrid.number_of_nodes() - plain.number_of_nodes() == 3 * 2  # qbr, qvb, qvo for each instance
