"""A VRRP failover of the VIP, and when the client reaches the VIP again.

keepalived's backup declares the master dead after
``Master_Down_Interval = 3 * advert_int + skew``, ``skew = (256 - priority) / 256``
(RFC 3768 / keepalived defaults), counted from the last advert it heard; the
master dies at a random phase of its advert cycle. The new master then sends a
gratuitous ARP. Whether the client's router follows it depends on the design:

- ``dvr`` with ``vip_arp=static``: the qrouter holds a *permanent* neighbour
  entry written by the server (add_arp_entry RPC, ``nud permanent``); the GARP
  changes nothing and no API event happens, so the VIP stays unreachable until
  an API-driven ARP update (``api_update_at``; never, by default). Bug 1774459.
- ``dvr`` with ``vip_arp=learned``, and ``legacy``: the entry is dynamic; the
  GARP updates it on arrival (:data:`GARP_DELAY_S`).
- ``ovn``: the VIP's ``virtual`` port is claimed by the chassis that sent the
  GARP; ovn-controller updates the Port_Binding and its flows
  (:data:`OVN_CLAIM_S`, unsourced order of magnitude).

The client probes the VIP every :data:`PROBE_INTERVAL_S`; recovery is the time
from the failure to the first answered probe after it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Optional

import simpy

from labtwin.records import Recorder

from ..knobs import DvrDesign

ADVERT_INT_S = 1.0
BACKUP_PRIORITY = 100
GARP_DELAY_S = 0.001
OVN_CLAIM_S = 0.1
PROBE_INTERVAL_S = 0.1
FAIL_AT_S = 1.0
HORIZON_S = 12.0


@dataclass
class VipState:
    """Who holds the VIP, and which holder the client's router sends to."""

    master: Optional[str]
    router_target: str


def master_down_interval(priority: int = BACKUP_PRIORITY, advert: float = ADVERT_INT_S) -> float:
    """Seconds a backup waits after the last advert before it takes over.

    >>> master_down_interval(100)
    3.609375
    """
    return 3 * advert + (256 - priority) / 256


def follows_garp(design: DvrDesign, mode: str) -> Optional[float]:
    """How long after the GARP a router in *mode* sends to the new master; None: it never does."""
    if mode == "ovn":
        return OVN_CLAIM_S
    if mode == "dvr" and design.vip_arp == "static":
        return None
    return GARP_DELAY_S


def failover(
    env: simpy.Environment,
    rng: random.Random,
    rec: Recorder,
    state: VipState,
    old: str,
    new: str,
    design: DvrDesign,
    mode: str,
    api_update_at: Optional[float],
):
    """The master dies at FAIL_AT_S; the backup takes over; the router follows (or not)."""
    yield env.timeout(FAIL_AT_S)
    state.master = None
    rec.event(env.now, "vrrp-master-failed", subject=old)
    phase = rng.uniform(0.0, ADVERT_INT_S)  # time since the last advert the backup heard
    yield env.timeout(master_down_interval() - phase)
    state.master = new
    rec.event(env.now, "vrrp-master-elected", subject=new)
    rec.event(env.now, "garp-sent", subject=new)
    delay = follows_garp(design, mode)
    if delay is None:
        rec.event(env.now, "neighbour-unchanged", subject=old, reason="permanent ARP entry (bug 1774459)")
        if api_update_at is None:
            return
        yield env.timeout(max(0.0, api_update_at - env.now))
        rec.event(env.now, "api-arp-update", subject=new)
    else:
        yield env.timeout(delay)
    state.router_target = new
    rec.event(env.now, "neighbour-updated", subject=new)


def probes(env: simpy.Environment, rec: Recorder, state: VipState, client: str, vip: str, outcomes: list):
    """The client pings the VIP; it answers when the router's target is the live master."""
    while True:
        ok = state.master is not None and state.router_target == state.master
        outcomes.append((env.now, ok))
        rec.event(env.now, "vip-probe", subject=vip, client=client, answered=ok)
        yield env.timeout(PROBE_INTERVAL_S)


def run_failover(
    design: DvrDesign,
    mode: str,
    old: str,
    new: str,
    client: str,
    vip: str,
    rng: random.Random,
    rec: Recorder,
    api_update_at: Optional[float] = None,
    horizon: float = HORIZON_S,
) -> Optional[float]:
    """Simulate one failover; return the recovery time in seconds (None: not within *horizon*)."""
    env = simpy.Environment()
    state = VipState(master=old, router_target=old)
    outcomes: list[tuple[float, bool]] = []
    env.process(failover(env, rng, rec, state, old, new, design, mode, api_update_at))
    env.process(probes(env, rec, state, client, vip, outcomes))
    env.run(until=horizon)
    after = [t for t, ok in outcomes if t > FAIL_AT_S and ok]
    return round(after[0] - FAIL_AT_S, 6) if after else None
