"""Where a cloud's subnets are routed: by a Neutron router, or by the physical network's router.

A provider network's subnet (its segment on a physnet: flat or VLAN) whose gateway is no Neutron router's
interface has that gateway on the physical network's router: the networking guide's provider networks
("the physical network infrastructure routes", deploy-ovs-provider.rst) and routed provider networks
(each segment's gateway on its rack's router, config-routed-networks.rst). Simplification, stated: one
physical routing domain routes between all such subnets (a real fabric may filter between them).
A tenant network's subnet (a tunnel) with no router interface has a gateway address nobody answers.
"""

from __future__ import annotations

from typing import Optional

from .schema import Cloud, Port, Segment, Subnet


def subnet_segment(cloud: Cloud, subnet: Subnet) -> Optional[Segment]:
    """The segment a subnet lives on: its own, else its network's first (None: a network without segments)."""
    if subnet.segment_id is not None:
        return cloud.segment[subnet.segment_id]
    return next((s for s in cloud.segments if s.network_id == subnet.network_id), None)


def port_segment(cloud: Cloud, port: Port) -> Optional[Segment]:
    """The segment a port is on: its first fixed IP's subnet's, else its network's first."""
    for fixed in port.fixed_ips:
        segment = subnet_segment(cloud, cloud.subnet[fixed.subnet_id])
        if segment is not None:
            return segment
    return next((s for s in cloud.segments if s.network_id == port.network_id), None)


def physically_routed(cloud: Cloud) -> tuple[Subnet, ...]:
    """The subnets whose gateway lives on the physical network's router (see the module doc)."""
    by_neutron = {name for router in cloud.routers for name in router.interfaces}
    out = []
    for subnet in cloud.subnets:
        segment = subnet_segment(cloud, subnet)
        if subnet.gateway_ip is None or subnet.name in by_neutron or segment is None:
            continue
        if segment.physical_network is not None:
            out.append(subnet)
    return tuple(out)
