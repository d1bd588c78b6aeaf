"""Scenario registry: one module per design topic."""

from __future__ import annotations

from .base import Knob, Scenario, ScenarioError, Tolerance, TopologyUnfit, topologies_dir
from .dvr import SCENARIO as DVR
from .multisegment import SCENARIO as MULTISEGMENT
from .reachability import SCENARIO as REACHABILITY
from .sg_fanout import SCENARIO as SG_FANOUT

SCENARIOS: dict[str, Scenario] = {s.name: s for s in (REACHABILITY, DVR, MULTISEGMENT, SG_FANOUT)}


def get_scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ScenarioError(f"unknown scenario {name!r}; scenarios: {', '.join(SCENARIOS)}") from None


__all__ = [
    "Knob",
    "SCENARIOS",
    "Scenario",
    "ScenarioError",
    "Tolerance",
    "TopologyUnfit",
    "get_scenario",
    "topologies_dir",
]
