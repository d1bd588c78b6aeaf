"""IPAM on a routed provider network, as Neutron does it.

What this reproduces (neutron-facts.md section 1.2):

- a host reaches the segments whose ``physical_network`` is a key of its
  agent's ``bridge_mappings`` (the ``segmenthostmappings`` table, rebuilt when an
  agent reports or a segment is created);
- a port is created unbound with ``ip_allocation: deferred``; its address is
  allocated when Nova sets ``binding:host_id``. Candidate subnets are the
  subnets on the segments the host reaches;
- ``segments_per_host = one`` (Neutron before 2023.1, ``objects/subnet.py``):
  more than one reachable segment -> HTTP 409 ``HostConnectedToMultipleSegments``,
  *also* for a port that asks for explicit ``fixed_ips``, because the check runs
  whenever the host is known; none -> 409 ``HostNotConnectedToAnySegment``;
- ``segments_per_host = many`` (2023.1 admin guide, "Multiple routed provider
  segments per host"): every reachable segment's subnets are candidates, tried
  in creation order, so when one subnet runs out "Neutron will automatically
  switch" to the next (``IpamSubnetGroup`` tries subnets in turn);
- every candidate full -> ``IpAddressGenerationFailure`` (``subnet_exhausted``);
- the address inside a subnet is drawn at random from the first
  ``min(free, 1000)`` free addresses (``MAX_WIN``), with the run's seeded RNG.

Simplification: only the one routed network the scenario studies is tracked;
its subnets are IPv4 (placement keeps no IPv6 inventory either).
"""

from __future__ import annotations

import bisect
import ipaddress
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Optional

MULTIPLE_SEGMENTS = "host_connected_to_multiple_segments"
NO_SEGMENT = "host_not_connected_to_any_segment"
EXHAUSTED = "subnet_exhausted"
INCOMPATIBLE_FIXED_IPS = "host_not_compatible_with_fixed_ips"

#: Summary reason -> (Neutron exception, HTTP status).
NEUTRON_ERRORS = {
    MULTIPLE_SEGMENTS: ("HostConnectedToMultipleSegments", 409),
    NO_SEGMENT: ("HostNotConnectedToAnySegment", 409),
    EXHAUSTED: ("IpAddressGenerationFailure", 409),
    INCOMPATIBLE_FIXED_IPS: ("HostNotCompatibleWithFixedIps", 409),
}
REASONS = tuple(NEUTRON_ERRORS)

MAX_WIN = 1000  # neutrondb_ipam driver: random pick in the first 1000 free addresses


class IpamError(Exception):
    """An allocation Neutron refuses; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class SegmentInfo:
    """A segment of the routed network: what IPAM and the agents need of it."""

    name: str
    id: str
    network_id: str  # the network's UUID (agents name bridges after it)
    physnet: str
    vlan: Optional[int]
    created_at: float = 0.0


@dataclass
class SubnetPool:
    """One segment subnet's free addresses (ints, sorted)."""

    name: str
    segment: str
    cidr: ipaddress.IPv4Network
    free: list[int] = field(default_factory=list)

    @classmethod
    def from_pools(cls, name: str, segment: str, cidr, pools: Iterable[tuple[int, int]]) -> "SubnetPool":
        free = sorted(ip for start, end in pools for ip in range(start, end + 1))
        return cls(name, segment, cidr, free)

    def take(self, rng: random.Random) -> Optional[int]:
        """A random address from the first :data:`MAX_WIN` free ones, or None if full."""
        if not self.free:
            return None
        return self.free.pop(rng.randrange(min(len(self.free), MAX_WIN)))

    def claim(self, ip: int) -> bool:
        """Take a given address; False when it is not free."""
        i = bisect.bisect_left(self.free, ip)
        if i < len(self.free) and self.free[i] == ip:
            del self.free[i]
            return True
        return False


class RoutedIpam:
    """Segments, subnets and host mappings of one routed network, and its allocation rules."""

    def __init__(self, policy: str, host_physnets: dict[str, Iterable[str]], rng: random.Random):
        if policy not in ("one", "many"):
            raise ValueError(f"segments_per_host is one or many, not {policy!r}")
        self.policy = policy
        self.rng = rng
        self.host_physnets = {h: frozenset(p) for h, p in host_physnets.items()}
        self._hosts_on: dict[str, list[str]] = {}  # physnet -> the hosts mapping it
        for host, physnets in self.host_physnets.items():
            for physnet in physnets:
                self._hosts_on.setdefault(physnet, []).append(host)
        self.segments: dict[str, SegmentInfo] = {}  # creation order
        self.subnets: list[SubnetPool] = []  # creation order
        #: per host and per physnet: what a request reads, kept until a segment or subnet is added on a physnet
        #: the host maps (both only grow), so a request does not scan every segment of every rack
        self._shape: tuple[int, int] = (-1, -1)
        self._reachable: dict[str, list[str]] = {}
        self._candidates: dict[str, list[SubnetPool]] = {}
        self._segments_on: dict[str, list[str]] = {}  # physnet -> its segments, in creation order
        self._subnets_on: dict[str, list[SubnetPool]] = {}  # physnet -> its segments' subnets, in creation order
        self._with_subnet: set[str] = set()
        self._order: dict[str, int] = {}  # segment -> creation index
        self._changes: Counter[str] = Counter()  # physnet -> how many times its segments or subnets grew

    def _current(self) -> None:
        """After a segment or subnet was added: index the network again by physnet, and drop what changed for
        the hosts that map the touched physnets (other racks' answers stay)."""
        shape = (len(self.segments), len(self.subnets))
        if shape == self._shape:
            return
        segments, subnets = self._shape
        self._shape = shape
        self._order = {name: i for i, name in enumerate(self.segments)}
        self._segments_on, self._subnets_on = {}, {}
        for name, seg in self.segments.items():
            self._segments_on.setdefault(seg.physnet, []).append(name)
        for pool in self.subnets:
            if pool.segment in self.segments:
                self._subnets_on.setdefault(self.segments[pool.segment].physnet, []).append(pool)
        self._with_subnet = {p.segment for p in self.subnets}
        if segments < 0:
            self._reachable, self._candidates = {}, {}
            return
        touched = {s.physnet for s in list(self.segments.values())[segments:]}
        touched |= {self.segments[p.segment].physnet for p in self.subnets[subnets:] if p.segment in self.segments}
        for physnet in touched:
            self._changes[physnet] += 1
            for host in self._hosts_on.get(physnet, ()):
                self._reachable.pop(host, None)
                self._candidates.pop(host, None)

    def changes_on(self, physnets: Iterable[str]) -> tuple[int, ...]:
        """How many times the segments or subnets on each of *physnets* grew: equal counts, equal answers."""
        self._current()
        return tuple(self._changes[p] for p in physnets)

    # --- the routed network's shape ---------------------------------------
    def add_segment(self, segment: SegmentInfo, subnet: Optional[SubnetPool] = None) -> None:
        self.segments[segment.name] = segment
        if subnet is not None:
            self.subnets.append(subnet)

    def segments_of(self, host: str) -> list[str]:
        """SegmentHostMapping: segments whose physnet the host's agent maps (with a subnet), in creation order;
        not to be changed."""
        self._current()
        if host not in self._reachable:
            on = [n for p in self.host_physnets.get(host, ()) for n in self._segments_on.get(p, ())]
            self._reachable[host] = sorted((n for n in on if n in self._with_subnet), key=self._order.__getitem__)
        return self._reachable[host]

    def subnet(self, name: str) -> SubnetPool:
        return next(s for s in self.subnets if s.name == name)

    def on_physnet(self, physnet: str) -> list[SubnetPool]:
        """The subnets of the segments on *physnet*, in creation order; not to be changed."""
        self._current()
        return self._subnets_on.get(physnet, [])

    def segments_on(self, physnet: str) -> list[SegmentInfo]:
        """The segments on *physnet*, in creation order."""
        self._current()
        return [self.segments[n] for n in self._segments_on.get(physnet, ())]

    def hosts_on(self, physnet: str) -> list[str]:
        """The hosts whose agents map *physnet*."""
        return self._hosts_on.get(physnet, [])

    def has_segment_on(self, physnet: str) -> bool:
        """Whether the network has a segment on *physnet* (with a subnet or not)."""
        self._current()
        return physnet in self._segments_on

    def free_on(self, physnet: str) -> int:
        """Free addresses in the subnets of the segments on *physnet*."""
        return sum(len(p.free) for p in self.on_physnet(physnet))

    # --- allocation ---------------------------------------------------------
    def candidate_subnets(self, host: str, network: str = "") -> list[SubnetPool]:
        """Subnets a port bound to *host* may draw from; raises the 409s."""
        reachable = self.segments_of(host)
        if not reachable:
            raise IpamError(
                NO_SEGMENT, f"Host {host} is not connected to any segments on routed provider network {network}"
            )
        if self.policy == "one" and len(reachable) > 1:
            raise IpamError(
                MULTIPLE_SEGMENTS,
                f"Host {host} is connected to multiple segments on routed provider network {network} "
                f"({', '.join(reachable)})",
            )
        if host not in self._candidates:
            self._candidates[host] = [p for p in self.subnets if p.segment in reachable]
        return self._candidates[host]  # not to be changed: kept until a segment or subnet is added

    def allocate(self, host: str) -> tuple[SubnetPool, int]:
        """Deferred allocation on binding: the first candidate subnet with a free address."""
        for pool in self.candidate_subnets(host):
            ip = pool.take(self.rng)
            if ip is not None:
                return pool, ip
        raise IpamError(EXHAUSTED, f"No more IP addresses available for host {host} on its segments")

    def allocate_fixed(self, host: Optional[str], subnet: str, ip: Optional[int]) -> tuple[SubnetPool, int]:
        """A port asking for ``fixed_ips`` on *subnet* (at *ip* if given)."""
        pool = self.subnet(subnet)
        if host is not None and pool not in self.candidate_subnets(host):
            raise IpamError(
                INCOMPATIBLE_FIXED_IPS, f"Host {host} does not reach segment {pool.segment} of subnet {subnet}"
            )
        if ip is None:
            ip = pool.take(self.rng)
            if ip is None:
                raise IpamError(EXHAUSTED, f"No more IP addresses available on subnet {subnet}")
        elif not pool.claim(ip):
            raise IpamError(EXHAUSTED, f"{ipaddress.ip_address(ip)} is not free on subnet {subnet}")
        return pool, ip


def next_vlan(used: Iterable[int]) -> int:
    """The lowest VLAN id above the highest one used on a physnet (wrapping to the lowest free).

    >>> next_vlan([201, 202])
    203
    """
    used = set(used)
    top = max(used, default=100)
    for vid in list(range(top + 1, 4095)) + list(range(1, top)):
        if vid not in used:
            return vid
    raise ValueError("no VLAN id left on this physnet")
