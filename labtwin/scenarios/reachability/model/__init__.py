"""Model of the built-in ``reachability`` scenario: who may reach whom.

Every ordered pair of VM ports is asked every probe flow; the answer comes
from :mod:`labtwin.description.policy` (security groups plus L3 connectivity), not
from packets. The emulation answers the same questions with real packets.
"""

from __future__ import annotations

from itertools import permutations
from typing import Any, Mapping

from labtwin.description import Cloud
from labtwin.description.flows import parse_flows
from labtwin.description.notes import ovn_localnet_conflicts, ports_on_localnet_conflicts
from labtwin.description.policy import evaluate
from labtwin.records import Recorder, Run

from ..spec import OVN_LOCALNET_CONFLICT, ReachabilityDesign


def simulate(cloud: Cloud, design: Mapping[str, Any], seed: int, topology: str = "") -> Run:
    """Every ordered VM pair asked every probe flow, answered by the policy."""
    design = ReachabilityDesign.of(design)
    recorder = Recorder()
    flows = parse_flows(design.probes)
    matrix: dict[str, dict[str, list[str]]] = {}
    unmodelled = ports_on_localnet_conflicts(cloud) if design.control == "ovn" else set()
    for src, dst in permutations(cloud.vm_ports, 2):
        for flow in flows:
            verdict = evaluate(cloud, src, dst, flow)
            not_compared: dict[str, Any] = (
                {"not_compared": OVN_LOCALNET_CONFLICT} if {src.name, dst.name} & unmodelled else {}
            )
            recorder.probe(
                src.name,
                dst.name,
                flow.protocol,
                flow.port,
                "allowed" if verdict.allowed else "blocked",
                reason=verdict.reason,
                **not_compared,
            )
            if verdict.allowed:
                matrix.setdefault(src.name, {}).setdefault(dst.name, []).append(str(flow))
    probes = [r for r in recorder.records]
    allowed = sum(p.verdict == "allowed" for p in probes if "not_compared" not in p.detail)
    recorder.metric("probe_count", len(probes))
    recorder.metric("allowed", allowed)
    blocked = sum(p.verdict == "blocked" for p in probes)
    summary = {"probe_count": len(probes), "allowed": allowed, "blocked": blocked, "matrix": matrix}
    if design.control == "ovn":
        conflicts = ovn_localnet_conflicts(cloud)
        summary["ovn_localnet_conflicts"] = sum(len(networks) for networks in conflicts.values())
        summary["not_compared"] = sum("not_compared" in p.detail for p in probes)
    return Run("reachability", "model", dict(design), seed, topology, summary, recorder.records)
