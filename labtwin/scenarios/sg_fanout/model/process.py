"""SimPy processes of the sg-fanout model: neutron-server, the fanout, each agent's rpc_loop.

See :mod:`labtwin.scenarios.sg_fanout.model` for the overview and the simplifications.
All state lives in one :class:`FanoutRun` passed to every process.
"""

from __future__ import annotations

import functools
import math
import random
from dataclasses import dataclass, field
from typing import Optional

import simpy

from labtwin.records import Recorder

from ..profiles import CostProfile, load_profile
from ..spec import AGENT_FIREWALLS, Layout, Member, vip_source
from .strategies import HostFirewall, Rules, Snapshot, Work, apply_iteration, refilters_on_member_update

SERVER = "neutron-server"
MEMBER_UPDATED = "security_groups_member_updated"


@dataclass
class Agent:
    """One host's L2 agent: its loop clock, pending work and firewall state."""

    host: str
    next_start: float
    firewall: HostFirewall
    refilter: set = field(default_factory=set)
    new_devices: list = field(default_factory=list)
    removed: list = field(default_factory=list)
    group_dirty: bool = False
    busy: float = 0.0
    wake: Optional[simpy.Event] = None

    def has_work(self) -> bool:
        return bool(self.refilter or self.new_devices or self.removed or self.group_dirty)

    def next_tick(self, now: float, interval: float) -> float:
        """Start of the first loop iteration at or after *now*."""
        if self.next_start >= now:
            return self.next_start
        return self.next_start + math.ceil((now - self.next_start) / interval - 1e-12) * interval


@dataclass
class Pending:
    """A membership change waiting to take effect: ports (per host) whose view must reach its epoch.

    A join waits for the new port and every member (then it is usable); a
    leave (``left``) waits for the remaining members (then none of them
    admits the departed address any more).
    """

    port: Member
    epoch: int
    t_api: float
    waiting: dict  # host -> set of port names
    ready: dict = field(default_factory=dict)
    left: bool = False


@dataclass
class FanoutRun:
    """Everything one simulation carries: clock, RNG, recorder, layout, server and agent state."""

    env: simpy.Environment
    rng: random.Random
    rec: Recorder
    layout: Layout
    firewall: str
    profile: CostProfile
    rules: Rules  # a port's rules as they bear on the group (Layout.rules_of)
    agents: dict
    members: dict  # committed member name -> Member
    epoch: int = 0
    pending: list = field(default_factory=list)
    ready_s: list = field(default_factory=list)
    totals: dict = field(default_factory=dict)
    #: what the hybrid driver's applies write to the kernel (strategies.KERNEL_WRITES)
    writes: str = "rebuild"
    #: hosts whose agent rewrote or prepared a port filter during the run (the cast reaches every host)
    hosts_refreshed: set = field(default_factory=set)
    _snapshot: Optional[Snapshot] = field(default=None, repr=False)

    def watches(self, port: str) -> bool:
        """Is *port* a live port whose filter references the group (a member that does, or a referrer)?"""
        live = port in self.members or port in self._referrers
        return live and self.layout.rules_of(port).watches

    @functools.cached_property
    def _referrers(self) -> frozenset:
        return frozenset(m.name for m in self.layout.referrers)

    def watching(self) -> dict:
        """host -> the live ports there whose filters reference the group (what a change must reach)."""
        out: dict = {}
        for m in (*self.members.values(), *self.layout.referrers):
            if self.watches(m.name):
                out.setdefault(m.host, set()).add(m.name)
        return out

    def snapshot(self) -> Snapshot:
        """The group at the current epoch, built once per membership change (every agent iteration in between
        reads the same one: with 1,000 hosts, rebuilding it per iteration was most of a run's time)."""
        if self._snapshot is None or self._snapshot.epoch != self.epoch:
            self._snapshot = Snapshot.of(self.epoch, self.members.values())
        return self._snapshot


def rounded(value: float) -> float:
    """Times in records and summaries: microsecond resolution keeps them readable and stable."""
    return round(value, 6)


# --- neutron-server and Nova -------------------------------------------------
def join(run: FanoutRun, port: Member, delay: float):
    """POST /ports into the group, the member-updated fanout, then binding and vif plug."""
    env, p = run.env, run.profile
    yield env.timeout(delay)
    t_api = env.now
    _note_overlap(run)
    run.rec.event(rounded(t_api), "api_call", SERVER, port.name, op="create_port", host_id=port.host)
    yield env.timeout(p.api_create_port_s)
    existing = run.watching()
    run.members[port.name] = port
    run.epoch += 1
    run.pending.append(_pending(run, port, existing, t_api))
    env.process(fanout(run))
    yield env.timeout(p.nova_bind_s + p.nova_spawn_s + p.vif_plug_s)
    agent = run.agents[port.host]
    agent.new_devices.append(port.name)
    run.rec.event(rounded(env.now), "device_plugged", port.host, port.name)
    _wake(agent)


def _note_overlap(run: FanoutRun) -> None:
    """Count a membership change that starts while an earlier one is still in flight (not yet in effect).

    Such changes can share an agent iteration (one refresh for two joins), so
    their counts differ from changes applied one at a time, as the emulation
    applies them: the sg-fanout twin refuses a model run with any.
    """
    if run.pending:
        run.totals["changes_overlapped"] = run.totals.get("changes_overlapped", 0) + 1


def _pending(run: FanoutRun, port: Member, existing: dict, t_api: float) -> Pending:
    """The join waits for the new port's own filter and for every port referencing the group (*existing*:
    host -> names, before the join)."""
    waiting: dict = {port.host: {port.name}}
    for host, names in existing.items():
        waiting.setdefault(host, set()).update(names)
    return Pending(port, run.epoch, t_api, waiting)


def leave(run: FanoutRun, name: str, delay: float):
    """DELETE /ports/<id>: Nova has unplugged the vif; the commit fans out a member update.

    The port's own agent removes its filter (``remove_port_filter``); every
    agent refilters its remaining referencing ports and takes the address out
    of its group object. Simplification: the vif unplug and the delete reach
    the agent in the same iteration (Nova unplugs first, then deletes).
    """
    env = run.env
    yield env.timeout(delay)
    port = run.members[name]
    t_api = env.now
    _note_overlap(run)
    run.rec.event(rounded(t_api), "api_call", SERVER, name, op="delete_port", host_id=port.host)
    yield env.timeout(run.profile.api_delete_port_s)
    del run.members[name]
    run.epoch += 1
    for pend in run.pending:
        pend.waiting.get(port.host, set()).discard(name)
    run.pending.append(Pending(port, run.epoch, t_api, run.watching(), left=True))
    _settle(run)
    agent = run.agents[port.host]
    agent.refilter.discard(name)
    agent.removed.append(name)
    _wake(agent)
    env.process(fanout(run))


def fanout(run: FanoutRun):
    """The cast reaches every L2 agent; each handler marks its local ports whose groups' rules reference the group
    (Neutron 29 neutron/agent/securitygroups_rpc.py ``_security_group_updated``: a device whose
    ``security_group_source_groups`` meet the updated groups goes to ``devices_to_refilter``)."""
    env = run.env
    run.rec.event(rounded(env.now), "rpc_cast", SERVER, MEMBER_UPDATED, fanout=True, agents=len(run.agents))
    run.totals["rpc_casts"] = run.totals.get("rpc_casts", 0) + 1
    yield env.timeout(run.profile.rpc_cast_s)
    for agent in run.agents.values():
        local = [p for p in agent.firewall.filters if run.watches(p)]
        if refilters_on_member_update(run.firewall):
            agent.refilter.update(local)
        elif local:
            agent.group_dirty = True
        agent.busy += run.profile.rpc_handle_s
        run.rec.event(rounded(env.now), "rpc_received", agent.host, MEMBER_UPDATED, refilter=len(local))
        run.totals["rpc_received"] = run.totals.get("rpc_received", 0) + 1
        _wake(agent)


def _wake(agent: Agent) -> None:
    if agent.wake is not None and not agent.wake.triggered and agent.has_work():
        agent.wake.succeed()


# --- the L2 agent -------------------------------------------------------------
def agent_loop(run: FanoutRun, agent: Agent):
    """rpc_loop: wait for work, then for the next tick; one iteration at a time."""
    env, interval = run.env, run.profile.polling_interval_s
    while True:
        if not agent.has_work():
            agent.wake = env.event()
            yield agent.wake
        start = agent.next_tick(env.now, interval)
        if start > env.now:
            yield env.timeout(start - env.now)
        yield from iteration(run, agent)
        took = env.now - start
        agent.next_start = start + interval if took < interval else env.now


def iteration(run: FanoutRun, agent: Agent):
    """One rpc_loop iteration: take the queued devices, fetch SG info by chunks, write filters."""
    env, p = run.env, run.profile
    start = env.now
    removed, agent.removed = agent.removed, []
    new = [d for d in agent.new_devices if d in run.members]
    refresh = sorted(agent.refilter - set(new))
    agent.new_devices, agent.refilter, agent.group_dirty = [], set(), False
    snap = run.snapshot()
    devices = len(refresh) + len(new)
    chunks = math.ceil(devices / p.sg_info_chunk) if devices else int(run.firewall == "subtable")
    if chunks:
        fetch = (
            chunks * (p.sg_info_call_s + len(snap.ips) * p.sg_info_per_member_ip_s) + devices * p.sg_info_per_device_s
        )
        run.rec.operation(
            "sg_info_fetch",
            agent.host,
            rounded(env.now),
            rounded(fetch),
            chunks,
            "security_group_info_for_devices",
            devices=devices,
        )
        yield env.timeout(fetch)
    work = apply_iteration(run.firewall, agent.firewall, refresh, new, removed, snap, run.rules, p, run.writes)
    yield from _do_work(run, agent, work)
    agent.busy += env.now - start
    run.rec.event(
        rounded(start),
        "loop_iteration",
        agent.host,
        "rpc_loop",
        refresh=len(refresh),
        new=len(new),
        removed=len(removed),
        duration=rounded(env.now - start),
        epoch=snap.epoch,
    )
    _account(run, work)
    if work.refreshes:
        run.hosts_refreshed.add(agent.host)
    _mark_ready(run, agent)


def _do_work(run: FanoutRun, agent: Agent, work: Work):
    """Record the iteration's operations; one timeout for all of them."""
    at = run.env.now
    for op, count, duration, detail in work.ops:
        run.rec.operation(op, agent.host, rounded(at), rounded(duration), count, run.layout.group, **detail)
        at += duration
    if work.duration:
        yield run.env.timeout(work.duration)


def _account(run: FanoutRun, work: Work) -> None:
    for key in (
        "refreshes",
        "filters_written",
        "filters_removed",
        "group_writes",
        "rules_written",
        "objects_changed",
        "conntrack_deletes",
    ):
        run.totals[key] = run.totals.get(key, 0) + getattr(work, key)
    run.totals["iterations"] = run.totals.get("iterations", 0) + 1


def _mark_ready(run: FanoutRun, agent: Agent) -> None:
    """Ports on this host whose filtering now reflects a pending join's epoch are ready for it."""
    now = run.env.now
    for pend in run.pending:
        waiting = pend.waiting.get(agent.host)
        if not waiting:
            continue
        done = {
            p
            for p in waiting
            if agent.firewall.view_epoch(p, run.firewall, run.layout.rules_of(p).watches) >= pend.epoch
        }
        for port in sorted(done):
            pend.ready[port] = now
        waiting -= done
    _settle(run)


def _settle(run: FanoutRun) -> None:
    """Record joins whose every port is ready: probes per member pair, port_ready event."""
    for pend in [p for p in run.pending if not any(p.waiting.values())]:
        run.pending.remove(pend)
        (_record_left if pend.left else _record_ready)(run, pend)


def _record_left(run: FanoutRun, pend: Pending) -> None:
    """A leave in effect everywhere: the departed address is blocked by every remaining member.

    The probe's source stands for any later packet from that address (the
    address returns to the pool and may come back on a port outside the
    group): what must stop it is the remaining members' filters. Nothing is
    recorded about packets *to* the departed port (its vif is gone). Only
    members that were in the group before the run are probed: a port that
    joined was already probed with the departed one at its join, and a run
    probes each (src, dst, protocol, port) once (the twin joins on that).
    """
    gone = pend.port
    last = max(pend.ready.values(), default=run.env.now)
    joined = {m.name for m in run.layout.joins}
    for name in sorted(set(pend.ready) - joined):
        proto, dport = _flow(run.layout.probe_of(name) or run.layout.probe)
        run.rec.probe(
            gone.name, name, proto, dport, "blocked", rounded(last), None, leave=gone.name, reason="left the group"
        )
    run.rec.event(
        rounded(last), "leave_applied", gone.host, gone.name, latency_s=rounded(last - pend.t_api), epoch=pend.epoch
    )


def _flow(text: str) -> tuple[str, Optional[int]]:
    """``tcp:22`` -> (``tcp``, 22); ``icmp`` -> (``icmp``, None)."""
    proto, _, port = text.partition(":")
    return proto, int(port) if port else None


def _record_ready(run: FanoutRun, pend: Pending) -> None:
    """A join in effect: the new port reaches every port that references the group (on that port's rule's
    flow); those in the group reach it back when the group references itself (on its own rule's flow).
    Simplification: a referrer the group's own rules admit (B's rule naming A) is not probed back."""
    new = pend.port
    t_new = pend.ready[new.name]
    proto, dport = _flow(run.layout.probe)
    back = run.layout.self_referencing
    last = t_new
    for name in sorted(pend.ready):
        if name == new.name:
            continue
        t_pair = max(t_new, pend.ready[name])
        last = max(last, t_pair)
        there = run.layout.probe_of(name)
        if there:
            run.rec.probe(
                new.name, name, *_flow(there), "allowed", rounded(t_pair), rounded(t_pair - pend.t_api), join=new.name
            )
        if back and name in run.members:
            run.rec.probe(
                name, new.name, proto, dport, "allowed", rounded(t_pair), rounded(t_pair - pend.t_api), join=new.name
            )
    vip = vip_source(new.name, new.pairs)
    if vip is not None:  # the new port's VIP is a member address too (Neutron's server lists its pairs)
        for name in sorted(set(pend.ready) - {new.name}):
            there = run.layout.probe_of(name)
            if not there:
                continue
            t_pair = max(t_new, pend.ready[name])
            run.rec.probe(
                vip[0],
                name,
                *_flow(there),
                "allowed",
                rounded(t_pair),
                rounded(t_pair - pend.t_api),
                join=new.name,
            )
    outsider = run.layout.outsider
    if outsider is not None:
        for src, dst in ((new.name, outsider.name), (outsider.name, new.name)):
            run.rec.probe(src, dst, proto, dport, "blocked", rounded(last), None, join=new.name, reason="not a member")
    run.ready_s.append(last - pend.t_api)
    run.rec.event(
        rounded(last), "port_ready", new.host, new.name, latency_s=rounded(last - pend.t_api), epoch=pend.epoch
    )


# --- building and running --------------------------------------------------------
def build(layout: Layout, firewall: str, profile: CostProfile, seed: int, writes: str = "rebuild") -> FanoutRun:
    """Set up the run: every host's agent with its loop phase, the existing members' filters in place."""
    if firewall not in AGENT_FIREWALLS:
        raise ValueError(f"unknown agent firewall {firewall!r}; one of {', '.join(AGENT_FIREWALLS)}")
    rng = random.Random(seed)
    env = simpy.Environment()
    agents = {h: Agent(h, rng.uniform(0, profile.polling_interval_s), HostFirewall(h)) for h in layout.hosts}
    run = FanoutRun(
        env,
        rng,
        Recorder(),
        layout,
        firewall,
        profile,
        layout.rules_of,
        agents,
        {m.name: m for m in layout.members},
        writes=writes,
    )
    _settle_existing(run)
    return run


def _settle_existing(run: FanoutRun) -> None:
    """Existing members and referrers are wired and converged before the run (no work recorded)."""
    snap = run.snapshot()
    by_host: dict = {}
    for m in (*run.layout.members, *run.layout.referrers):
        by_host.setdefault(m.host, []).append(m.name)
    for host, names in by_host.items():
        apply_iteration(
            run.firewall, run.agents[host].firewall, [], names, [], snap, run.rules, run.profile, run.writes
        )


def simulate_layout(layout: Layout, firewall: str, profile, seed: int, writes: str = "rebuild") -> FanoutRun:
    """Run joins (then leaves) to completion and return the finished run state.

    *writes*: what reaches the kernel (``diff``: Neutron's own agent; ``rebuild``: labtwin's, see
    :data:`~labtwin.scenarios.sg_fanout.model.strategies.KERNEL_WRITES`)."""
    run = build(layout, firewall, load_profile(profile), seed, writes)
    spacing = run.profile.join_interval_s
    for i, port in enumerate(layout.joins):
        run.env.process(join(run, port, i * spacing + run.rng.uniform(0, spacing / 10)))
    base = len(layout.joins) * spacing
    for i, name in enumerate(layout.leaves):
        run.env.process(leave(run, name, base + i * spacing + run.rng.uniform(0, spacing / 10)))
    for agent in run.agents.values():
        run.env.process(agent_loop(run, agent))
    run.env.run()
    return run
