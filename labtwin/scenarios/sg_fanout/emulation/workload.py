"""The run context every step of an sg-fanout emulation works on."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from labtwin.emulation.realise import Realisation
from labtwin.records import Recorder

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


def ready_after(ready_at: Optional[float]) -> float:
    """The poller's answer as a time to ready: inf when the port never became reachable."""
    return ready_at if ready_at is not None else math.inf


def record_ready(rec: Recorder, w: Workload, new: EPort, t_api: float, ready: float) -> None:
    """The join's ``port_ready`` event: at the ready time (or the timeout, with no latency, when never ready)."""
    finite = math.isfinite(ready)
    rec.event(
        t_api - w.t0 + (ready if finite else w.ready_timeout),
        "port_ready",
        new.host,
        new.name,
        latency_s=ready if finite else None,
    )
