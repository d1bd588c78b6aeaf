"""A legacy HA router's master losing its HA link, and when north-south traffic flows again (``ha_failover_s``).

Neutron 29 runs one keepalived instance per L3 agent hosting an ``ha`` router
(``HaRouter._init_keepalived_manager``, neutron/agent/l3/ha_router.py): every instance ``BACKUP``,
``nopreempt``, priority ``HA_DEFAULT_PRIORITY`` = 50 (neutron/agent/linux/keepalived.py; the server sets
none), ``advert_int`` = the agents' ``ha_vrrp_advert_int`` (the ``ha_vrrp_advert_int`` knob; Neutron's default
2 s), tracking its ``ha-`` interface. When the master's ``ha-`` link goes down (the experiment both backends
run), its instance goes to FAULT and drops the router's addresses at once; the backup, hearing no advert,
declares the master dead ``Master_Down_Interval = 3 * advert_int + (256 - priority) / 256`` after the last
advert it heard (RFC 3768, :func:`.failover.master_down_interval`), which came at a random phase of the advert
interval before the cut. It then takes the addresses and default route and sends its gratuitous ARPs; the
bridges follow them (:data:`.failover.GARP_DELAY_S`). A VM that leaves by SNAT pings the outside world every
``PROBE_INTERVAL_S``; recovery is the time from the cut to the first answered ping sent after it.

Configured timers: the advert interval and the priority (hence the skew); random: the phase. ``ha_failover_s``
is the mean over :data:`CUTS` cuts (the first one's events are recorded), the figure one emulated cut
(:mod:`..emulation.neutron_l3_ha`) is compared with.

Simplifications, stated: one backup (the second network node; with three, the first to time out wins, at the
same interval); the new master's GARP and the bridges relearning are one small constant.
"""

from __future__ import annotations

import random
from typing import Optional

import simpy

from labtwin.records import Recorder

from ..gateway_cut import CUTS, FAIL_AT_S, HORIZON_S, mean_recovery, probe_recovery
from .failover import GARP_DELAY_S, master_down_interval

#: ``keepalived.HA_DEFAULT_PRIORITY``: every HA router instance's priority.
PRIORITY = 50


def run_ha_failover(
    master: str, backup: str, advert_int: float, rng: random.Random, rec: Recorder, horizon: float = HORIZON_S
) -> Optional[float]:
    """Simulate the master's ha- link going down; the recovery time in seconds (None: not within *horizon*)."""
    env = simpy.Environment()
    routing = {"up": True}

    def cut():
        yield env.timeout(FAIL_AT_S)
        routing["up"] = False  # FAULT: the master's keepalived drops the router's addresses
        rec.event(env.now, "ha-link-down", subject=master)

    def take_over():
        phase = rng.uniform(0.0, advert_int)  # since the last advert the backup heard
        yield env.timeout(FAIL_AT_S + master_down_interval(PRIORITY, advert_int) - phase)
        rec.event(env.now, "vrrp-master-elected", subject=backup)
        yield env.timeout(GARP_DELAY_S)
        routing["up"] = True
        rec.event(env.now, "garp-sent", subject=backup)

    for process in (cut(), take_over()):
        env.process(process)
    return probe_recovery(env, rec, master, lambda: routing["up"], horizon)


def mean_ha_failover(
    master: str, backup: str, advert_int: float, rng: random.Random, rec: Recorder, cuts: int = CUTS
) -> Optional[float]:
    """The mean recovery over *cuts* simulated cuts (None: one did not recover); the first cut's events go to *rec*.

    >>> mean_ha_failover("n1", "n2", 1, random.Random(1), Recorder()) is not None
    True
    """
    return mean_recovery(lambda r: run_ha_failover(master, backup, advert_int, rng, r), rec, cuts)
