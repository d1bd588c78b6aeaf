"""The ``sg-fanout`` scenario, emulated: ports join a self-referencing group on real kernel state.

Realise the layout (:mod:`.plan`), let each host's emulated agent
(:mod:`.labtwin_agent.agent`) write the existing members' state, then per join:
read every host's state, start the clock (the API call:
the agents start processing the join at once -- there is no Nova, no RPC
and no agent loop delay here), apply on every host in parallel while
polling new port <-> every member with ICMP (:mod:`.poll`), read
the state again and count what changed (:mod:`.state`), then
probe with the substrate's scapy agent: new port <-> members (allowed on the
rule's protocol), new port <-> the non-member (blocked both ways). Then per
leave (a port delete): read, apply on every host (the departed port's filter
removed on its host, every remaining member's filter refreshed, the address
out of each host's group object: :meth:`.HostAgent.leave`), read and count
the same way, and probe from the departed address to every member that was
in the group before the run (blocked by their filters).

Summary keys are the model's: ``updates_total``, ``refreshes_total``,
``rules_written``, ``objects_changed``, ``port_ready_s``,
``port_ready_p95_s``, ``busy_s`` per host (see :mod:`.state`
for which kernel count maps to which model count). ``refreshes_total`` is
the number of port filters written: in these agents every recomputed filter
is written, so the kernel's write count is the recompute count.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Optional

from labtwin.description import Cloud
from labtwin.emulation.naming import new_run_id
from labtwin.emulation.realise import Realisation
from labtwin.emulation.runner import Step
from labtwin.records import Recorder, Run, percentile

from ..spec import (
    NEUTRON_FIREWALLS,
    Layout,
    SgFanoutDesign,
    data_plane_address,
    group_addresses,
    layout_for,
    layout_summary,
)
from . import neutron_agent, ovn_workload, rules, state
from .labtwin_agent.agent import HostAgent
from .pace import pace
from .plan import Shape, build
from .poll import first_allowed, poll_pairs, sentinels
from .rules import EPort
from .verdicts import probe_join, probe_left, referrers
from .workload import Workload, keep_fastest, ready_after, record_ready

#: The summary keys recorded as metrics (when the control gives them).
SUMMARY_METRICS = (
    "updates_total",
    "refreshes_total",
    "rules_written",
    "objects_changed",
    "port_ready_s",
    "port_ready_p95_s",
)
#: Untouched OVS flows must be visibly older than the apply (see state.flows_change).
SETTLE_S = 0.05


def emulate(
    cloud: Optional[Cloud],
    design: Mapping[str, Any],
    seed: int,
    topology: str = "",
    out_dir=None,
    ready_timeout: float = 30.0,
    verdicts: bool = True,
) -> Run:
    """Run the scenario's workload on real kernel state; return a ``Run`` with ``backend: emulation``.

    ``verdicts=False`` skips the scapy probes after each join (calibration
    only needs the timing; the poller's readiness is still measured).
    """
    design = SgFanoutDesign.of(design)
    layout = layout_for(cloud, design)
    if not layout.probe.startswith(("icmp", "tcp")):
        raise ValueError(
            f"sg-fanout emulation times readiness with ICMP or TCP; the group's rule admits {layout.probe}"
        )
    firewall = design.firewall
    if design.control == "neutron" and firewall not in NEUTRON_FIREWALLS:
        raise ValueError(
            f"control=neutron runs Neutron's agent with firewall={' or '.join(NEUTRON_FIREWALLS)}; "
            f"firewall={firewall} is emulated by labtwin's own agent only (control=labtwin)"
        )
    ports = rules.eports(layout)
    the_plan, shape = build(layout, ports, firewall, new_run_id(), design.control)
    rec = Recorder()
    t0 = time.perf_counter()
    with Realisation(the_plan, measures_time=True) as real:  # port_ready_s: no other run beside it
        if design.control == "ovn":
            summary = ovn_workload.emulate(
                real, shape, layout, ports, rec, t0, ready_timeout, verdicts, design.timing_repeats
            )
        else:
            summary = _emulate_agents(real, shape, layout, ports, design, rec, t0, ready_timeout, verdicts)
    real.record_teardown(rec, t0)  # its real duration (it was recorded as 0 s before the teardown ran)
    summary["control"] = design.control
    for key in (*SUMMARY_METRICS, *ovn_workload.COUNTS):
        if key in summary:
            rec.metric(key, summary[key], "s" if key.endswith("_s") else "")
    for host, busy in summary.get("busy_s", {}).items():
        rec.metric("busy_s", busy, "s", host)
    run = Run("sg-fanout", "emulation", dict(design), seed, topology, summary, rec.records)
    if out_dir:
        run.save(Path(out_dir))
    return run


def _emulate_agents(
    real: Realisation,
    shape: Shape,
    layout: Layout,
    ports: dict,
    design: SgFanoutDesign,
    rec: Recorder,
    t0: float,
    ready_timeout: float,
    verdicts: bool,
) -> dict:
    """The run under an agent on every host (labtwin's own, or Neutron's): its summary."""
    firewall = design.firewall
    if shape.own_ovs:
        neutron_agent.plug_own_ovs(real, shape, ports)
    rec.operation("bringup", "", 0.0, time.perf_counter() - t0, count=len(real.plan.namespaces))
    ofport = _ofports(real, shape)
    ports = _with_ofports(shape, ports, ofport)
    if design.control == "neutron":
        joining = {m.name for m in layout.joins}
        agents = neutron_agent.start_agents(real, shape, layout, firewall, ports, joining)
    else:
        agents = _agents(real, shape, layout, firewall, ports, ofport)
    work = Workload(real, shape, layout, agents, ports, t0, ready_timeout)
    totals: dict[str, int] = {}
    ready = []
    present = [ports[m.name] for m in layout.members]
    paces = pace(real, shape)
    for join in layout.joins:
        new = ports[join.name]
        probes: Optional[list] = [] if verdicts else None
        first = _join(work, new, present, rec, totals, probes)
        again = _timed_again(work, new, present, timed_joins(design) - 1)
        ready.append(keep_fastest(rec, [first, *again]))
        for probe_the_join in probes or ():  # after the timing: a calibration (no probes) times the same
            probe_the_join()
        present.append(new)
    paces += pace(real, shape)
    for name in layout.leaves:
        present = [p for p in present if p.name != name]
        _leave(work, ports[name], present, rec, totals, verdicts)
    summary = {
        **_summary(layout, firewall, agents, totals, ready, _refreshes_called(agents)),
        "pace_s": _r(statistics.median(paces)),
        "pace_key": firewall,
        "timed_joins": timed_joins(design),
        **_neutron_calls(agents),
        **_conntrack_deletes(agents, design.control),
    }
    return summary


def timed_joins(design: SgFanoutDesign) -> int:
    """How many times each join is timed: ``timing_repeats``, but once under Neutron's agent.

    A repeat makes the port leave and come back. Under Neutron's agent it comes back as a new port whose
    id shares its first 11 characters with the deleted one, so it has the same tap (Neutron's cache never
    takes a deleted id back). Neutron 29's agent leaves ACCEPT rules for a deleted port's tap in FORWARD
    (it refreshes the deleted device after removing it and takes it for a trusted port), and those rules
    would let the new port through before its own filter and the members' are written. A real VM's new
    port has a new tap, so only the first join is a real measurement there.
    """
    return 1 if design.control == "neutron" else design.timing_repeats


def _neutron_calls(agents: dict) -> dict:
    """Under control=neutron, what Neutron's agents asked their firewall drivers to do (joins and leaves,
    timing repeats excluded), summed over hosts: ``update_port_filter`` per refreshed port and so on."""
    calls: dict[str, int] = {}
    for agent in agents.values():
        for method, n in (agent.calls if isinstance(agent, neutron_agent.NeutronHostAgent) else {}).items():
            calls[method] = calls.get(method, 0) + n
    return {"neutron_calls": dict(sorted(calls.items()))} if calls else {}


def _conntrack_deletes(agents: dict, control: str) -> dict:
    """Under control=neutron, the ``conntrack -D`` commands Neutron's drivers queued (the model counts the same
    under its ``diff`` writes; labtwin's agent runs none and the model counts none for it)."""
    if control != "neutron":
        return {}
    return {"conntrack_deletes": _neutron_calls(agents).get("neutron_calls", {}).get("conntrack_deletes", 0)}


def _ofports(real: Realisation, shape: Shape) -> dict[str, int]:
    """OpenFlow port numbers by device (ovs shape; read once per run), or none (hybrid)."""
    if shape.hybrid:
        return {}
    if shape.own_ovs:
        return neutron_agent.own_ofports(real, shape)
    step = Step(("ovs-vsctl", "--format=csv", "--columns=name,ofport", "list", "Interface"), what="ofports")
    return state.parse_ofports(real.runner.run(step).stdout)


def _with_ofports(shape: Shape, ports: dict, ofport: dict[str, int]) -> dict:
    if shape.hybrid:
        return ports
    return {name: replace(p, ofport=ofport[shape.port_dev[name]]) for name, p in ports.items()}


def _agents(real: Realisation, shape: Shape, layout: Layout, firewall: str, ports: dict, ofport: dict) -> dict:
    """One agent per host, with the existing members (and the outsider) converged."""
    agents = {}
    joining = {m.name for m in layout.joins}
    ips = group_addresses(layout.members)
    for host in layout.hosts:
        if shape.hybrid:
            agent = HostAgent(host, firewall, layout, real.runner, pid=real.pid(shape.host_ns[host]))
        else:
            agent = HostAgent(
                host, firewall, layout, real.runner, bridge=shape.host_bridge[host], uplink=ofport[shape.uplink[host]]
            )
        agent.converge([p for p in ports.values() if p.host == host and p.name not in joining], ips)
        agents[host] = agent
    return agents


def _join(w: Workload, new: EPort, members: list, rec: Recorder, totals: dict, probes: Optional[list] = None) -> float:
    """One join, end to end (*members*: the group before it); returns its port_ready_s (inf when never ready).

    When *probes* is a list, the join's verdict probes are appended to it, to be run once its timing is done.
    """
    ips = group_addresses([*members, new])
    before = {h: a.read_state() for h, a in w.agents.items()}
    # who must learn of the join: members referencing the group, then ports of groups referencing it; who must
    # reach the new port: the members, if the group references itself (its rule admits them)
    watchers = [m for m in members if m.watches] + referrers(w)
    back = members if new.watches else []
    pairs = poll_pairs(w, new, watchers, back)
    time.sleep(SETTLE_S)
    t_api = time.perf_counter()
    rec.event(t_api - w.t0, "api_call", "neutron-server", new.name, op="create_port", host_id=new.host)
    spans, threads = _start_agents(w.agents, lambda h, a: a.join(new, ips))
    first, ready_at = first_allowed(pairs, t_api, timeout=w.ready_timeout, sentinels=sentinels(new, watchers, back))
    _joined(spans, threads)
    after = {h: a.read_state() for h, a in w.agents.items()}
    for h, (start, took) in spans.items():
        rec.operation("agent_iteration", h, start - w.t0, took, subject=new.name)
    _count(w, {h: a.local for h, a in w.agents.items()}, before, after, spans, totals, rec)
    ready = ready_after(ready_at)
    if probes is not None:
        probes.append(lambda: probe_join(w, new, watchers, first, rec, t_api - w.t0, back))
    record_ready(rec, w, new, t_api, ready)
    return ready


def _timed_again(w: Workload, new: EPort, members: list, times: int) -> list[float]:
    """*new* leaves and rejoins *times* more, each rejoin timed like the join (the same transition: the
    group of *members* gains *new*). A measurement only: these cycles' counts, records and probes are
    dropped, so counts and verdicts are the first join's. The join's time is the fastest of all: other
    work on the machine only ever adds time, and the model (like the calibration, which measures the
    same way) describes the work itself, not the interference."""
    scratch = Recorder()
    ready = []
    for _ in range(times):
        _leave(w, new, members, scratch, {}, verdicts=False)
        ready.append(_join(w, new, members, scratch, {}))
    return ready


def _start_agents(agents: dict, work) -> tuple[dict, list]:
    """``work(host, agent)`` on every host at once (one thread each); spans filled as they finish.

    Join the returned threads with :func:`_joined`, which raises the first host's failure.
    """
    spans: dict = {}

    def run(host, agent) -> None:
        try:
            spans[host] = work(host, agent)
        except BaseException as exc:  # noqa: BLE001 -- raised by _joined, in the caller's thread
            spans[host] = exc

    threads = [threading.Thread(target=run, args=(h, a)) for h, a in agents.items()]
    for t in threads:
        t.start()
    return spans, threads


def _joined(spans: dict, threads: list) -> dict:
    """Wait for the agents' threads; their spans, or the first host's failure raised."""
    for t in threads:
        t.join()
    for span in spans.values():
        if isinstance(span, BaseException):
            raise span
    return spans


def _leave(w: Workload, gone: EPort, remaining: list, rec: Recorder, totals: dict, verdicts: bool = True) -> None:
    """One member's delete, end to end (*remaining*: the group after it).

    Counted from the kernel as a join is (the departed port's filter shows
    as removed). No readiness poller: nothing becomes reachable. Then the
    departed address is probed against every member that was in the group
    before the run (blocked by their filters; see :func:`_probe_left`).
    """
    ips = group_addresses(remaining)
    before = {h: a.read_state() for h, a in w.agents.items()}
    owners = {h: list(a.local) for h, a in w.agents.items()}  # the departed port included
    time.sleep(SETTLE_S)
    t_api = time.perf_counter()
    rec.event(t_api - w.t0, "api_call", "neutron-server", gone.name, op="delete_port", host_id=gone.host)
    spans, threads = _start_agents(w.agents, lambda h, a: a.leave(gone, ips))
    _joined(spans, threads)
    after = {h: a.read_state() for h, a in w.agents.items()}
    for h, (start, took) in spans.items():
        rec.operation("agent_iteration", h, start - w.t0, took, subject=gone.name)
    _count(w, owners, before, after, spans, totals, rec)
    done = max(start + took for start, took in spans.values()) - t_api
    if verdicts:
        probe_left(w, gone, remaining, rec, t_api - w.t0 + done)
    # hosts whose firewall state still names the departed address (a packet check cannot see every stale
    # entry: under OVS the reply to the departed port has no flow back either way)
    stale = sorted(
        h
        for h, dump in after.items()
        if any(
            state.mentions_address(text, address)
            for address in (gone.ip, *map(data_plane_address, gone.pairs))
            for k, text in dump.items()
            if k != "t"
        )
    )
    rec.event(t_api - w.t0 + done, "leave_applied", gone.host, gone.name, latency_s=done, stale_hosts=stale)


def _count(w: Workload, owners: dict, before: dict, after: dict, spans: dict, totals: dict, rec: Recorder) -> None:
    """Kernel differences per host -> filters written/changed/removed, group objects written.

    *owners*: host -> the ports whose filters may have changed there (a departed one included).
    """
    layout = w.layout
    for host, agent in w.agents.items():
        b, a = before[host], after[host]
        start, took = spans[host]
        local = {p.name: p for p in owners[host]}
        if agent.firewall in ("iptables", "ipset"):
            owner = {c: p.name for p in local.values() for c in p.chains()}
            filters = state.iptables_change(
                owner,
                state.parse_iptables_save(b["iptables"]),
                state.parse_iptables_save(a["iptables"]),
                state.parse_nft_handles(b["nft"]),
                state.parse_nft_handles(a["nft"]),
                by="content" if isinstance(agent, neutron_agent.NeutronHostAgent) else "handle",  # iptables_change
            )
            group = state.set_change(
                rules.group_set(layout), state.parse_ipset_save(b["ipset"]), state.parse_ipset_save(a["ipset"])
            )
        else:
            owner_of = state.ovs_owner(
                {p.ofport: p.name for p in local.values()}, {p.mac: p.name for p in local.values()}, "group"
            )
            old, new = state.parse_dump_flows(b["flows"]), state.parse_dump_flows(a["flows"])
            filters = state.flows_change(
                lambda f: None if owner_of(f) == "group" else owner_of(f), old, new, a["t"] - start
            )
            group = state.group_flows_change(lambda f: owner_of(f) == "group", old, new)
        counts = {
            "filters_written": len(filters.written),
            "filters_removed": len(filters.removed),
            "filters_changed": len(filters.changed - filters.removed),
            "group_writes": len(group.written),
            "rules_written": filters.rules_written + group.rules_written,
            "rules_reinserted": filters.rules_reinserted,
        }
        for k, v in counts.items():
            totals[k] = totals.get(k, 0) + v
        rec.operation(
            "kernel_diff",
            host,
            start - w.t0,
            took,
            counts["filters_written"] + counts["group_writes"],
            layout.group,
            **counts,
        )


def _refreshes_called(agents: dict) -> Optional[int]:
    """Filters Neutron's agents recomputed (``update_port_filter`` + ``prepare_port_filter`` calls), or None
    under labtwin's agent, whose every recompute is a write the kernel shows."""
    calls = _neutron_calls(agents).get("neutron_calls")
    if calls is None:
        return None
    return calls.get("update_port_filter", 0) + calls.get("prepare_port_filter", 0)


def _summary(
    layout: Layout, firewall: str, agents: dict, totals: dict, ready: list, refreshes: Optional[int] = None
) -> dict:
    """*refreshes*: the recompute count when the agent tells it (Neutron's calls); else the kernel's writes."""
    finite = sorted(r for r in ready)
    updates = totals.get("filters_written", 0) + totals.get("filters_removed", 0) + totals.get("group_writes", 0)
    return {
        "firewall": firewall,
        "profile": "emulation",
        **layout_summary(layout),
        "updates_total": updates,
        "refreshes_total": totals.get("filters_written", 0) if refreshes is None else refreshes,
        "filters_written": totals.get("filters_written", 0),
        "filters_removed": totals.get("filters_removed", 0),
        "group_writes": totals.get("group_writes", 0),
        "objects_changed": totals.get("filters_changed", 0)
        + totals.get("filters_removed", 0)
        + totals.get("group_writes", 0),
        "rules_written": totals.get("rules_written", 0),
        **({"rules_reinserted": totals.get("rules_reinserted", 0)} if refreshes is not None else {}),
        "port_ready_s": _r(statistics.median(finite)) if finite else None,
        "port_ready_p95_s": _r(percentile(finite, 95)) if finite else None,
        "port_ready_max_s": _r(finite[-1]) if finite else None,
        "busy_s": {h: _r(a.busy_s) for h, a in agents.items()},
        "busy_max_s": _r(max(a.busy_s for a in agents.values())),
        "note": layout.note,
    }


def _r(value: float) -> Optional[float]:
    return round(value, 6) if math.isfinite(value) else None
