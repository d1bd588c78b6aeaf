"""Assertion helpers for design checks: a failing check explains itself in Neutron's words.

Each helper takes a :class:`~labtwin.records.Run` (from the pytest plugin's
``simulate``/``emulate`` fixtures, :func:`labtwin.api.simulate`, or a recorded
trace via :func:`load_trace`) and raises :class:`AssertionError` whose message
says which ports, which path (its hops), the numbers on both sides and the
design knobs of the run. A question the run cannot answer (a run of another
scenario, a port or traffic class it never probed) raises :class:`RunMismatch`
instead, so a typo never reads like a design failure.

>>> from labtwin.api import simulate
>>> run = simulate("reachability", seed=1)
>>> assert_reachable(run, "vm-a", "vm-b", "tcp:22")
>>> assert_blocked(run, "vm-c", "vm-a", "tcp:22")
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Optional, Union

import pandas as pd

from .records import Run

__all__ = [
    "RunMismatch",
    "load_trace",
    "describe_run",
    "assert_reachable",
    "assert_blocked",
    "assert_path_crosses",
    "assert_path_avoids",
    "assert_only_classes_cross_network_node",
    "assert_updates_at_most",
    "assert_ready_within",
    "assert_allocations_succeed",
    "assert_no_bridge_collisions",
    "assert_interface_names_fit",
    "assert_twin_agrees",
]


class RunMismatch(ValueError):
    """The run cannot answer the question: another scenario, or a port/class it never probed."""


# --- runs -------------------------------------------------------------------------------


def load_trace(path: Union[str, Path]) -> Run:
    """Load a recorded run (``summary.json`` + ``records.jsonl``); needs neither root nor OVS.

    *path* is a run directory, or a directory holding exactly one run (e.g.
    ``traces/sg-fanout/``).
    """
    where = Path(path)
    if (where / "summary.json").is_file():
        return Run.load(where)
    runs = sorted(p.parent for p in where.glob("*/summary.json")) if where.is_dir() else []
    if len(runs) == 1:
        return Run.load(runs[0])
    found = ", ".join(str(r) for r in runs) or "none"
    raise FileNotFoundError(f"no single recorded run under {where} (runs found: {found})")


def describe_run(run: Run) -> str:
    """One line naming the run: scenario, backend, seed, topology and every design knob."""
    knobs = " ".join(f"{k}={v}" for k, v in run.design.items()) or "(defaults)"
    topology = run.topology or "generated from the knobs"
    return f"{run.scenario} {run.backend} run, seed {run.seed}, topology {topology}; design: {knobs}"


def _fail(headline: str, run: Optional[Run], *details: str) -> AssertionError:
    lines = [headline, *(f"  {d}" for d in details if d)]
    if run is not None:
        lines.append(f"  run: {describe_run(run)}")
    return AssertionError("\n".join(lines))


def _summary(run: Run, scenarios: Iterable[str], *keys: str) -> dict:
    """The run's summary, after checking it comes from one of *scenarios* and has *keys*."""
    scenarios = tuple(scenarios)
    if run.scenario not in scenarios:
        raise RunMismatch(
            f"this check reads a {' or '.join(scenarios)} run's summary; got a {run.scenario} run ({describe_run(run)})"
        )
    missing = [k for k in keys if k not in run.summary]
    if missing:
        raise RunMismatch(
            f"the {run.scenario} {run.backend} run's summary has no {', '.join(missing)} "
            f"(it has: {', '.join(sorted(run.summary))})"
        )
    return run.summary


# --- reachability -----------------------------------------------------------------------


def _flow(flow: str) -> tuple[str, Optional[int]]:
    """``icmp`` -> ("icmp", None); ``tcp:22`` -> ("tcp", 22)."""
    proto, _, port = flow.strip().partition(":")
    if port and not port.isdigit():
        raise RunMismatch(f"bad flow {flow!r}: use icmp, tcp:PORT or udp:PORT")
    return proto, int(port) if port else None


def _probe(run: Run, src: str, dst: str, flow: str) -> pd.Series:
    proto, port = _flow(flow)
    probes = run.probes
    pair = probes[(probes["src"] == src) & (probes["dst"] == dst)]
    same_port = pair["port"].isna() if port is None else pair["port"] == port
    hit = pair[(pair["protocol"] == proto) & same_port]
    if hit.empty:
        asked = sorted({_flow_text(r.protocol, r.port) for r in pair.itertuples()})
        ports = sorted(set(probes["src"]) | set(probes["dst"]))
        raise RunMismatch(
            f"the {run.scenario} {run.backend} run never probed {src} -> {dst} on {flow}; "
            + (
                f"flows probed for that pair: {', '.join(asked)}"
                if asked
                else f"ports probed: {', '.join(ports) or 'none'}"
            )
        )
    return hit.iloc[-1]


def _flow_text(proto: str, port) -> str:
    return proto if port is None or (isinstance(port, float) and math.isnan(port)) else f"{proto}:{int(port)}"


def _probe_details(probe: pd.Series) -> list[str]:
    detail = probe["detail"] if isinstance(probe["detail"], dict) else {}
    lines = [f"{k}: {detail[k]}" for k in ("reason", "class", "nat", "note") if detail.get(k)]
    if detail.get("hops"):
        lines.append(f"path: {_hops(detail['hops'])}")
    return lines


def assert_reachable(run: Run, src: str, dst: str, flow: str = "icmp") -> None:
    """Port *src* reaches port *dst* on *flow* (``icmp``, ``tcp:22``, ``udp:53``)."""
    probe = _probe(run, src, dst, flow)
    if probe["verdict"] != "allowed":
        raise _fail(
            f"{src} cannot reach {dst} on {flow}: the probe was {probe['verdict']}", run, *_probe_details(probe)
        )


def assert_blocked(run: Run, src: str, dst: str, flow: str = "icmp") -> None:
    """Port *src* does not reach port *dst* on *flow*."""
    probe = _probe(run, src, dst, flow)
    if probe["verdict"] != "blocked":
        raise _fail(
            f"{src} reaches {dst} on {flow}, expected it blocked: the probe was {probe['verdict']}",
            run,
            *_probe_details(probe),
        )


# --- packet paths (dvr) -----------------------------------------------------------------


def _hops(hops: list[str]) -> str:
    return " -> ".join(hops)


def _path(run: Run, traffic_class: str) -> dict:
    paths = _summary(run, ("dvr",), "paths")["paths"]
    for path in paths:
        if path.get("class") == traffic_class:
            return path
    raise RunMismatch(
        f"the dvr run has no traffic class {traffic_class!r}; classes: {', '.join(p.get('class', '?') for p in paths)}"
    )


@lru_cache(maxsize=32)
def _hosts_by_role(topology: str) -> dict[str, frozenset[str]]:
    from .description import load_cloud

    cloud = load_cloud(topology)
    roles: dict[str, set[str]] = {}
    for host in cloud.hosts:
        roles.setdefault(host.role, set()).add(host.name)
    return {role: frozenset(names) for role, names in roles.items()}


def _node_hosts(run: Run, node: str) -> frozenset[str]:
    """Host names a host *role* (``network``, ``compute``) stands for in the run's topology."""
    if run.topology and Path(run.topology).is_file():
        return _hosts_by_role(run.topology).get(node, frozenset())
    return frozenset()


def _hops_at(run: Run, path: dict, node: str) -> list[str]:
    """The hops of *path* at *node*: a host role, a host name, a namespace/device/bridge
    name, or a name prefix ending in ``-`` (``snat-``, ``qrouter-``, ``fg-``)."""
    hosts = _node_hosts(run, node)
    at = []
    for hop in path.get("hops", []):
        parts = hop.split(":")
        if parts[0] in hosts or node in parts or (node.endswith("-") and any(p.startswith(node) for p in parts)):
            at.append(hop)
    if not at and node == "network" and not hosts and path.get("via_network_node"):
        at = [h for h in path.get("hops", []) if h not in ("fabric", "external")]  # no topology: trust the flag
    return at


def _node_label(run: Run, node: str) -> str:
    hosts = _node_hosts(run, node)
    if hosts:
        return f"the {node} node ({', '.join(sorted(hosts))})"
    return f"{node}* (a namespace or device)" if node.endswith("-") else node


def assert_path_crosses(run: Run, traffic_class: str, node: str) -> None:
    """The path of *traffic_class* goes through *node* (host role, host, namespace or device)."""
    path = _path(run, traffic_class)
    if not _hops_at(run, path, node):
        raise _fail(
            f"{traffic_class} does not cross {_node_label(run, node)}",
            run,
            f"path {path.get('src', '?')} -> {path.get('dst', '?')}: {_hops(path.get('hops', []))}",
            f"nat: {path.get('nat')}, reachable: {path.get('reachable')}",
        )


def assert_path_avoids(run: Run, traffic_class: str, node: str) -> None:
    """The path of *traffic_class* never touches *node* (host role, host, namespace or device)."""
    path = _path(run, traffic_class)
    at = _hops_at(run, path, node)
    if at:
        raise _fail(
            f"{traffic_class} crosses {_node_label(run, node)} at {', '.join(at)}",
            run,
            f"path {path.get('src', '?')} -> {path.get('dst', '?')}: {_hops(path.get('hops', []))}",
            f"nat: {path.get('nat')}, reachable: {path.get('reachable')}",
        )


def assert_only_classes_cross_network_node(run: Run, classes: Iterable[str]) -> None:
    """No traffic class outside *classes* crosses the network node."""
    allowed = set(classes)
    paths = _summary(run, ("dvr",), "paths")["paths"]
    known = {p.get("class") for p in paths}
    unknown = allowed - known
    if unknown:
        raise RunMismatch(
            f"no traffic class {', '.join(sorted(unknown))} in the dvr run; classes: {', '.join(sorted(known))}"
        )
    crossing = [p for p in paths if p.get("via_network_node")]
    extra = [p for p in crossing if p.get("class") not in allowed]
    if extra:
        share = run.summary.get("network_node_share")
        raise _fail(
            f"{len(extra)} traffic class(es) beyond {', '.join(sorted(allowed)) or 'none'} cross the network node: "
            f"{', '.join(p['class'] for p in extra)}",
            run,
            *(f"{p['class']} ({p.get('src', '?')} -> {p.get('dst', '?')}): {_hops(p.get('hops', []))}" for p in extra),
            f"classes crossing it: {', '.join(p['class'] for p in crossing)}",
            f"network node share of the traffic: {share}" if share is not None else "",
        )


# --- security-group fanout (sg-fanout) -------------------------------------------------


def _workload(run: Run) -> str:
    s = run.summary
    joins, members, hosts = s.get("joins", "?"), s.get("members", "?"), s.get("hosts", "?")
    return f"{joins} port(s) joining a group of {members} members on {hosts} host(s) with {s.get('firewall', '?')}"


def _fanout_context(run: Run) -> str:
    s = run.summary
    parts = [
        f"{k} {s[k]}"
        for k in ("updates_total", "refreshes_total", "rules_written", "port_ready_s", "port_ready_p95_s")
        if k in s
    ]
    return "; ".join(parts)


def assert_updates_at_most(run: Run, n: int) -> None:
    """Data-plane writes (port filters rewritten + group sets/tables written) are at most *n*."""
    updates = _summary(run, ("sg-fanout",), "updates_total")["updates_total"]
    if updates > n:
        raise _fail(
            f"{_workload(run)} made {updates} data-plane updates, more than the {n} allowed",
            run,
            f"{_fanout_context(run)}",
        )


def assert_ready_within(run: Run, seconds: float, statistic: str = "median") -> None:
    """A joining port is ready (reaches and is reached by every member) within *seconds*.

    *statistic* is ``median`` (``port_ready_s``) or ``p95`` (``port_ready_p95_s``).
    """
    key = {"median": "port_ready_s", "p95": "port_ready_p95_s"}[statistic]
    ready = _summary(run, ("sg-fanout",), key)[key]
    if ready is None or ready > seconds:
        when = "never" if ready is None else f"after {ready:.1f} s"
        raise _fail(
            f"{_workload(run)}: the new port is ready {when} ({statistic}), not within {seconds} s",
            run,
            f"{_fanout_context(run)}",
            _busiest_host(run),
        )


def _busiest_host(run: Run) -> str:
    busy = next(
        (run.summary[k] for k in ("host_busy_s", "busy_s", "per_host_busy_s") if isinstance(run.summary.get(k), dict)),
        None,
    )
    if not busy:
        return ""
    host, seconds = max(busy.items(), key=lambda kv: kv[1] or 0)
    return f"busiest host: {host} ({seconds} s busy)"


# --- routed networks (multisegment) ----------------------------------------------------


def assert_allocations_succeed(run: Run, demand: Optional[int] = None) -> None:
    """Every port request got an address (and at least *demand* were allocated, if given)."""
    s = _summary(run, ("multisegment",), "allocations_ok", "allocations_failed")
    failed = {reason: n for reason, n in s["allocations_failed"].items() if n}
    short = demand is not None and s["allocations_ok"] < demand
    if failed or short:
        requested = s.get("requests", s["allocations_ok"] + sum(failed.values()))
        headline = (
            f"{sum(failed.values())} of {requested} port requests got no address"
            if failed
            else f"only {s['allocations_ok']} allocations for a demand of {demand}"
        )
        first = s.get("time_to_first_failure_s")
        raise _fail(
            headline,
            run,
            f"allocated {s['allocations_ok']}; failed by reason: "
            + (", ".join(f"{r} {n}" for r, n in failed.items()) or "none"),
            f"first failure after {first / 86400:.1f} days" if isinstance(first, (int, float)) else "",
            f"segments: {s.get('segments_needed')} in use, at most {s.get('segments_per_host_max')} per host; "
            f"free addresses: {s.get('free_addresses')}",
        )


def assert_no_bridge_collisions(run: Run) -> None:
    """No host maps two segments to one bridge (or one local VLAN)."""
    s = _summary(run, ("multisegment",), "bridge_collisions")
    collisions = s["bridge_collisions"]
    if collisions:
        raise _fail(
            f"{len(collisions)} bridge collision(s): two segments share one bridge/local VLAN on a host",
            run,
            *(
                f"host {c.get('host')}: {c.get('device')} carries segments {', '.join(c.get('segments', []))}"
                f" ({c.get('agent', '')} agent)"
                for c in collisions
            ),
            f"l2 leaks: {s.get('l2_leaks')}" if "l2_leaks" in s else "",
        )


def assert_interface_names_fit(run: Run, limit: int = 15) -> None:
    """Every bridge/interface name the design creates fits Linux's *limit* characters."""
    s = _summary(run, ("multisegment",), "longest_interface_name")
    name = s["longest_interface_name"] or ""
    if len(name) > limit:
        raise _fail(f"interface name {name!r} has {len(name)} characters, more than {limit}", run)


# --- twins ------------------------------------------------------------------------------


def assert_twin_agrees(report) -> None:
    """The model and the emulation agree on every probe and every toleranced metric."""
    if len(report.rows) == 0:
        raise AssertionError(f"twin {report.scenario}: nothing was compared (no probes, no metrics)")
    if report.agree:
        return
    bad = report.disagreements
    lines = [
        f"{r.kind} {r.key}: model {r.model}, emulation {r.emulation} (tolerance {r.tolerance})"
        for r in bad.itertuples(index=False)
    ]
    raise AssertionError(
        "\n  ".join(
            [f"twin {report.scenario}: model and emulation disagree on {len(bad)} of {len(report.rows)} comparisons"]
            + lines
        )
    )
