"""dvr under control=ovn with VLAN and flat tenant networks: OVN routes their router ports on the gateway chassis
(Neutron 29 sets ``reside-on-redirect-chassis``, ``OVNClient._gen_router_port_options``), and the emulation reads
it from the tagged frames on each chassis's physnet uplink (``ovn_observe.events_of``): the walk from
sightings to the model's hops (no root), and the twin through real OVN on ovn-vlan.yaml (red VLAN 101, blue
flat on another physnet; live)."""

from pathlib import Path

import pytest

from labtwin import api
from labtwin.description import load_cloud
from labtwin.scenarios.dvr.emulation.observe import Sighting
from labtwin.scenarios.dvr.emulation.ovn_observe import Hops, LogicalMap, Walker, events_of
from labtwin.scenarios.dvr.knobs import DvrDesign
from labtwin.scenarios.dvr.model import plane
from labtwin.scenarios.dvr.model.paths import class_paths
from labtwin.scenarios.dvr.spec import CLASSES, external_network, the_router

TOPOLOGY = Path(__file__).parent / "ovn-vlan.yaml"
VM, LRP, GW, OUT = "fa:16:3e:00:00:01", "fa:16:3e:00:00:02", "fa:16:3e:00:00:03", "fa:16:3e:00:00:04"


@pytest.fixture
def vlan():
    cloud = load_cloud(TOPOLOGY)
    router = the_router(cloud)
    hops = Hops(cloud, router, external_network(cloud, router).name)
    from labtwin.scenarios.dvr import neutron_names as names

    logical = LogicalMap(  # Neutron's MACs of the router's red port and gateway port, as the model names them
        datapaths={},
        ports={},
        hosts_by_encap={},
        router_ports={},
        macs={
            LRP: names.mac_of(names.router_port_id("router1", "qr", "red-v4")),
            GW: names.mac_of(names.router_port_id("router1", "qg")),
        },
        cr_lrp_host="network-1",
    )
    return cloud, hops, logical


def _row(kind: str, host: str, t: float, src: str, src_mac: str, dst_mac: str, vlan=None, ttl=64, port=""):
    seen = Sighting(t, 6, True, src, "203.0.113.1", ttl, src_mac, dst_mac, vlan)
    return (kind, host, port or ("physnet1" if kind == "provider" else ""), seen, None)


def test_tagged_frames_on_the_physnet_walk_the_models_path_routed_on_the_gateway_chassis(vlan):
    """ns-snat from red-1 (compute-1): the frame tagged 101 to the router port's MAC is seen on compute-1's uplink,
    then network-1's (and flooded to compute-2's: the same frame, one crossing); the NATed frame next leaves
    network-1 untagged: routed on network-1, out of the gateway port's cr-lrp. A NATed frame leaving compute-1
    instead (routed on the source chassis, as for Geneve) is another path."""
    cloud, hops, logical = vlan
    model = next(p for p in class_paths(cloud, DvrDesign.of({"router": "ovn"})) if p.traffic_class == "ns-snat")
    tapped = [_row("tap", "compute-1", 0, "10.1.0.5", VM, LRP, port="red-1")]
    tagged = [_row("provider", h, t, "10.1.0.5", VM, LRP, 101) for h, t in (("compute-1", 1), ("network-1", 2))]
    tagged.append(_row("provider", "compute-2", 2.5, "10.1.0.5", VM, LRP, 101))
    out = [_row("provider", "network-1", 3, "203.0.113.2", GW, OUT, ttl=63)]
    out += [_row("external", "external", 4, "203.0.113.2", GW, OUT, ttl=63)]
    walk = Walker(hops, logical, 4).walk(events_of(tapped + tagged + out, logical, request=True))
    assert tuple(walk.hops) == model.hops
    got = [(w["src_host"], w["dst_host"], w["network"], w["network_type"], w["segmentation_id"]) for w in walk.wires]
    assert got == [
        ("compute-1", "network-1", "red", "vlan", 101),
        ("network-1", "external", "public", "flat", None),
    ]
    assert got == [(w.src_host, w.dst_host, w.network, w.network_type, w.segmentation_id) for w in model.wires]
    routed_at_source = [_row("provider", "compute-1", 1, "203.0.113.2", GW, OUT, ttl=63)] + out[1:]
    wrong = Walker(hops, logical, 4).walk(events_of(tapped + routed_at_source, logical, request=True))
    assert tuple(wrong.hops) != model.hops and "compute-1:br-int:lrp-" in " ".join(wrong.hops)


def test_a_frame_with_a_tag_no_segment_has_is_a_loud_error(vlan):
    cloud, hops, logical = vlan
    rows = [_row("tap", "compute-1", 0, "10.1.0.5", VM, LRP, port="red-1")]
    rows.append(_row("provider", "compute-1", 1, "10.1.0.5", VM, LRP, 999))
    with pytest.raises(RuntimeError, match="physnet 'physnet1' with VLAN tag 999 belongs to no segment"):
        Walker(hops, logical, 4).walk(events_of(rows, logical, request=True))
    rows[-1] = _row("provider", "compute-1", 1, "10.1.0.5", VM, LRP, None)  # untagged on physnet1: public
    assert Walker(hops, logical, 4).walk(events_of(rows, logical, request=True)).wires[0]["network"] == "public"
    rows[-1] = _row("provider", "compute-1", 1, "10.1.0.5", VM, LRP, None, port="physnet2")  # untagged: blue
    assert Walker(hops, logical, 4).walk(events_of(rows, logical, request=True)).wires[0]["network"] == "blue"


@pytest.mark.emulation
def test_real_ovn_routes_vlan_networks_on_the_gateway_chassis_as_the_model_says(live, ovn, tmp_path, monkeypatch):
    """Every class's path (IPv6 and the VIP's too), wires (red's VLAN 101, blue flat on another physnet), NAT, TTL
    and reply agree with the model; a model that routes these networks on the source chassis, as for Geneve,
    disagrees with the same run."""
    report, model, emulation = api.twin("dvr", TOPOLOGY, 1, out=tmp_path, router="ovn")
    assert report.agree, report.disagreements.to_dict("records")
    compared = {r["kind"] for r in report.rows.to_dict("records") if r["agree"] is True}
    assert {"probe.hops", "probe.wires", "probe.nat", "probe.ttl", "probe.reply", "probe.reply_ttl"} <= compared
    paths = {p["class"]: p for p in emulation.summary["paths"]}
    assert {c for c, p in paths.items() if p["reachable"]} == set(CLASSES)  # every class, all reachable
    legs = {(w["network"], w["network_type"], w["segmentation_id"]) for p in paths.values() for w in p["wires"]}
    assert legs == {("red", "vlan", 101), ("blue", "flat", None), ("public", "flat", None)}
    for cls in ("ew-cross-host", "ns-ipv6", "vip-after-failover"):  # routed on the gateway chassis, nowhere else
        assert {h.split(":")[0] for h in paths[cls]["hops"] if ":br-int:" in h} == {"network-1"}, cls
    assert 0 < emulation.summary["vip_rebind_s"] < 10

    monkeypatch.setattr(plane.Plane, "resides_on_gateway", lambda self, subnet: False)
    wrong = api.simulate("dvr", TOPOLOGY, 1, router="ovn")
    disagree = api.compare_runs("dvr", wrong, emulation).disagreements.to_dict("records")
    assert {r["kind"] for r in disagree} >= {"probe.hops", "probe.wires"}
    assert {r["key"].split(" ")[0] for r in disagree if r["kind"] == "probe.hops"} >= {
        "red-1->blue-1",
        "red-1->blue-2",
        "red-1->external",
        "red-1->10.2.0.100",
    }
