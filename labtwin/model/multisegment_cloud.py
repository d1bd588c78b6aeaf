"""The routed network of a cloud, its racks, and clouds generated from knobs.

A *routed network* is a network whose subnets are bound to segments. A *rack*
is the set of compute hosts sharing ``Host.rack``; its *physnet* is the one the
operator grows: the first physnet its hosts map that already carries a segment
of the routed network (else the first one they map). Racks each with their own
physnet is the layout the routed-networks guide describes (a VLAN per rack,
routed by the fabric).
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass
from typing import Optional

from ..description import Cloud
from ..description.checks import check_cloud
from ..description.schema import Port
from .multisegment_ipam import RoutedIpam, SegmentInfo, SubnetPool, next_free_block


@dataclass(frozen=True)
class Rack:
    name: str
    physnet: str
    hosts: tuple[str, ...]  # compute hosts, file order


def routed_network(cloud: Cloud) -> str:
    """Name of the first network whose subnets are on segments."""
    for net in cloud.networks:
        if any(s.network_id == net.name and s.segment_id for s in cloud.subnets):
            return net.name
    raise ValueError(f"cloud {cloud.name!r} has no routed network (no subnet with a segment_id)")


def racks_of(cloud: Cloud, network: str) -> list[Rack]:
    """Racks of compute hosts, in file order, each with the physnet to grow."""
    by_rack: dict[str, list] = {}
    for host in cloud.hosts:
        if host.role == "compute":
            by_rack.setdefault(host.rack, []).append(host)
    carrying = {s.physical_network for s in cloud.segments if s.network_id == network}
    racks = []
    for name, hosts in by_rack.items():
        mapped = [p for h in hosts for p in h.bridge_mappings]
        if not mapped:
            continue
        physnet = next((p for p in mapped if p in carrying), mapped[0])
        racks.append(Rack(name, physnet, tuple(h.name for h in hosts)))
    return racks


def segment_infos(cloud: Cloud, network: str) -> list[SegmentInfo]:
    """The routed network's segments that have a physnet (only those get host mappings)."""
    net_id = str(cloud.network[network].id)
    return [
        SegmentInfo(s.name, str(s.id), net_id, s.physical_network, s.segmentation_id)
        for s in cloud.segments
        if s.network_id == network and s.physical_network is not None
    ]


def file_ports(cloud: Cloud, network: str) -> list[Port]:
    """Ports of the routed network in the file (VMs and DHCP ports), file order."""
    return [p for p in cloud.ports if p.network_id == network]


def generate_cloud(racks: int, hosts_per_rack: int, max_prefix: int, agent: str) -> Cloud:
    """A routed provider network over *racks* racks, one physnet and one segment each.

    Every rack's first segment uses VLAN 101 on its own physnet (VLAN ids are
    local to a physnet) and a /*max_prefix* subnet; hosts are ``r<R>-c<H>``.
    """
    if not (1 <= racks <= 999 and 1 <= hosts_per_rack <= 9999):
        raise ValueError("racks must be 1..999 and hosts_per_rack 1..9999")
    uplink = "bond0" if agent == "linuxbridge" else "br-provider"
    data: dict = {
        "name": "generated",
        "description": f"{racks} racks x {hosts_per_rack} hosts, one segment per rack",
        "physnets": [], "hosts": [], "networks": [{"name": "routed", "shared": True}],
        "segments": [], "subnets": [],
    }
    taken: list[ipaddress.IPv4Network] = []
    start = ipaddress.ip_network("10.0.0.0/8")
    for r in range(1, racks + 1):
        physnet = f"physnet-r{r}"
        data["physnets"].append({"name": physnet})
        for h in range(1, hosts_per_rack + 1):
            data["hosts"].append({"name": f"r{r}-c{h}", "role": "compute", "rack": f"rack{r}",
                                  "bridge_mappings": {physnet: uplink}})
        block = next_free_block(taken, start, max_prefix)
        taken.append(block)
        data["segments"].append({"name": f"r{r}-seg1", "network_id": "routed", "network_type": "vlan",
                                 "physical_network": physnet, "segmentation_id": 101})
        data["subnets"].append({"name": f"r{r}-seg1-v4", "network_id": "routed", "segment_id": f"r{r}-seg1",
                                "cidr": str(block)})
    cloud = Cloud.model_validate(data)
    problems = check_cloud(cloud)
    if problems:  # a bug here, not a user error
        raise ValueError(f"generated cloud is invalid: {problems[:3]}")
    return cloud


def dhcp_port_of(port: Port) -> bool:
    return port.device_owner == "network:dhcp"


def port_segment(cloud: Cloud, port: Port) -> Optional[str]:
    """The segment of a port's first fixed IP's subnet (the one it binds on)."""
    for fixed in port.fixed_ips:
        seg = cloud.subnet[fixed.subnet_id].segment_id
        if seg is not None:
            return seg
    return None


def build_ipam(cloud: Cloud, network: str, policy: str, rng: random.Random) -> RoutedIpam:
    """IPAM state for the routed network as the file describes it (no ports yet)."""
    ipam = RoutedIpam(policy, {h.name: h.bridge_mappings.keys() for h in cloud.hosts}, rng)
    infos = {s.name: s for s in segment_infos(cloud, network)}
    for seg in infos.values():
        ipam.add_segment(seg)
    for sub in cloud.subnets:
        if sub.network_id == network and sub.segment_id in infos and sub.ip_version == 4:
            pools = [(int(p.start), int(p.end)) for p in sub.allocation_pools]
            ipam.subnets.append(SubnetPool.from_pools(sub.name, sub.segment_id, sub.cidr, pools))
    return ipam
