"""Model of the built-in ``reachability`` scenario: who may reach whom.

Every ordered pair of VM ports is asked every probe flow; the answer comes
from :mod:`labtwin.scenarios.reachability.model.policy` (security groups plus L3 connectivity), not
from packets. The emulation answers the same questions with real packets.
"""

from __future__ import annotations

from itertools import permutations
from typing import Any, Mapping

from labtwin.description import Cloud
from labtwin.description.flows import parse_flows
from labtwin.records import Recorder, Run

from ..spec import ReachabilityDesign
from .policy import evaluate


def simulate(cloud: Cloud, design: Mapping[str, Any], seed: int, topology: str = "") -> Run:
    """Every ordered VM pair asked every probe flow, answered by the policy."""
    design = ReachabilityDesign.of(design)
    recorder = Recorder()
    flows = parse_flows(design.probes)
    matrix: dict[str, dict[str, list[str]]] = {}
    for src, dst in permutations(cloud.vm_ports, 2):
        for flow in flows:
            verdict = evaluate(cloud, src, dst, flow)
            recorder.probe(
                src.name,
                dst.name,
                flow.protocol,
                flow.port,
                "allowed" if verdict.allowed else "blocked",
                reason=verdict.reason,
            )
            if verdict.allowed:
                matrix.setdefault(src.name, {}).setdefault(dst.name, []).append(str(flow))
    probes = [r for r in recorder.records]
    allowed = sum(p.verdict == "allowed" for p in probes)
    recorder.metric("probe_count", len(probes))
    recorder.metric("allowed", allowed)
    summary = {"probe_count": len(probes), "allowed": allowed, "blocked": len(probes) - allowed, "matrix": matrix}
    return Run("reachability", "model", dict(design), seed, topology, summary, recorder.records)
