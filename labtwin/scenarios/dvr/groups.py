"""Security groups on every dvr path: each class's probe is filtered as Neutron filters it.

The verdict is :mod:`labtwin.description.policy`'s (the reachability scenario's): the sender's egress rules
and the receiver's ingress rules, stateful, remote groups with their members' address pairs. The outside
world (the external subnet's gateway address, where the emulations' outside world answers) is in no group.
DHCP passes every firewall driver's fixed rules and is never filtered by a group.

Shared by the model (a probe a group drops ends where the filter sits: :func:`~labtwin.scenarios.dvr.model.
paths.filtered`) and the emulations (labtwin's own writes no filter and refuses such a cloud).
"""

from __future__ import annotations

import ipaddress
from typing import Optional

from labtwin.description import Cloud, Network
from labtwin.description.flows import Flow
from labtwin.description.policy import Verdict, evaluate, outside_verdict

from .spec import Endpoints

#: Each class's probe as a flow (the probes of :func:`~labtwin.scenarios.dvr.spec.probe_of`).
ICMP, SSH = Flow("icmp"), Flow("tcp", 22)


def verdict(cloud: Cloud, ext: Optional[Network], cls: str, ends: Endpoints) -> Optional[Verdict]:
    """Whether the groups let *cls*'s probe through (None: not filtered by a group, or no probe); *ext*: the
    router's external network."""
    pairs = {"ew-same-host": ends.ew_same_host, "ew-cross-host": ends.ew_cross_host}
    pairs["ew-same-network"] = ends.ew_same_network
    if cls in pairs:
        pair = pairs[cls]
        return evaluate(cloud, pair[0], pair[1], ICMP, 4) if pair else None
    if cls == "vip-after-failover" and ends.vip is not None:
        # the VIP is an address pair of the new master: its ingress rules are asked about the client. Simplified:
        # the client's egress rules are asked about the new master's fixed IP, not the VIP (they differ only
        # where a rule's remote_ip_prefix holds one and not the other)
        return evaluate(cloud, ends.vip.client, ends.vip.new_master, ICMP, 4)
    outward = {"ns-fip-out": (ends.fip, 4), "ns-snat": (ends.snat, 4), "ns-ipv6": (ends.ipv6, 6)}
    if cls in outward:
        port, version = outward[cls]
        outside = outside_address(cloud, ext, version)
        if port is None or outside is None:
            return None
        return outside_verdict(cloud, port, ICMP, "egress", outside)
    if cls == "ns-fip-in" and ends.fip is not None:
        outside = outside_address(cloud, ext, 4)
        return outside_verdict(cloud, ends.fip, SSH, "ingress", outside) if outside is not None else None
    return None


def outside_address(cloud: Cloud, ext: Optional[Network], version: int):
    """The outside world's address of *version*: the gateway of the router's external subnet of that version."""
    if ext is None:
        return None
    for subnet in cloud.subnets:
        if subnet.network_id == ext.name and subnet.ip_version == version and subnet.gateway_ip is not None:
            return ipaddress.ip_address(str(subnet.gateway_ip))
    return None
