"""Model of the ``sg-fanout`` scenario: a port joins a group that references itself.

SimPy processes over an explicit :class:`FanoutRun` (no module state):

- :func:`join` / :func:`leave`: the API call, neutron-server's DB commit,
  the ``security_groups_member_updated`` cast (``fanout=True``: every L2
  agent, members or not), then Nova's binding and the vif plug that makes the
  device appear on its host;
- :func:`fanout`: the cast reaching every agent; each agent's handler puts
  its local ports that reference the group in ``devices_to_refilter``
  (deferred refresh, ``defer_refresh_firewall=True``);
- :func:`agent_loop`: the OVS agent's ``rpc_loop``: iterations start every
  ``polling_interval`` (or right after an iteration that overran it); each
  fetches ``security_group_info_for_devices`` in chunks of 100 devices, then
  does the strategy's writes (:mod:`labtwin.model.sg_fanout_strategies`).

Simplifications, stated where they matter: idle loop iterations are skipped
(an agent sleeps until work arrives, then waits for its next tick, which is
what polling would do); one iteration's work is one timeout whose duration the
cost profile computes; the membership the server returns is the one at the
start of the fetch; neutron-server has enough RPC workers (no server queueing).

Same layout, design and seed give byte-identical records.
"""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass, field
from typing import Optional

import pandas as pd
import simpy

from ..description import Cloud
from ..records import Recorder, Run
from .profiles import CostProfile, load_profile
from .sg_fanout_layout import Layout, Member, generated_layout, layout_from_cloud
from .sg_fanout_strategies import FIREWALLS, GroupRules, HostFirewall, Snapshot, Work, apply_iteration, \
    refilters_on_member_update

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
    """A join waiting to be usable: ports (per host) whose view must reach the join's epoch."""

    port: Member
    epoch: int
    t_api: float
    waiting: dict  # host -> set of port names
    ready: dict = field(default_factory=dict)


@dataclass
class FanoutRun:
    """Everything one simulation carries: clock, RNG, recorder, layout, server and agent state."""

    env: simpy.Environment
    rng: random.Random
    rec: Recorder
    layout: Layout
    firewall: str
    profile: CostProfile
    rules: GroupRules
    agents: dict
    members: dict  # committed member name -> Member
    epoch: int = 0
    pending: list = field(default_factory=list)
    ready_s: list = field(default_factory=list)
    totals: dict = field(default_factory=dict)

    def snapshot(self) -> Snapshot:
        return Snapshot(self.epoch, frozenset(m.ip for m in self.members.values()), frozenset(self.members))


def _t(value: float) -> float:
    return round(value, 6)


# --- neutron-server and Nova -------------------------------------------------
def join(run: FanoutRun, port: Member, delay: float):
    """POST /ports into the group, the member-updated fanout, then binding and vif plug."""
    env, p = run.env, run.profile
    yield env.timeout(delay)
    t_api = env.now
    run.rec.event(_t(t_api), "api_call", SERVER, port.name, op="create_port", host_id=port.host)
    yield env.timeout(p.api_create_port_s)
    existing = list(run.members.values())
    run.members[port.name] = port
    run.epoch += 1
    run.pending.append(_pending(run, port, existing, t_api))
    env.process(fanout(run))
    yield env.timeout(p.nova_bind_s + p.nova_spawn_s + p.vif_plug_s)
    agent = run.agents[port.host]
    agent.new_devices.append(port.name)
    run.rec.event(_t(env.now), "device_plugged", port.host, port.name)
    _wake(agent)


def _pending(run: FanoutRun, port: Member, existing: list, t_api: float) -> Pending:
    waiting: dict = {port.host: {port.name}}
    for m in existing:
        waiting.setdefault(m.host, set()).add(m.name)
    return Pending(port, run.epoch, t_api, waiting)


def leave(run: FanoutRun, name: str, delay: float):
    """DELETE /ports/<id>: Nova has unplugged the vif; the commit fans out a member update."""
    env = run.env
    yield env.timeout(delay)
    port = run.members[name]
    run.rec.event(_t(env.now), "api_call", SERVER, name, op="delete_port", host_id=port.host)
    yield env.timeout(run.profile.api_delete_port_s)
    del run.members[name]
    run.epoch += 1
    for pend in run.pending:
        pend.waiting.get(port.host, set()).discard(name)
    _settle(run)
    agent = run.agents[port.host]
    agent.refilter.discard(name)
    agent.removed.append(name)
    _wake(agent)
    env.process(fanout(run))


def fanout(run: FanoutRun):
    """The cast reaches every L2 agent; each handler marks its local referencing ports."""
    env = run.env
    run.rec.event(_t(env.now), "rpc_cast", SERVER, MEMBER_UPDATED, fanout=True, agents=len(run.agents))
    run.totals["rpc_casts"] = run.totals.get("rpc_casts", 0) + 1
    yield env.timeout(run.profile.rpc_cast_s)
    for agent in run.agents.values():
        local = [p for p in agent.firewall.filters if p in run.members]
        if refilters_on_member_update(run.firewall):
            agent.refilter.update(local)
        elif local:
            agent.group_dirty = True
        agent.busy += run.profile.rpc_handle_s
        run.rec.event(_t(env.now), "rpc_received", agent.host, MEMBER_UPDATED, refilter=len(local))
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
        fetch = chunks * (p.sg_info_call_s + len(snap.ips) * p.sg_info_per_member_ip_s) + devices * p.sg_info_per_device_s
        run.rec.operation("sg_info_fetch", agent.host, _t(env.now), _t(fetch), chunks, "security_group_info_for_devices",
                          devices=devices)
        yield env.timeout(fetch)
    work = apply_iteration(run.firewall, agent.firewall, refresh, new, removed, snap, run.rules, p)
    yield from _do_work(run, agent, work)
    agent.busy += env.now - start
    run.rec.event(_t(start), "loop_iteration", agent.host, "rpc_loop", refresh=len(refresh), new=len(new),
                  removed=len(removed), duration=_t(env.now - start), epoch=snap.epoch)
    _account(run, work)
    _mark_ready(run, agent)


def _do_work(run: FanoutRun, agent: Agent, work: Work):
    """Record the iteration's operations; one timeout for all of them."""
    at = run.env.now
    for op, count, duration, detail in work.ops:
        run.rec.operation(op, agent.host, _t(at), _t(duration), count, run.layout.group, **detail)
        at += duration
    if work.duration:
        yield run.env.timeout(work.duration)


def _account(run: FanoutRun, work: Work) -> None:
    for key in ("refreshes", "filters_written", "filters_removed", "group_writes", "rules_written", "objects_changed"):
        run.totals[key] = run.totals.get(key, 0) + getattr(work, key)
    run.totals["iterations"] = run.totals.get("iterations", 0) + 1


def _mark_ready(run: FanoutRun, agent: Agent) -> None:
    """Ports on this host whose filtering now reflects a pending join's epoch are ready for it."""
    now = run.env.now
    for pend in run.pending:
        waiting = pend.waiting.get(agent.host)
        if not waiting:
            continue
        done = {p for p in waiting if agent.firewall.view_epoch(p, run.firewall) >= pend.epoch}
        for port in sorted(done):
            pend.ready[port] = now
        waiting -= done
    _settle(run)


def _settle(run: FanoutRun) -> None:
    """Record joins whose every port is ready: probes per member pair, port_ready event."""
    for pend in [p for p in run.pending if not any(p.waiting.values())]:
        run.pending.remove(pend)
        _record_ready(run, pend)


def _record_ready(run: FanoutRun, pend: Pending) -> None:
    new = pend.port
    t_new = pend.ready[new.name]
    proto, _, port = run.layout.probe.partition(":")
    dport = int(port) if port else None
    last = t_new
    for name in sorted(pend.ready):
        if name == new.name:
            continue
        t_pair = max(t_new, pend.ready[name])
        last = max(last, t_pair)
        for src, dst in ((new.name, name), (name, new.name)):
            run.rec.probe(src, dst, proto, dport, "allowed", _t(t_pair), _t(t_pair - pend.t_api), join=new.name)
    outsider = run.layout.outsider
    if outsider is not None:
        for src, dst in ((new.name, outsider.name), (outsider.name, new.name)):
            run.rec.probe(src, dst, proto, dport, "blocked", _t(last), None, join=new.name, reason="not a member")
    run.ready_s.append(last - pend.t_api)
    run.rec.event(_t(last), "port_ready", new.host, new.name, latency_s=_t(last - pend.t_api), epoch=pend.epoch)


# --- building and running --------------------------------------------------------
def build(layout: Layout, firewall: str, profile: CostProfile, seed: int) -> FanoutRun:
    """Set up the run: every host's agent with its loop phase, the existing members' filters in place."""
    if firewall not in FIREWALLS:
        raise ValueError(f"unknown firewall {firewall!r}; one of {', '.join(FIREWALLS)}")
    rng = random.Random(seed)
    env = simpy.Environment()
    agents = {h: Agent(h, rng.uniform(0, profile.polling_interval_s), HostFirewall(h)) for h in layout.hosts}
    run = FanoutRun(env, rng, Recorder(), layout, firewall, profile, GroupRules(layout.remote_rules, layout.other_rules),
                    agents, {m.name: m for m in layout.members})
    _settle_existing(run)
    return run


def _settle_existing(run: FanoutRun) -> None:
    """Existing members are wired and converged before the run (no work recorded)."""
    snap = run.snapshot()
    by_host: dict = {}
    for m in run.layout.members:
        by_host.setdefault(m.host, []).append(m.name)
    for host, names in by_host.items():
        apply_iteration(run.firewall, run.agents[host].firewall, [], names, [], snap, run.rules, run.profile)


def simulate_layout(layout: Layout, firewall: str, profile, seed: int) -> FanoutRun:
    """Run joins (then leaves) to completion and return the finished run state."""
    run = build(layout, firewall, load_profile(profile), seed)
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


def summarize(run: FanoutRun) -> dict:
    """The headline numbers (no formula-based expectations: tests compute those separately)."""
    t = run.totals
    ready = sorted(run.ready_s)
    hosts_with_members = len({m.host for m in run.members.values()})
    return {
        "firewall": run.firewall,
        "profile": run.profile.name,
        "group": run.layout.group,
        "layout": run.layout.source,
        "members": len(run.layout.members),
        "hosts": len(run.layout.hosts),
        "hosts_with_members": hosts_with_members,
        "joins": len(run.layout.joins),
        "leaves": len(run.layout.leaves),
        "updates_total": t.get("filters_written", 0) + t.get("filters_removed", 0) + t.get("group_writes", 0),
        "refreshes_total": t.get("refreshes", 0),
        "filters_written": t.get("filters_written", 0),
        "filters_removed": t.get("filters_removed", 0),
        "group_writes": t.get("group_writes", 0),
        "objects_changed": t.get("objects_changed", 0),
        "rules_written": t.get("rules_written", 0),
        "rpc_casts": t.get("rpc_casts", 0),
        "rpc_received": t.get("rpc_received", 0),
        "iterations": t.get("iterations", 0),
        "port_ready_s": _t(statistics.median(ready)) if ready else None,
        "port_ready_p95_s": _t(percentile(ready, 95)) if ready else None,
        "port_ready_max_s": _t(ready[-1]) if ready else None,
        "busy_s": {h: _t(a.busy) for h, a in run.agents.items()},
        "busy_max_s": _t(max(a.busy for a in run.agents.values())),
        "note": run.layout.note,
    }


def percentile(values: list, q: float) -> float:
    """Linear-interpolated percentile (numpy's default), *values* sorted."""
    if len(values) == 1:
        return values[0]
    pos = (len(values) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (pos - low)


def layout_for(cloud: Optional[Cloud], design: dict) -> Layout:
    """The cloud's group and hosts when a topology is given, else one generated from the knobs."""
    if cloud is not None:
        return layout_from_cloud(cloud, design["placement"], design["joins"], design["leaves"])
    return generated_layout(design["members"], design["hosts"], design["placement"], design["joins"], design["leaves"])


def simulate(cloud: Optional[Cloud], design: dict, seed: int, topology: str = "") -> Run:
    """The scenario's model backend: ``Run`` with summary, events, operations, probes and metrics."""
    run = simulate_layout(layout_for(cloud, design), design["firewall"], design["profile"], seed)
    summary = summarize(run)
    for key in ("updates_total", "refreshes_total", "rules_written", "port_ready_s", "port_ready_p95_s"):
        run.rec.metric(key, summary[key], "s" if key.endswith("_s") else "")
    for host, busy in summary["busy_s"].items():
        run.rec.metric("busy_s", busy, "s", host)
    return Run("sg-fanout", "model", dict(design), seed, topology, summary, run.rec.records)


def sweep(members=(10, 20, 50, 100, 150, 200, 300, 500, 700, 1000), hosts=(1,), firewalls=FIREWALLS,
          placement: str = "spread", joins: int = 1, leaves: int = 0, profile="train-2019", seed: int = 0) -> pd.DataFrame:
    """Run the model over a grid; one row per run with the summary's scalar numbers."""
    rows = []
    cost = load_profile(profile)
    for firewall in firewalls:
        for h in hosts:
            for m in members:
                layout = generated_layout(m, h, placement, joins, leaves)
                summary = summarize(simulate_layout(layout, firewall, cost, seed))
                rows.append({k: v for k, v in summary.items() if not isinstance(v, dict) and k != "note"}
                            | {"placement": placement})
    return pd.DataFrame(rows)
