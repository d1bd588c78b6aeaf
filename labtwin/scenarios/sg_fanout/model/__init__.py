"""Model of the ``sg-fanout`` scenario: a port joins a group that references itself.

SimPy processes (in :mod:`labtwin.scenarios.sg_fanout.model.process`) over an explicit
``FanoutRun`` that carries clock, seeded RNG, recorder and state (no module state):

- ``join`` / ``leave``: the API call, neutron-server's DB commit,
  the ``security_groups_member_updated`` cast (``fanout=True``: every L2
  agent, members or not), then Nova's binding and the vif plug that makes the
  device appear on its host;
- ``fanout``: the cast reaching every agent; each agent's handler puts
  its local ports that reference the group in ``devices_to_refilter``
  (deferred refresh, ``defer_refresh_firewall=True``);
- ``agent_loop``: the OVS agent's ``rpc_loop``: iterations start every
  ``polling_interval`` (or right after an iteration that overran it); each
  fetches ``security_group_info_for_devices`` in chunks of 100 devices, then
  does the strategy's writes (:mod:`labtwin.scenarios.sg_fanout.model.strategies`).

Simplifications, stated where they matter: idle loop iterations are skipped
(an agent sleeps until work arrives, then waits for its next tick, which is
what polling would do); one iteration's work is one timeout whose duration the
cost profile computes; the membership the server returns is the one at the
start of the fetch; neutron-server has enough RPC workers (no server queueing).

Same layout, design and seed give byte-identical records.
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any, Mapping, Optional

from labtwin.description import Cloud
from labtwin.records import Recorder, Run, percentile

from ..profiles import load_profile
from ..spec import AGENT_FIREWALLS, FIREWALLS, SgFanoutDesign, layout_for, layout_summary
from . import ovn
from .process import FanoutRun, rounded, simulate_layout

if TYPE_CHECKING:  # a sweep's table; a single run imports no pandas
    import pandas as pd

__all__ = ["simulate", "simulate_layout", "summarize", "sweep", "layout_for", "FIREWALLS"]


def summarize(run: FanoutRun) -> dict:
    """The headline numbers (no formula-based expectations: tests compute those separately)."""
    t = run.totals
    ready = sorted(run.ready_s)
    hosts_with_members = len({m.host for m in run.members.values()})
    return {
        "firewall": run.firewall,
        "profile": run.profile.name,
        "kernel_writes": run.writes,
        "group": run.layout.group,
        "layout": run.layout.source,
        "members": len(run.layout.members),
        "hosts": len(run.layout.hosts),
        "hosts_with_members": hosts_with_members,
        "joins": len(run.layout.joins),
        "leaves": len(run.layout.leaves),
        **(
            {"referrers": len(run.layout.referrers), "hosts_refreshed": len(run.hosts_refreshed)}
            if run.layout.cross_group
            else {}
        ),
        "updates_total": t.get("filters_written", 0) + t.get("filters_removed", 0) + t.get("group_writes", 0),
        "refreshes_total": t.get("refreshes", 0),
        "filters_written": t.get("filters_written", 0),
        "filters_removed": t.get("filters_removed", 0),
        "group_writes": t.get("group_writes", 0),
        "objects_changed": t.get("objects_changed", 0),
        "rules_written": t.get("rules_written", 0),
        # Neutron's OVS firewall's connection cleanup (writes="diff": Neutron's agent; labtwin's agent runs none;
        # the hybrid driver's is not modelled: strategies._ovs_conntrack_deletes says why)
        **(
            {"conntrack_deletes": t.get("conntrack_deletes", 0)}
            if run.writes == "diff" and run.firewall == "ovs"
            else {}
        ),
        "rpc_casts": t.get("rpc_casts", 0),
        "rpc_received": t.get("rpc_received", 0),
        "iterations": t.get("iterations", 0),
        "changes_overlapped": t.get("changes_overlapped", 0),
        "port_ready_s": rounded(statistics.median(ready)) if ready else None,
        "port_ready_p95_s": rounded(percentile(ready, 95)) if ready else None,
        "port_ready_max_s": rounded(ready[-1]) if ready else None,
        "busy_s": {h: rounded(a.busy) for h, a in run.agents.items()},
        "busy_max_s": rounded(max(a.busy for a in run.agents.values())),
        "note": run.layout.note,
    }


def kernel_writes(design: SgFanoutDesign) -> str:
    """What the counts describe: Neutron's diff for control=neutron, labtwin's own agent's rebuild otherwise."""
    return writes_of(design.control)


def writes_of(control: str) -> str:
    """The model's ``writes`` for the agent *control* names (see :func:`kernel_writes`)."""
    return "diff" if control == "neutron" else "rebuild"


def simulate(cloud: Optional[Cloud], design: Mapping[str, Any], seed: int, topology: str = "") -> Run:
    """The scenario's model backend: ``Run`` with summary, events, operations, probes and metrics."""
    design = SgFanoutDesign.of(design)
    if design.firewall == "ovn":
        return _simulate_ovn(cloud, design, seed, topology)
    run = simulate_layout(layout_for(cloud, design), design.firewall, design.profile, seed, kernel_writes(design))
    summary = summarize(run)
    for key in ("updates_total", "refreshes_total", "rules_written", "port_ready_s", "port_ready_p95_s"):
        run.rec.metric(key, summary[key], "s" if key.endswith("_s") else "")
    for host, busy in summary["busy_s"].items():
        run.rec.metric("busy_s", busy, "s", host)
    return Run("sg-fanout", "model", dict(design), seed, topology, summary, run.rec.records)


def _simulate_ovn(cloud: Optional[Cloud], design: SgFanoutDesign, seed: int, topology: str) -> Run:
    """ML2/OVN: what each change writes to the NB, the SB and every chassis's OpenFlow (:mod:`.ovn`)."""
    layout = layout_for(cloud, design)
    if layout.cross_group:  # refused up front by the scenario's `missing`; here for direct callers
        raise ValueError(
            f"firewall=ovn: group {layout.group} is referenced by other groups or does not reference itself; the "
            "ML2/OVN model counts the group's own ACLs only (not modelled)"
        )
    rec = Recorder()
    profile = load_profile(design.profile)
    counts = ovn.run_layout(layout, rec, profile)
    ready = sorted(counts.pop("ready_s"))
    summary = {
        "firewall": "ovn",
        "profile": profile.name,
        **layout_summary(layout),
        **counts,
        # a calibration of this machine's OVN times the joins; a named profile has no OVN costs (None)
        "port_ready_s": rounded(statistics.median(ready)) if ready else None,
        "note": layout.note,
    }
    for key in ovn.COUNTS:
        rec.metric(key, summary[key])
    return Run("sg-fanout", "model", dict(design), seed, topology, summary, rec.records)


def sweep(
    members=(10, 20, 50, 100, 150, 200, 300, 500, 700, 1000),
    hosts=(1,),
    firewalls=AGENT_FIREWALLS,
    placement: str = "spread",
    joins: int = 1,
    leaves: int = 0,
    profile: str = "train-2019",
    seed: int = 0,
) -> pd.DataFrame:
    """The model over firewalls x hosts x members on a generated cloud, one row per run (:func:`labtwin.sweep.run`
    in this process: ``labtwin sweep sg-fanout`` runs the same grid on Dask); *profile* as the knob takes it."""
    from labtwin import sweep as sweeps

    vary = {"firewall": firewalls, "hosts": hosts, "members": members}
    fixed = {"placement": placement, "joins": joins, "leaves": leaves, "profile": profile}
    return sweeps.run("sg-fanout", vary, fixed, seed=seed, scheduler="serial").table
