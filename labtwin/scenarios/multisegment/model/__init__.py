"""Model of the ``multisegment`` scenario: routed networks with several segments per host.

A SimPy run over one routed provider network:

1. t=0: the file's ports (explicit ``fixed_ips``) are bound and allocated under
   the design's IPAM rule; every segment gets its DHCP port; agents wire them.
2. Each rack receives ``demand`` port requests, Poisson arrivals over ``days``
   (exactly ``demand`` arrivals, exponential gaps of mean ``days/demand``), each
   bound to a random compute host of the rack; IPAM allocates or refuses
   (:mod:`.ipam`), agents wire (:mod:`.agents`).
3. The operator watches each rack: when the rack physnet's free addresses
   fall to ``add_segment_at``, it adds a segment (next VLAN on the physnet) with
   a /``max_prefix`` subnet, after ``lead_time_h``. Under ``one`` the default
   ``operator = cautious`` does not add a second segment on a physnet (it would
   map to every host of the rack and turn every request there into a 409);
   ``operator = always`` adds it anyway and shows those 409s.
4. ``migration = rolling-restart``: agents start keyed by network (pre-2023)
   and are restarted host by host at ``migrate_at`` x the horizon into the
   design's naming (:mod:`.migration`).

Same seed and inputs -> identical records: all randomness comes from
``random.Random`` seeded per purpose ("<seed>/ipam", "<seed>/<rack>").
"""

from __future__ import annotations

import heapq
import ipaddress
import random
from collections import Counter
from typing import Any, Mapping

import simpy

from labtwin.description import Cloud
from labtwin.description.generate import next_free_block, routed_cloud
from labtwin.description.schema import default_pools, derived_id
from labtwin.records import Recorder, Run

from ..spec import MultisegmentDesign
from .agents import L2Agent, make_agent
from .cloud import Rack, build_ipam, dhcp_port_of, file_ports, generate_cloud, racks_of, routed_network
from .domains import checked_localnet, expected_l2_domains
from .ipam import NEUTRON_ERRORS, IpamError, SegmentInfo, SubnetPool, next_vlan
from .migration import rolling_restart
from .probes import predicted_probes
from .summary import summarize

DAY = 86400.0
DHCP_PORT_S = 2.0  # not sourced: DHCP port create + namespace + dnsmasq start


class Simulation:
    """One model run: explicit environment, recorder, RNGs and state; no globals."""

    def __init__(self, cloud: Cloud, design: MultisegmentDesign, seed: int):
        self.cloud, self.design, self.seed = cloud, design, seed
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
        self.down: dict[str, simpy.Event] = {}
        self.restarts: list = []
        self.pending: set[str] = set()
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
        self.env.process(self.demand())
        if self.design.migration == "rolling-restart":
            hosts = [h.name for h in self.cloud.hosts]
            at = float(self.design.migrate_at) * self.horizon
            self.env.process(rolling_restart(self, hosts, at, self.design.bridge_naming))
        self.env.run()

    def arrivals(self, rack: Rack) -> list[tuple[float, int, str, str]]:
        """Poisson arrivals on *rack*: ``demand`` ports over the horizon, each on a random host of the rack,
        as (time, rack index, host, port name); drawn from the rack's own RNG, one gap then one host each."""
        rng = random.Random(f"{self.seed}/{rack.name}")
        count = int(self.design.demand)
        rate = count / self.horizon if count else 1.0
        index = self.racks.index(rack)
        out, t = [], 0.0
        for i in range(count):
            t = t + rng.expovariate(rate)  # what a SimPy timeout from t adds: the same float
            out.append((t, index, rack.hosts[rng.randrange(len(rack.hosts))], f"{rack.name}-vm{i + 1}"))
        return out

    def demand(self):
        """Every rack's arrivals in time order, in one SimPy process that yields only when another process has
        something to do first (a segment the operator adds, an agent restart, a port waiting for its agent).

        Arrivals before the next such event change nothing another process could see in between, so they run
        back to back with the clock moved to each one's time: the same records as one SimPy timeout per
        arrival, without the cost of a million events.
        """
        for t, index, host, name in heapq.merge(*(self.arrivals(rack) for rack in self.racks)):
            while t >= self.env.peek():  # another process acts first (or at the same instant): let it
                yield self.env.timeout(max(0.0, self.env.peek() - self.env.now))
            self._advance_to(t)
            self.request_port(self.racks[index], host, name)

    def _advance_to(self, t: float) -> None:
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
        if agent.domain_changes == changes:  # no device gained a segment: no new collision
            return
        for col in agent.collisions():
            key = (host, col["device"])
            if key not in self.seen_collisions:
                self.seen_collisions.add(key)
                self.rec.event(self.env.now, "bridge_collision", host, col["device"], segments=col["segments"])

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
            self.env.process(self.add_segment(rack))

    def add_segment(self, rack: Rack):
        """Operator: new VLAN segment on the rack physnet plus a /max_prefix subnet."""
        yield self.env.timeout(float(self.design.lead_time_h) * 3600.0)
        seg, pool = self.plan_segment(rack)
        self.ipam.add_segment(seg, pool)
        for agent in self.agents.values():
            agent.segment_added(seg)
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

    def plan_segment(self, rack: Rack) -> tuple[SegmentInfo, SubnetPool]:
        on_physnet = [s for s in self.ipam.segments.values() if s.physnet == rack.physnet]
        n = len(on_physnet) + 1
        while f"{rack.name}-s{n}" in self.ipam.segments:
            n += 1
        name = f"{rack.name}-s{n}"
        used_vlans = [s.segmentation_id for s in self.cloud.segments if s.physical_network == rack.physnet]
        vlan = next_vlan([v for v in used_vlans if v] + [s.vlan for s in on_physnet if s.vlan])
        taken = [s.cidr for s in self.cloud.subnets] + [p.cidr for p in self.ipam.subnets]
        mine = [p.cidr for p in self.ipam.subnets if p.segment in {s.name for s in on_physnet}]
        prefix = int(self.design.max_prefix)
        cidr = next_free_block(taken, mine[-1] if mine else ipaddress.ip_network("10.0.0.0/8"), prefix)
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
