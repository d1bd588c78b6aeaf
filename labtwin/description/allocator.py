"""Pool addresses as labtwin's loader hands them out: the lowest free one, per subnet.

Simplification, stated in :mod:`labtwin.description.resolve`: Neutron's IPAM picks at random among the
first free addresses; a description must load the same way every time, so it takes the lowest.
"""

from __future__ import annotations

import ipaddress
from typing import Optional

from .errors import Loc
from .schema import Cloud, FixedIP, Subnet


class Allocator:
    """Lowest-free address allocation per subnet."""

    def __init__(self, cloud: Cloud):
        self.used: dict[str, set[int]] = {s.name: set() for s in cloud.subnets}
        self.cursor: dict[str, tuple[int, int]] = {s.name: (0, -1) for s in cloud.subnets}
        for sub in cloud.subnets:
            if sub.gateway_ip is not None:
                self.used[sub.name].add(int(sub.gateway_ip))
        for port in cloud.ports:
            for fixed in port.fixed_ips:
                if fixed.ip_address is not None:
                    self.used[fixed.subnet_id].add(int(fixed.ip_address))
        for router in cloud.routers:
            gateway = router.external_gateway_info
            for fixed in gateway.external_fixed_ips if gateway is not None else ():
                if fixed.ip_address is not None:
                    self.used[fixed.subnet_id].add(int(fixed.ip_address))
        for fip in cloud.floatingips:
            if fip.floating_ip_address is not None:
                for sub in cloud.subnets:
                    if sub.network_id == fip.floating_network_id and fip.floating_ip_address in sub.cidr:
                        self.used[sub.name].add(int(fip.floating_ip_address))

    def take(self, subnet: Subnet) -> Optional[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        used = self.used[subnet.name]
        pool_index, last = self.cursor[subnet.name]
        pools = subnet.allocation_pools
        while pool_index < len(pools):
            pool = pools[pool_index]
            candidate = max(last + 1, int(pool.start))
            while candidate <= int(pool.end) and candidate in used:
                candidate += 1
            if candidate <= int(pool.end):
                used.add(candidate)
                self.cursor[subnet.name] = (pool_index, candidate)
                return ipaddress.ip_address(candidate)
            pool_index, last = pool_index + 1, -1
        self.cursor[subnet.name] = (pool_index, -1)
        return None

    def claim(self, subnet_name: str, ip) -> None:
        self.used.setdefault(subnet_name, set()).add(int(ip))

    def release(self, subnet_name: str, ip) -> None:
        """Give *ip* back (a port refused as a whole: Neutron rolls its other addresses back); the next
        :meth:`take` looks from the pool's start again."""
        self.used[subnet_name].discard(int(ip))
        self.cursor[subnet_name] = (0, -1)

    def give_back(self, fixed_ips) -> None:
        """:meth:`release` every address of a port refused whole (fixed IPs without one, EUI-64 to come, skipped)."""
        for fixed in fixed_ips:
            if fixed.ip_address is not None:
                self.release(fixed.subnet_id, fixed.ip_address)


def allocate_per_version(candidates: list[list[Subnet]], allocator: Allocator, loc: Loc, where: str):
    """One address per IP version, from the first of its subnets with a free one (the next subnet when
    one is full), as Neutron 29 allocates for a port that names no fixed IP
    (``IpamPluggableBackend._allocate_ips_for_port``: one from the IPv4 subnets, one from the IPv6
    stateful ones). None free in a version refuses the whole port, as Neutron's
    ``IpAddressGenerationFailure`` does, and gives back the addresses it took."""
    resolved: list[FixedIP] = []
    for subnets in candidates:
        ip = next((ip for ip in (allocator.take(s) for s in subnets) if ip is not None), None)
        if ip is None:
            allocator.give_back(resolved)  # the port is refused whole: Neutron rolls back what it allocated
            names = ", ".join(repr(s.name) for s in subnets)
            return (), [(loc, f"{where}: no free address on subnet(s) {names} (IpAddressGenerationFailure)")]
        subnet = next(s for s in subnets if ip in s.cidr)
        resolved.append(FixedIP(subnet_id=subnet.name, ip_address=ip))
    return tuple(resolved), []


def pooled_groups(subnets: list[Subnet]) -> list[list[Subnet]]:
    """*subnets* as a port that names no fixed IP draws from them: the IPv4 ones, then the IPv6 stateful ones
    (auto-address subnets give an EUI-64 address instead), each group only when it has a subnet."""
    v4 = [s for s in subnets if s.ip_version == 4]
    v6_pooled = [s for s in subnets if s.ip_version == 6 and not s.auto_address]
    return [group for group in (v4, v6_pooled) if group]
