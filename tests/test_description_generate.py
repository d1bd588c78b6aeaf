"""Generated routed clouds: the same description for the model and the emulation."""

import doctest
import ipaddress

import labtwin.description.generate as generate
from labtwin.description.generate import routed_cloud


def test_doctests():
    failed, tried = doctest.testmod(generate)
    assert tried > 0 and failed == 0


def test_racks_get_their_own_physnet_segment_and_subnet():
    cloud = routed_cloud(2, 3, 22, "ovs", vms_per_host=2)
    assert [s.physical_network for s in cloud.segments] == ["physnet-r1", "physnet-r2"]
    assert [str(s.cidr) for s in cloud.subnets] == ["10.0.0.0/22", "10.0.4.0/22"]
    assert {h.bridge_mappings["physnet-r1"] for h in cloud.hosts if h.rack == "rack1"} == {"br-provider"}
    assert len(cloud.ports) == 12
    ips = [p.ips[0] for p in cloud.ports]
    assert len(set(ips)) == 12
    assert all(
        ip in ipaddress.ip_network(str(cloud.subnet[p.fixed_ips[0].subnet_id].cidr)) for p, ip in zip(cloud.ports, ips)
    )


def test_no_vms_unless_asked():
    assert routed_cloud(1, 1, 22, "linuxbridge").ports == ()
