"""Model of the ``multisegment`` scenario: routed networks with several segments per host.

A SimPy run over one routed provider network:

1. t=0: the file's ports (explicit ``fixed_ips``) are bound and allocated under
   the design's IPAM rule; every segment gets its DHCP port; agents wire them.
2. Each rack receives ``demand`` port requests, Poisson arrivals over ``days``
   (exactly ``demand`` arrivals, exponential gaps of mean ``days/demand``), each
   bound to a random compute host of the rack; IPAM allocates or refuses
   (:mod:`.ipam`), agents wire (:mod:`.agents`). Requests are served in batches
   where that gives the same answer, else one by one (:mod:`.demand` says when,
   and what a batch records differently: one record per batch, not per port).
3. The operator watches each rack: when the rack physnet's free addresses
   fall to ``add_segment_at``, it adds a segment (next VLAN on the physnet) with
   a /``max_prefix`` subnet, after ``lead_time_h``. Under ``one`` the default
   ``operator = cautious`` does not add a second segment on a physnet (it would
   map to every host of the rack and turn every request there into a 409);
   ``operator = always`` adds it anyway and shows those 409s.
4. ``migration = rolling-restart``: agents start keyed by network (pre-2023)
   and are restarted host by host at ``migrate_at`` x the horizon into the
   design's naming (:mod:`.migration`).

Same seed and inputs -> identical records: all randomness comes from generators
seeded per purpose (IPAM's ``random.Random("<seed>/ipam")``, each rack's numpy
generator from "<seed>/<rack>").
"""

from __future__ import annotations

import ipaddress
import random
from collections import Counter
from typing import Any, Mapping

import numpy as np
import simpy

from labtwin.description import Cloud
from labtwin.description.generate import Blocks, routed_cloud
from labtwin.description.schema import default_pools, derived_id
from labtwin.records import Recorder, Run

from ..spec import MultisegmentDesign
from .agents import L2Agent, make_agent
from .cloud import Rack, build_ipam, dhcp_port_of, file_ports, generate_cloud, racks_of, routed_network
from .demand import RackArrivals, run_demand
from .domains import checked_localnet, expected_l2_domains
from .ipam import NEUTRON_ERRORS, IpamError, SegmentInfo, SubnetPool, next_vlan
from .migration import rolling_restart
from .probes import predicted_probes
from .summary import summarize

DAY = 86400.0
DHCP_PORT_S = 2.0  # not sourced: DHCP port create + namespace + dnsmasq start


class Simulation:
    """One model run: explicit environment, recorder, RNGs and state; no globals."""

    def __init__(self, cloud: Cloud, design: MultisegmentDesign, seed: int, batched: bool = True):
        self.cloud, self.design, self.seed, self.batched = cloud, design, seed, batched
        self.env = simpy.Environment()
        self.rec = Recorder()
        self.network = routed_network(cloud)
        self.net_id = str(cloud.network[self.network].id)
        self.racks = racks_of(cloud, self.network)
        self.ipam = build_ipam(cloud, self.network, design.segments_per_host, random.Random(f"{seed}/ipam"))
        start = "network" if design.migration == "rolling-restart" else design.bridge_naming
        localnet = checked_localnet(cloud, design)
        self.agents: dict[str, L2Agent] = {
            h.name: make_agent(
                design.agent, h.name, h.bridge_mappings, start, lambda: self.ipam.segments.values(), localnet
            )
            for h in cloud.hosts
        }
        self.horizon = float(design.days) * DAY
        self.lead_time_s = float(design.lead_time_h) * 3600.0
        self._physnets_of = {
            r.name: sorted({p for h in r.hosts for p in cloud.host[h].bridge_mappings}) for r in self.racks
        }
        self.down: dict[str, simpy.Event] = {}
        self.restarts: list = []
        self.pending: set[str] = set()
        self.changes_at: dict[str, float] = {}  # rack -> when the segment the operator is adding appears
        self.changed_racks: set[str] = {r.name for r in self.racks}  # racks whose batch plan may have changed
        self.blocks = Blocks([s.cidr for s in cloud.subnets] + [p.cidr for p in self.ipam.subnets])
        self.dhcp: dict[str, str] = {}  # segment -> host of its DHCP port
        self.failed: Counter = Counter()
        self.ok = 0
        self.delayed = 0
        self.first_failure: float | None = None
        self.seen_collisions: set = set()

    # --- run ------------------------------------------------------------------
    def run(self) -> None:
        self.bind_file_ports()
        for seg in list(self.ipam.segments.values()):
            self.ensure_dhcp(seg)
        for rack in self.racks:
            self.watch(rack)
        self.env.process(run_demand(self, self.batched))
        if self.design.migration == "rolling-restart":
            hosts = [h.name for h in self.cloud.hosts]
            at = float(self.design.migrate_at) * self.horizon
            self.env.process(rolling_restart(self, hosts, at, self.design.bridge_naming))
        self.env.run()

    def physnets_of(self, rack: Rack) -> list[str]:
        """The physnets the rack's hosts map."""
        return self._physnets_of[rack.name]

    def advance_to(self, t: float) -> None:
        """Move the clock to *t*, before the next scheduled event: nothing happens in between, so this is
        what a timeout to *t* would do, exactly (SimPy has no public absolute-time timeout)."""
        assert self.env.now <= t < self.env.peek()
        self.env._now = t

    # --- ports ------------------------------------------------------------------
    def request_port(self, rack: Rack, host: str, name: str) -> None:
        """Nova binds a deferred port to *host*: IPAM allocates now, or refuses."""
        try:
            pool, ip = self.ipam.allocate(host)
        except IpamError as exc:
            self.refuse(host, name, exc, rack=rack.name)
        else:
            self.accept(host, name, pool, ip, rack=rack.name)
        self.watch(rack)

    def accept(self, host, name, pool: SubnetPool, ip: int, **detail) -> None:
        self.ok += 1
        self.rec.event(
            self.env.now,
            "allocation_ok",
            host,
            name,
            segment=pool.segment,
            subnet=pool.name,
            ip=dotted(ip),
            **detail,
        )
        if host is not None:
            self.wire(host, derived_id("port", name), name, self.ipam.segments[pool.segment])

    def refuse(self, host, name, exc: IpamError, **detail) -> None:
        self.failed[exc.reason] += 1
        if self.first_failure is None:
            self.first_failure = self.env.now
        error, status = NEUTRON_ERRORS[exc.reason]
        self.rec.event(
            self.env.now, "allocation_failed", host or "", name, reason=exc.reason, error=error, status=status, **detail
        )

    def allocated_batch(self, arrivals: RackArrivals, pool: SubnetPool, first: int, last: int) -> None:
        """Requests *first*..*last* (exclusive) of a rack got addresses on *pool*: one record, and each host's
        agent plugs its share (a segment's first port on a host builds what it needs, at that port's time)."""
        times, rack = arrivals.times, arrivals.rack
        self.ok += last - first
        self.rec.event(
            float(times[first]),
            "allocation_ok",
            subject=pool.name,
            segment=pool.segment,
            subnet=pool.name,
            rack=rack.name,
            count=last - first,
            until=float(times[last - 1]),
        )
        hosts, first_seen, counts = np.unique(arrivals.hosts[first:last], return_index=True, return_counts=True)
        segment = self.ipam.segments[pool.segment]
        for k in np.argsort(first_seen, kind="stable"):
            i = first + int(first_seen[k])
            host = rack.hosts[int(hosts[k])]
            self.plug_batch(host, segment, int(counts[k]), float(times[i]), arrivals.name(i))

    def refused_batch(self, arrivals: RackArrivals, exc: IpamError, first: int, last: int) -> None:
        """Requests *first*..*last* (exclusive) of a rack were refused, all for *exc*'s reason: one record."""
        t = float(arrivals.times[first])
        self.failed[exc.reason] += last - first
        self.first_failure = t if self.first_failure is None else min(self.first_failure, t)
        error, status = NEUTRON_ERRORS[exc.reason]
        self.rec.event(
            t,
            "allocation_failed",
            reason=exc.reason,
            error=error,
            status=status,
            rack=arrivals.rack.name,
            count=last - first,
            until=float(arrivals.times[last - 1]),
        )

    def exhausted(self, rack: Rack) -> IpamError:
        """The refusal of a request on *rack* when every candidate subnet is full (what IPAM raises)."""
        try:
            self.ipam.allocate(rack.hosts[0])
        except IpamError as exc:
            return exc
        raise AssertionError(f"rack {rack.name}: a subnet has room, the batch said none had")

    def plug_batch(self, host: str, segment: SegmentInfo, count: int, t: float, first_port: str) -> None:
        """*count* ports on *segment* bound to *host* (the first at *t*, named *first_port*)."""
        agent = self.agents[host]
        changes = agent.domain_changes
        for op in agent.plug_many(segment, count, derived_id("port", first_port)):
            self.rec.operation(op.op, host, t, op.duration, subject=op.subject, **op.detail)
        if agent.domain_changes != changes:
            self._record_collisions(host, agent, t)

    def bind_file_ports(self) -> None:
        """The file's ports, in file order, with their explicit addresses (t=0)."""
        for port in file_ports(self.cloud, self.network):
            pools = {p.name for p in self.ipam.subnets}
            fixed = [
                (f.subnet_id, int(f.ip_address))
                for f in port.fixed_ips
                if f.subnet_id in pools and f.ip_address is not None
            ]
            if not fixed:
                continue
            try:
                got = [self.ipam.allocate_fixed(port.host, subnet, address) for subnet, address in fixed]
            except IpamError as exc:
                self.refuse(port.host, port.name, exc, origin="file")
                continue
            if dhcp_port_of(port):
                self.dhcp.setdefault(got[0][0].segment, port.host or "")
                if port.host:
                    self.wire(port.host, str(port.id), port.name, self.ipam.segments[got[0][0].segment])
                continue
            self.accept(port.host, port.name, got[0][0], got[0][1], origin="file")

    def ensure_dhcp(self, seg: SegmentInfo) -> None:
        """Give *seg* its DHCP port on the first host that may hold one.

        Pre-2023 (``one``) a DHCP agent holds one port per network (device_id
        ``dhcp<host uuid>-<network id>``) and its binding meets the same 409 as
        any port; ``many`` follows the Zed spec: one DHCP port per segment.
        """
        if seg.name in self.dhcp:
            return
        holders = Counter(self.dhcp.values())
        for host in self.cloud.hosts:
            if seg.physnet not in host.bridge_mappings:
                continue
            if self.design.segments_per_host == "one" and holders[host.name]:
                continue
            pool = next(p for p in self.ipam.subnets if p.segment == seg.name)
            try:
                self.ipam.allocate_fixed(host.name, pool.name, None)
            except IpamError:
                continue
            self.dhcp[seg.name] = host.name
            self.rec.operation("dhcp_port", host.name, self.env.now, DHCP_PORT_S, subject=seg.name, subnet=pool.name)
            self.wire(host.name, derived_id("port", f"dhcp-{seg.name}"), f"dhcp-{seg.name}", seg)
            return
        self.rec.event(self.env.now, "dhcp_unserved", subject=seg.name, physnet=seg.physnet)

    def wire(self, host: str, port_id: str, name: str, seg: SegmentInfo) -> None:
        """The host's L2 agent plugs the port now, or once it is back from a restart."""
        if host in self.down:
            self.delayed += 1
            self.env.process(self._wire_later(host, port_id, name, seg))
            return
        self._plug(host, port_id, name, seg)

    def _wire_later(self, host, port_id, name, seg):
        while host in self.down:
            yield self.down[host]
        self._plug(host, port_id, name, seg)

    def _plug(self, host, port_id, name, seg) -> None:
        agent = self.agents[host]
        changes = agent.domain_changes
        for op in agent.plug(port_id, name, seg):
            self.rec.operation(op.op, host, self.env.now, op.duration, subject=op.subject, **op.detail)
        if agent.domain_changes != changes:  # a device gained a segment: a collision may be new
            self._record_collisions(host, agent, self.env.now)

    def _record_collisions(self, host: str, agent: L2Agent, t: float) -> None:
        for col in agent.collisions():
            key = (host, col["device"])
            if key not in self.seen_collisions:
                self.seen_collisions.add(key)
                self.rec.event(t, "bridge_collision", host, col["device"], segments=col["segments"])

    # --- agents down/up (migration) -------------------------------------------------
    def agent_down(self, host: str) -> None:
        self.down[host] = self.env.event()

    def agent_up(self, host: str) -> None:
        self.down.pop(host).succeed()

    # --- operator -------------------------------------------------------------------
    def may_add(self, rack: Rack) -> bool:
        if self.design.segments_per_host == "many" or self.design.operator == "always":
            return True
        return not self.ipam.has_segment_on(rack.physnet)

    def watch(self, rack: Rack) -> None:
        """Start a segment addition when the rack's free addresses reach the threshold."""
        if rack.name in self.pending or not self.may_add(rack):
            return
        if self.ipam.free_on(rack.physnet) <= int(self.design.add_segment_at):
            self.pending.add(rack.name)
            self.changes_at[rack.name] = self.env.now + self.lead_time_s  # when add_segment's timeout ends
            self.env.process(self.add_segment(rack))

    def add_segment(self, rack: Rack):
        """Operator: new VLAN segment on the rack physnet plus a /max_prefix subnet."""
        yield self.env.timeout(self.lead_time_s)
        seg, pool = self.plan_segment(rack)
        self.ipam.add_segment(seg, pool)
        self.blocks.add(pool.cidr)
        for host in self.ipam.hosts_on(seg.physnet):  # an agent not mapping the physnet sees no change
            self.agents[host].segment_added(seg)
        mapped = sum(seg.name in self.ipam.segments_of(h) for h in rack.hosts)
        self.rec.event(
            self.env.now,
            "segment_added",
            subject=seg.name,
            rack=rack.name,
            physnet=seg.physnet,
            vlan=seg.vlan,
            cidr=str(pool.cidr),
            hosts_mapped=mapped,
        )
        self.ensure_dhcp(seg)
        self.pending.discard(rack.name)
        self.changes_at.pop(rack.name, None)
        self.changed_racks.add(rack.name)

    def plan_segment(self, rack: Rack) -> tuple[SegmentInfo, SubnetPool]:
        on_physnet = self.ipam.segments_on(rack.physnet)
        n = len(on_physnet) + 1
        while f"{rack.name}-s{n}" in self.ipam.segments:
            n += 1
        name = f"{rack.name}-s{n}"
        used_vlans = [s.segmentation_id for s in self.cloud.segments if s.physical_network == rack.physnet]
        vlan = next_vlan([v for v in used_vlans if v] + [s.vlan for s in on_physnet if s.vlan])
        mine = [p.cidr for p in self.ipam.on_physnet(rack.physnet)]
        prefix = int(self.design.max_prefix)
        cidr = self.blocks.next_free(mine[-1] if mine else ipaddress.ip_network("10.0.0.0/8"), prefix)
        pools = [(int(p.start), int(p.end)) for p in default_pools(cidr, cidr.network_address + 1)]
        seg = SegmentInfo(name, derived_id("segment", name), self.net_id, rack.physnet, vlan, self.env.now)
        return seg, SubnetPool.from_pools(f"{name}-v4", name, cidr, pools)


def dotted(ip: int) -> str:
    """An IPv4 address (an int) in dotted form, as ``str(ipaddress.ip_address(ip))`` writes it, without the
    object (a record per allocation).

    >>> dotted(167772170)
    '10.0.0.10'
    """
    return f"{ip >> 24}.{(ip >> 16) & 255}.{(ip >> 8) & 255}.{ip & 255}"


def simulate(cloud: Cloud | None, design: Mapping[str, Any], seed: int, topology: str = "") -> Run:
    """Run the model; without a cloud, generate one from racks/hosts_per_rack/max_prefix."""
    design = MultisegmentDesign.of(design)
    if cloud is None:
        knobs = int(design.racks), int(design.hosts_per_rack), int(design.max_prefix), design.agent
        cloud = generate_cloud(*knobs)
        probe_cloud = routed_cloud(*knobs, vms_per_host=1)  # what an emulation of the knobs boots and probes
    else:
        probe_cloud = cloud
    sim = Simulation(cloud, design, seed)
    sim.run()
    probes = predicted_probes(probe_cloud, design)
    summary = summarize(sim, probe_cloud, probes)
    for row in probes:
        sim.rec.probe(
            row["src"],
            row["dst"],
            row["protocol"],
            None,
            row["verdict"],
            t=0.0,
            hops=row["hops"],
            segments=row["segments"],
        )
    for name, value in summary.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            sim.rec.metric(name, value)
    return Run("multisegment", "model", dict(design), seed, topology, summary, sim.rec.records)


__all__ = ["Simulation", "build_ipam", "expected_l2_domains", "simulate"]
