"""Model of ``neighbours``: two ports reach each other exactly when they are on one network.

No router is consulted (the emulation builds none) and no security group (the scenario refuses clouds
that have them): on one Neutron network, two ports share a broadcast domain.
"""

from __future__ import annotations

from typing import Any, Mapping

from labtwin.description import Cloud
from labtwin.records import Recorder, Run

from ..spec import FLOW, NeighboursDesign, pairs


def simulate(cloud: Cloud, design: Mapping[str, Any], seed: int, topology: str = "") -> Run:
    """Every ordered pair asked: allowed exactly when both ports are on one network."""
    design = NeighboursDesign.of(design)  # a plain dict (a test, a notebook) is checked as --set is
    recorder = Recorder()
    for src, dst in pairs(cloud):
        same = src.network_id == dst.network_id
        recorder.probe(
            src.name,
            dst.name,
            FLOW,
            None,
            "allowed" if same else "blocked",
            reason="same network" if same else "different networks, no router",
        )
    return Run("neighbours", "model", dict(design), seed, topology, summarize(recorder), recorder.records)


def summarize(recorder: Recorder) -> dict:
    """The headline numbers (the emulation reports the same keys)."""
    count = len(recorder.records)
    allowed = sum(p.verdict == "allowed" for p in recorder.records)
    recorder.metric("probe_count", count)
    recorder.metric("allowed", allowed)
    return {"probe_count": count, "allowed": allowed, "blocked": count - allowed}
