"""The run context every step of an sg-fanout emulation works on."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional

from labtwin.emulation.realise import Realisation
from labtwin.records import Event, Recorder

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


def keep_fastest(rec: Recorder, timed: list[float], **per_attempt: list) -> float:
    """The join's time: the fastest of its *timed* attempts. Its port_ready event (recorded by the first
    attempt, at that attempt's time) is rewritten to carry it, with the first and every attempt beside;
    each of *per_attempt*'s lists (one value per attempt) gives the fastest attempt's value under its name."""
    kept = min(timed)
    fastest = timed.index(kept)
    at = max(i for i, r in enumerate(rec.records) if isinstance(r, Event) and r.kind == "port_ready")
    event = rec.records[at]
    finite = [round(t, 6) if math.isfinite(t) else None for t in timed]
    chosen = {name: values[fastest] for name, values in per_attempt.items()}
    rec.records[at] = replace(
        event,
        detail={**event.detail, "latency_s": finite[fastest], "first_s": finite[0], "attempts_s": finite, **chosen},
    )
    return kept
