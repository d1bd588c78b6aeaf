"""multisegment emulation plan (no root): IPAM admission, design-named bridges, uplinks, rack routers."""

import doctest

import pytest

import labtwin.scenarios.multisegment.emulation.evidence as evidence
import labtwin.scenarios.multisegment.emulation.plan as msplan
from labtwin.description.generate import routed_cloud
from labtwin.scenarios.multisegment import SCENARIO
from labtwin.scenarios.multisegment.emulation import rack_pairs
from labtwin.scenarios.multisegment.emulation.plan import (
    MULTIPLE_SEGMENTS,
    PlanError,
    plan_multisegment,
    subinterface_name,
)
from labtwin.scenarios.multisegment.model.agents import vlan_subinterface_name


@pytest.fixture(scope="module")
def cloud():
    return SCENARIO.cloud()[0]


def design(sph="many", naming="network", **extra):
    return SCENARIO.design({"segments_per_host": sph, "bridge_naming": naming, **extra})


def enslaved(sp, host):
    """(device, bridge) pairs the host's ip-batch enslaves."""
    batch = sp.plan.config[sp.host_ns[host]].ip_batch
    return {(line.split()[2], line.split()[4]) for line in batch if " master " in line}


@pytest.mark.parametrize("module", [msplan, evidence])
def test_doctests(module):
    failed, tried = doctest.testmod(module)
    assert tried > 0 and failed == 0


def test_one_refuses_every_port_of_a_host_reaching_two_segments(cloud):
    sp = plan_multisegment(cloud, design("one"), "t0a1")
    assert {r["port"] for r in sp.refused} == {"vm-r2-a", "vm-r2-b", "vm-r2-c"}
    assert {r["reason"] for r in sp.refused} == {MULTIPLE_SEGMENTS}
    assert "r2-c1" not in sp.host_ns and {vm.rack for vm in sp.vms} == {"rack1", "rack3"}


def test_network_naming_enslaves_both_uplinks_to_one_bridge(cloud):
    sp = plan_multisegment(cloud, design("many", "network"), "t0a2")
    (bridge,) = sp.bridges["r2-c1"]
    assert bridge == "brq" + str(cloud.network["provider"].id)[:11]
    assert sorted(sp.bridges["r2-c1"][bridge]) == ["r2-s1", "r2-s2"]
    uplinks = sp.uplinks["r2-c1"]
    assert {(uplinks["r2-s1"], bridge), (uplinks["r2-s2"], bridge)} <= enslaved(sp, "r2-c1")


def test_segment_naming_gives_each_segment_its_bridge(cloud):
    sp = plan_multisegment(cloud, design("many", "segment"), "t0a3")
    bridges = sp.bridges["r2-c1"]
    assert sorted(bridges) == sorted("brq" + str(cloud.segment[s].id)[:11] for s in ("r2-s1", "r2-s2"))
    assert all(len(segs) == 1 for segs in bridges.values())
    assert all(len(name) <= 15 for host in sp.uplinks.values() for name in host.values())


def test_uplinks_are_tagged_access_ports_named_like_neutron_subinterfaces(cloud):
    sp = plan_multisegment(cloud, design("many", "segment"), "t0a4")
    assert sp.uplinks["r2-c1"] == {"r2-s1": "enp195a366.2021", "r2-s2": "enp195a366.2022"}
    for phys, vlan in (("bond0", 2011), ("enp175s0f1np1", 2022), ("a-very-long-name0", 7)):
        assert subinterface_name(phys, vlan) == vlan_subinterface_name(phys, vlan)
    tags = sorted(p.tag for p in sp.plan.ovs_ports if p.tag is not None)  # the spine's ports are untagged
    assert tags.count(2021) == 3 and tags.count(2022) == 2  # two hosts (+ router) on 2021, one (+ router) on 2022
    assert [b.owner for b in sp.plan.ovs_bridges].count("fabric") == 3  # one fabric per physnet (+ the spine)


def test_one_router_per_rack_holds_every_segment_gateway(cloud):
    sp = plan_multisegment(cloud, design("many"), "t0a5")
    routers = [n for n in sp.plan.namespaces if n.role == "router"]
    assert sorted(n.subject for n in routers) == ["rack1", "rack2", "rack3"]
    batch = sp.plan.config["router:rack2"].ip_batch
    assert "addr add 10.2.0.1/22 dev vlan2021" in batch and "addr add 10.2.4.1/22 dev vlan2022" in batch
    assert set(sp.gateway_macs) == {"r1-s1", "r2-s1", "r2-s2", "r3-s1"}
    vm = next(v for v in sp.vms if v.port == "vm-r2-b")
    assert vm.gateway == "10.2.4.1" and "route add default via 10.2.4.1 dev eth0" in sp.plan.config[vm.ns].ip_batch


def test_probes_stay_in_a_rack(cloud):
    sp = plan_multisegment(cloud, design("many"), "t0a6")
    pairs = rack_pairs(sp.vms)
    assert len(pairs) == 2 + 6 and all(a.rack == b.rack for a, b in pairs)


def test_two_hosts_merging_the_same_segments_is_a_loop_and_refused(cloud):
    data = cloud.model_dump(by_alias=True)
    data["ports"] = [
        *data["ports"],
        {
            "name": "vm-r2-d",
            "network_id": "provider",
            "binding:host_id": "r2-c2",
            "fixed_ips": [{"subnet_id": "r2-s2-v4", "ip_address": "10.2.4.11"}],
        },
    ]
    looped = type(cloud).model_validate(data)
    with pytest.raises(PlanError, match="loop"):
        plan_multisegment(looped, design("many", "network"), "t0a7")
    assert plan_multisegment(looped, design("many", "segment"), "t0a8").vms


def test_generated_cloud_is_small_and_ovs_is_refused():
    sp = plan_multisegment(routed_cloud(2, 2, 22, "linuxbridge", vms_per_host=1), design(), "t0a9")
    assert len(sp.vms) == 4 and sum(n.role == "router" for n in sp.plan.namespaces) == 2
    with pytest.raises(PlanError, match="ovs"):
        plan_multisegment(routed_cloud(1, 1, 22, "ovs", vms_per_host=1), design(agent="ovs"), "t0b0")


def test_frames_read_broadcasts_and_echo_replies_from_a_pcap(tmp_path):
    from scapy.layers.inet import ICMP, IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    from labtwin.emulation.probe_agent import BROADCAST_MARK

    path = tmp_path / "x.pcap"
    wrpcap(
        str(path),
        [
            Ether(src="fa:16:3e:00:00:01", dst="ff:ff:ff:ff:ff:ff")
            / IP(src="10.2.0.10", dst="255.255.255.255")
            / UDP(dport=9)
            / BROADCAST_MARK,
            Ether(src="fa:16:3e:00:00:09", dst="fa:16:3e:00:00:02")
            / IP(src="10.2.4.10", dst="10.2.0.10", ttl=63)
            / ICMP(type=0),
        ],
    )
    rows = evidence.frames(path)
    assert evidence.broadcasts_seen(rows) == {"fa:16:3e:00:00:01"}
    assert evidence.echo_replies(rows, "10.2.4.10", "10.2.0.10") == [{"ttl": 63, "src_mac": "fa:16:3e:00:00:09"}]
    assert evidence.echo_replies(rows, "10.2.0.10", "10.2.4.10") == []


def test_a_flat_segment_with_a_gateway_is_refused_not_crashed(tmp_path):
    """Found by the fuzzer: the rack router named its device after a flat segment's (absent) VLAN id."""
    import yaml

    from labtwin.description import load_cloud
    from labtwin.emulation.plan import PlanError
    from labtwin.scenarios.multisegment.emulation.plan import plan_multisegment
    from labtwin.scenarios.multisegment.spec import MultisegmentDesign

    data = {
        "name": "flat",
        "physnets": [{"name": "phys0"}],
        "hosts": [{"name": "host0", "role": "compute", "rack": "rack1", "bridge_mappings": {"phys0": "br-phys0"}}],
        "networks": [{"name": "net0"}, {"name": "net2"}],
        "segments": [
            {"name": "s0", "network_id": "net0", "physical_network": "phys0", "segmentation_id": 100},
            {"name": "s2", "network_id": "net2", "network_type": "flat", "physical_network": "phys0"},
        ],
        "subnets": [
            {"name": "sub0", "network_id": "net0", "cidr": "10.0.0.0/24", "segment_id": "s0", "gateway_ip": None},
            {"name": "sub2", "network_id": "net2", "cidr": "10.2.1.0/24", "segment_id": "s2"},
        ],
        "ports": [{"name": "vm0", "network_id": "net0", "binding:host_id": "host0"}],
    }
    (tmp_path / "flat.yaml").write_text(yaml.safe_dump(data))
    cloud = load_cloud(tmp_path / "flat.yaml")
    with pytest.raises(PlanError, match="flat segments are not emulated"):
        plan_multisegment(cloud, MultisegmentDesign.of({}), "t0st")


def test_the_spine_joins_the_rack_routers_with_a_route_to_each_other_racks_subnets(cloud):
    sp = plan_multisegment(cloud, design(), "t0sp")
    assert [b.owner for b in sp.plan.ovs_bridges].count("spine") == 1
    routers = sorted(k for k in sp.plan.config if k.startswith("router:"))
    assert len(routers) == 3
    for key in routers:
        batch = sp.plan.config[key].ip_batch
        rack = key.split(":", 1)[1]
        assert any(line.startswith("addr add 169.254.250.") and line.endswith("dev spine0") for line in batch)
        others = [r.split(":", 1)[1] for r in routers if r != key]
        routes = [line for line in batch if line.startswith("route add")]
        expected = {str(s.cidr) for other in others for s in msplan.rack_subnets(cloud, other)}
        assert {line.split()[2] for line in routes} == expected and expected
        assert not expected & {str(s.cidr) for s in msplan.rack_subnets(cloud, rack)}
