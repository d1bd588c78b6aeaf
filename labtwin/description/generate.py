"""Clouds generated from a few numbers, for scenarios run without a topology file.

Both backends build from the same description, so a generated cloud lives
here (the model and the emulation never import each other).

:func:`routed_cloud` is a routed provider network over racks, the layout of
Neutron's "Routed provider networks" guide: a physnet per rack, one VLAN
segment per physnet, a subnet per segment whose gateway (the first address)
is the rack's fabric router. ``vms_per_host`` boots that many VM ports on
each host with explicit ``fixed_ips`` (the first free addresses of the rack's
subnet), so that there is something to plug and probe.

>>> cloud = routed_cloud(1, 2, 22, "linuxbridge", vms_per_host=1)
>>> [(p.name, p.host, str(p.ips[0])) for p in cloud.ports]
[('r1-c1-vm1', 'r1-c1', '10.0.0.2'), ('r1-c2-vm1', 'r1-c2', '10.0.0.3')]
"""

from __future__ import annotations

import bisect
import ipaddress
import itertools
from typing import Iterable

from .checks import check_cloud
from .schema import Cloud


def next_free_block(
    taken: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network],
    after: ipaddress.IPv4Network | ipaddress.IPv6Network,
    prefix: int,
) -> ipaddress.IPv4Network:
    """The first /*prefix* block at or after *after* that overlaps nothing in *taken*.

    >>> n = ipaddress.ip_network
    >>> str(next_free_block([n("10.1.0.0/22")], n("10.1.0.0/22"), 22))
    '10.1.4.0/22'
    """
    return Blocks(taken).next_free(after, prefix)


class Blocks:
    """IPv4 blocks in use, for finding free ones (CIDR blocks are nested or disjoint, so a block overlaps a
    taken one iff one starts inside the other). Kept sorted: a model that adds blocks one by one asks
    without rebuilding; IPv6 blocks are ignored (they never overlap an IPv4 one)."""

    def __init__(self, taken: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network] = ()) -> None:
        self.spans = sorted((int(t.network_address), int(t.broadcast_address)) for t in taken if t.version == 4)
        self._reach: list[int] | None = None

    def add(self, block: ipaddress.IPv4Network | ipaddress.IPv6Network) -> None:
        if block.version == 4:
            bisect.insort(self.spans, (int(block.network_address), int(block.broadcast_address)))
            self._reach = None

    def next_free(self, after: ipaddress.IPv4Network | ipaddress.IPv6Network, prefix: int) -> ipaddress.IPv4Network:
        """The first /*prefix* block at or after *after* that overlaps none of these."""
        starts = [lo for lo, _ in self.spans]
        if self._reach is None:  # the highest end among spans[:i + 1]
            self._reach = list(itertools.accumulate((hi for _, hi in self.spans), max))
        reach, size = self._reach, 2 ** (32 - prefix)
        start = int(after.network_address) // size * size
        while start + size <= 2**32:
            end = start + size - 1
            before = bisect.bisect_right(starts, start) - 1  # the last span starting at or before the block
            inside = bisect.bisect_left(starts, start + 1) < bisect.bisect_right(starts, end)
            if before >= 0 and reach[before] >= start:
                start = (reach[before] // size + 1) * size  # past the span holding the block's start
            elif inside:
                start += size
            else:
                return ipaddress.IPv4Network((start, prefix))
        raise ValueError(f"no free /{prefix} left after {after}")


def routed_cloud(racks: int, hosts_per_rack: int, max_prefix: int, agent: str, vms_per_host: int = 0) -> Cloud:
    """A routed provider network over *racks* racks, one physnet and one segment each.

    Every rack's first segment uses VLAN 101 on its own physnet (VLAN ids are
    local to a physnet) and a /*max_prefix* subnet; hosts are ``r<R>-c<H>``;
    their uplink is ``bond0`` (Linux bridge agent) or ``br-provider`` (OVS agent).
    """
    if not (1 <= racks <= 999 and 1 <= hosts_per_rack <= 9999):
        raise ValueError("racks must be 1..999 and hosts_per_rack 1..9999")
    uplink = "bond0" if agent == "linuxbridge" else "br-provider"
    data: dict = {
        "name": "generated",
        "description": f"{racks} racks x {hosts_per_rack} hosts, one segment per rack",
        "physnets": [],
        "hosts": [],
        "networks": [{"name": "routed", "shared": True}],
        "segments": [],
        "subnets": [],
        "ports": [],
    }
    taken = Blocks()
    start = ipaddress.IPv4Network("10.0.0.0/8")
    for r in range(1, racks + 1):
        physnet = f"physnet-r{r}"
        data["physnets"].append({"name": physnet})
        block = taken.next_free(start, max_prefix)
        taken.add(block)
        data["segments"].append(
            {
                "name": f"r{r}-seg1",
                "network_id": "routed",
                "network_type": "vlan",
                "physical_network": physnet,
                "segmentation_id": 101,
            }
        )
        data["subnets"].append(
            {"name": f"r{r}-seg1-v4", "network_id": "routed", "segment_id": f"r{r}-seg1", "cidr": str(block)}
        )
        for h in range(1, hosts_per_rack + 1):
            host = f"r{r}-c{h}"
            data["hosts"].append(
                {"name": host, "role": "compute", "rack": f"rack{r}", "bridge_mappings": {physnet: uplink}}
            )
            for v in range(1, vms_per_host + 1):
                ip = block.network_address + 2 + (h - 1) * vms_per_host + (v - 1)  # .1 is the gateway
                data["ports"].append(
                    {
                        "name": f"{host}-vm{v}",
                        "network_id": "routed",
                        "binding:host_id": host,
                        "fixed_ips": [{"subnet_id": f"r{r}-seg1-v4", "ip_address": str(ip)}],
                    }
                )
    cloud = Cloud.model_validate(data)
    problems = check_cloud(cloud)
    if problems:  # a bug here, not a user error
        raise ValueError(f"generated cloud is invalid: {problems[:3]}")
    return cloud
