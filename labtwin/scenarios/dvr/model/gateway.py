"""An OVN gateway chassis losing its underlay link, and when north-south traffic flows again (``gateway_failover_s``).

ML2/OVN schedules a router's gateway port on every gateway chassis that maps the external network's physnet,
with priorities; the highest-priority chassis that is alive holds the chassis-redirect port (``cr-lrp``) and
does the router's SNAT. Liveness is BFD on the Geneve tunnels: OVN enables it between the gateway chassis and
from every chassis that sends to them. Neutron sets none of OVN's ``bfd-*`` options, and ovn-controller passes
on only those it is given (OVN 23.03 ``controller/bfd.c``), so each session runs with Open vSwitch's defaults
(``vswitch.xml``, ``lib/bfd.c``): ``min_rx`` 1000 ms, ``min_tx`` 100 ms, ``mult`` 3. Each side therefore sends
every max(its min_tx, the peer's min_rx) = 1 s, shortened by a random jitter of up to 25 %, and declares the
session down ``mult`` x max(its min_rx, the peer's min_tx) = 3 s after the last packet it received.

When the active gateway's underlay link is cut (:mod:`..gateway_cut`, which both backends share):

- the client's chassis loses its BFD session to it (at its own phase): its ``bundle(active_backup)`` action
  sends the router's outbound traffic to the next gateway chassis;
- the backup gateway loses its session (at its own phase), becomes the highest-priority live chassis
  (``ha_chassis_group_is_active``), claims ``cr-lrp``, installs its flows and sends gratuitous ARPs for the
  gateway's addresses (:data:`~.failover.OVN_CLAIM_S`, the same unsourced order of magnitude as a VIP claim);
- the old gateway, with no live tunnel, gives ``cr-lrp`` up (OVN: an isolated chassis is never active).

The client pings the outside world every ``PROBE_INTERVAL_S``; recovery is the time from the cut to the
first answered ping sent after it: both of the above must hold. The BFD phases are random, so one cut
recovers anywhere between about 2.1 and 3.1 s; ``gateway_failover_s`` is the mean over :data:`CUTS` cuts
(the first one's events are recorded), the figure a single emulated cut is compared with.

Simplifications, stated: one client chassis and one backup (the emulation's small topology); the
chassis-redirect claim is one constant; which gateway chassis Neutron makes active is its scheduler's pick
(a hash of the gateway port's random id breaks the tie between equally loaded chassis), so no topology says
which: the model takes the ``ovn_gateway`` knob, by default the first network node in the file, and a twin
gives it the chassis Neutron chose (``Scenario.drawn``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Optional

import simpy

from labtwin.records import Recorder

from ..gateway_cut import CUTS, FAIL_AT_S, HORIZON_S, mean_recovery, probe_recovery
from .failover import OVN_CLAIM_S

#: Open vSwitch's BFD defaults (vswitch.xml): the session's receive and transmit floors and its multiplier.
BFD_MIN_RX_S = 1.0
BFD_MIN_TX_S = 0.1
BFD_MULT = 3
#: lib/bfd.c shortens each transmit interval by a random 0-25 %.
BFD_JITTER = 0.25


def bfd_transmit_interval_s() -> float:
    """How often a peer sends with OVS's defaults on both sides: max(its min_tx, the receiver's min_rx).

    >>> bfd_transmit_interval_s()
    1.0
    """
    return max(BFD_MIN_TX_S, BFD_MIN_RX_S)


def bfd_detection_time_s() -> float:
    """How long after the last packet a session goes down: mult x max(own min_rx, the peer's min_tx).

    >>> bfd_detection_time_s()
    3.0
    """
    return BFD_MULT * max(BFD_MIN_RX_S, BFD_MIN_TX_S)


def detection_after_cut(rng: random.Random) -> float:
    """Seconds from the cut to one BFD session going down: the peer's last packet arrived at a random point of
    its (jittered) transmit interval before the cut."""
    interval = bfd_transmit_interval_s() * (1 - rng.uniform(0.0, BFD_JITTER))
    return bfd_detection_time_s() - rng.uniform(0.0, interval)


@dataclass
class GatewayState:
    """Where the client's chassis sends the router's traffic, who holds ``cr-lrp``, and whether the cut happened."""

    sends_to: str
    holder: Optional[str]
    cut: bool = False


def run_gateway_failover(
    active: str, backup: str, client_chassis: str, rng: random.Random, rec: Recorder, horizon: float = HORIZON_S
) -> Optional[float]:
    """Simulate the cut of *active*'s underlay link; the recovery time in seconds (None: not within *horizon*)."""
    env = simpy.Environment()
    state = GatewayState(sends_to=active, holder=active)

    def cut():
        yield env.timeout(FAIL_AT_S)
        state.cut, state.holder = True, None  # isolated: the old gateway gives cr-lrp up; nothing crosses anyway
        rec.event(env.now, "underlay-cut", subject=active)

    def client_side():
        yield env.timeout(FAIL_AT_S + detection_after_cut(rng))
        state.sends_to = backup
        rec.event(env.now, "bfd-down", subject=client_chassis, peer=active)

    def backup_side():
        yield env.timeout(FAIL_AT_S + detection_after_cut(rng))
        rec.event(env.now, "bfd-down", subject=backup, peer=active)
        yield env.timeout(OVN_CLAIM_S)
        state.holder = backup
        rec.event(env.now, "cr-lrp-claimed", subject=backup)

    for process in (cut(), client_side(), backup_side()):
        env.process(process)
    return probe_recovery(
        env, rec, client_chassis, lambda: state.holder is not None and state.sends_to == state.holder, horizon
    )


def mean_gateway_failover(
    active: str, backup: str, client_chassis: str, rng: random.Random, rec: Recorder, cuts: int = CUTS
) -> Optional[float]:
    """The mean recovery over *cuts* simulated cuts (None: one did not recover within the horizon); the first
    cut's events go to *rec*."""
    return mean_recovery(lambda r: run_gateway_failover(active, backup, client_chassis, rng, r), rec, cuts)
