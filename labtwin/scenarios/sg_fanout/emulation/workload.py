"""The run context every step of an sg-fanout emulation works on."""

from __future__ import annotations

from dataclasses import dataclass

from labtwin.emulation.realise import Realisation

from ..spec import Layout
from .labtwin_agent.agent import HostAgent
from .plan import Shape
from .rules import EPort


@dataclass
class Workload:
    """What every step of one run works on: the realisation, where things are, the agents, the ports."""

    real: Realisation
    shape: Shape
    layout: Layout
    agents: dict[str, HostAgent]  # or neutron_agent.NeutronHostAgent: the same interface
    ports: dict[str, EPort]
    t0: float  # the run's clock origin (perf_counter)
    ready_timeout: float
