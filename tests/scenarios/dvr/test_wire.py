"""What a packet walk shows beyond hops: segment and MACs on each wire, TTL at arrival, the reply path."""

from __future__ import annotations

import pytest

from labtwin.description import load_cloud
from labtwin.scenarios import topologies_dir
from labtwin.scenarios.dvr.knobs import DvrDesign
from labtwin.scenarios.dvr.model.paths import class_paths
from labtwin.scenarios.dvr.model.wire import BROADCAST, SENT_TTL, ttl_at_arrival
from labtwin.scenarios.dvr.neutron_names import dvr_mac, floatingip_port_id, mac_of, router_port_id


@pytest.fixture(scope="module")
def cloud():
    return load_cloud(topologies_dir() / "dvr.yaml")


def paths(cloud, **knobs):
    return {p.traffic_class: p for p in class_paths(cloud, DvrDesign.of(knobs))}


def qr_mac(subnet):
    return mac_of(router_port_id("router1", "qr", subnet))


def test_legacy_east_west_crosses_two_wires_each_on_its_own_vni(cloud):
    p = paths(cloud, router="legacy")["ew-cross-host"]
    web1, app1 = cloud.port["web-1"], cloud.port["app-1"]
    out, back = p.wires
    assert (out.src_host, out.dst_host, out.network_type, out.segmentation_id) == (
        "compute-1",
        "network-1",
        "vxlan",
        1001,
    )
    assert (out.src_mac, out.dst_mac) == (web1.mac_address, qr_mac("tenant-a-v4"))  # to the gateway
    assert (back.src_host, back.dst_host, back.segmentation_id) == ("network-1", "compute-2", 1002)
    assert (back.src_mac, back.dst_mac) == (qr_mac("tenant-b-v4"), app1.mac_address)  # from the router
    assert p.ttl == SENT_TTL - 1
    assert p.reply == p.hops[::-1]  # one router: the reply retraces the request


def test_dvr_east_west_leaves_with_the_hosts_dvr_mac_and_the_reply_is_routed_on_the_other_host(cloud):
    p = paths(cloud, router="dvr")["ew-cross-host"]
    (wire,) = p.wires
    assert (wire.src_host, wire.dst_host, wire.segmentation_id) == ("compute-1", "compute-2", 1002)
    assert wire.src_mac == dvr_mac("compute-1") != qr_mac("tenant-b-v4")
    assert wire.dst_mac == cloud.port["app-1"].mac_address
    (reply,) = p.reply_wires
    assert (reply.src_host, reply.segmentation_id, reply.src_mac) == ("compute-2", 1001, dvr_mac("compute-2"))
    assert any(h.startswith("compute-2:qrouter-") for h in p.reply)  # asymmetric: routed where the reply starts
    assert not any(h.startswith("compute-2:qrouter-") for h in p.hops)
    assert p.ttl == p.reply_ttl == SENT_TTL - 1


def test_dvr_north_south_ttls(cloud):
    got = paths(cloud, router="dvr")
    assert got["ns-fip-out"].ttl == SENT_TTL - 2  # qrouter- then fip-
    assert got["ns-fip-in"].ttl == SENT_TTL - 2
    assert got["ns-snat"].ttl == SENT_TTL - 2  # the host's qrouter-, then snat- on the network node
    assert got["ns-snat"].reply_ttl == SENT_TTL - 1  # snat- answers through sg- straight to the VM
    assert not any(":qrouter-" in h for h in got["ns-snat"].reply)
    to_nn, outside = got["ns-snat"].wires
    assert to_nn.dst_mac == mac_of(router_port_id("router1", "sg", "tenant-b-v4"))
    assert (outside.network, outside.network_type, outside.dst_mac) == ("ext-net", "flat", "external")
    (fip_in,) = got["ns-fip-in"].wires  # the fg- port answers ARP for the floating IP
    assert fip_in.dst_host == "compute-1" and fip_in.dst_mac != cloud.port["web-1"].mac_address


def test_dhcp_is_broadcast_and_not_routed(cloud):
    p = paths(cloud, router="dvr")["dhcp"]
    assert [w.dst_mac for w in p.wires] == [BROADCAST]
    assert p.ttl == SENT_TTL


def test_ovn_tunnels_are_geneve_and_distributed_fips_answer_with_their_own_ports_mac(cloud):
    central = paths(cloud, router="ovn")
    redirect, outside = central["ns-snat"].wires
    assert (redirect.network, redirect.network_type, redirect.segmentation_id) == ("router:router1", "geneve", None)
    assert central["ns-snat"].ttl == SENT_TTL - 1  # one logical router, even across the gateway redirect
    assert all(w.network_type == "geneve" for w in central["ew-cross-host"].wires)
    distributed = paths(cloud, router="ovn", ovn_distributed_fip=True)
    (fip_out,) = distributed["ns-fip-out"].wires
    # external_mac is the floating IP's own port's MAC (Neutron 29 ovn_client), not the VM's: real OVN showed it
    assert fip_out.src_host == "compute-1" and fip_out.src_mac == mac_of(floatingip_port_id("web-1"))
    assert fip_out.src_mac != cloud.port["web-1"].mac_address
    (fip_central, _) = central["ns-fip-in"].wires
    assert fip_central.dst_mac == mac_of(router_port_id("router1", "qg"))


def test_an_unreachable_class_has_no_arrival_and_no_reply(cloud):
    p = paths(cloud, router="dvr", vip_arp="static")["vip-after-failover"]
    assert p.reachable is False and p.ttl is None and p.reply == () and p.reply_ttl is None


def test_ttl_counts_routing_stretches_not_hops():
    hops = ("h:tap1", "h:br-int", "h:qrouter-r:qr-a", "h:qrouter-r:qr-b", "h:br-int", "h:tap2")
    assert ttl_at_arrival(hops) == SENT_TTL - 1
    assert ttl_at_arrival(hops[:2] + ("h:qrouter-r:rfp-x", "h:fip-n:fpr-x", "h:fip-n:fg-y")) == SENT_TTL - 2
    assert ttl_at_arrival(("a:br-int:lrp-1", "fabric", "b:br-int:cr-lrp-2")) == SENT_TTL - 1
    assert ttl_at_arrival(("h:tap1", "h:br-int", "h:qdhcp-n:tapd")) == SENT_TTL


def test_the_summary_carries_the_walk(cloud):
    from labtwin.scenarios.dvr.model import simulate

    run = simulate(cloud, {"router": "dvr"}, seed=1, duration=0.02)
    entry = next(e for e in run.summary["paths"] if e["class"] == "ew-cross-host")
    assert entry["wires"][0]["src_mac"] == dvr_mac("compute-1")
    assert entry["ttl"] == 63 and entry["reply"] and entry["reply_wires"]


def test_walk_table_reads_the_wire_for_a_slide():
    from labtwin.api import simulate
    from labtwin.scenarios.dvr.figures import walk_table

    table = walk_table(simulate("dvr", router="dvr"), "ew-cross-host")
    assert list(table.direction) == ["request", "reply"]
    assert list(table["carried by"]) == ["tenant-b: vxlan 1002", "tenant-a: vxlan 1001"]
    assert all(m.endswith("(DVR host MAC)") for m in table["source MAC"])
    assert list(table["TTL at arrival"]) == [63, 63]
