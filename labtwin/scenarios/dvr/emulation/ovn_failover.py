"""The active OVN gateway chassis loses its underlay link: how long until north-south traffic flows again.

What the model predicts (:mod:`..gateway_cut`), on real OVN: a VM that leaves by SNAT pings the outside world
every ``PROBE_INTERVAL_S``; one second into the stream, the underlay veth of the chassis that
holds the router's chassis-redirect port (read from the SB) is set down inside that chassis's namespace (its
Geneve tunnels, and the BFD sessions on them, go dark; its provider link stays up). OVN does the rest: BFD
sessions time out, the next gateway chassis claims ``cr-lrp`` and announces the gateway's addresses, the
client's chassis sends there. ``gateway_failover_s`` is the time from the cut to the first answered ping
sent after it; the summary also says who took over (read from the SB until the row leaves the cut chassis:
``sb_moved_by_s`` is when this process saw it, from the cut) and how many pings were answered before the cut
(the path worked).

Both the agent and this process timestamp with the wall clock (``time.time()``), so the cut and the pings
are on one clock. The link stays down: the run ends with the failover, and teardown removes the namespace.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

from labtwin.description import Cloud
from labtwin.emulation.ovn_cloud import UNDERLAY_DEVICE, OvnCloud
from labtwin.emulation.realise import Realisation
from labtwin.emulation.runner import Step, in_netns

from ..gateway_cut import FAIL_AT_S, HORIZON_S, PROBE_INTERVAL_S, gateway_chassis
from .ovn_observe import SB_READ, logical_map
from .probing import run_agent

#: Seconds the agent gets to start (a Python process importing scapy) before the stream's first ping.
LEAD_S = 3.0
#: An answer to a ping sent this long after the cut ends the stream: BFD alone takes longer than this to act.
SETTLED_S = 0.5
#: How long the SB may take to show another chassis holding ``cr-lrp`` once pings flow again.
SB_SETTLE_S = 10.0
#: The stream's marker (past every class's token and the warm-up's).
STREAM_TOKEN = 200


def measure_gateway_failover(
    real: Realisation, cloud: Cloud, router, client: Optional[str], ovn: OvnCloud, sb: dict, vm_ns: dict, target: str
) -> Optional[dict]:
    """Cut the active gateway chassis's underlay link while *client* (a VM port that leaves by SNAT) pings
    *target* (the outside world); None where there is nothing to fail over to (fewer than two gateway chassis)
    or no such client. The summary's ``gateway_failover_s`` and what else was seen."""
    if len(gateway_chassis(cloud, router)) < 2 or client is None:
        return None
    active = logical_map(cloud, router, sb, ovn.neutron).cr_lrp_host
    chassis_key = f"host:{[h.name for h in cloud.hosts].index(active)}"
    start_at = time.time() + LEAD_S
    cut_at = start_at + FAIL_AT_S
    stream = {
        "pid": real.pid(vm_ns[client]),
        "kind": "stream",
        "dst": target,
        "interval": PROBE_INTERVAL_S,
        "start_at": start_at,
        "cut_at": cut_at,
        "settled": SETTLED_S,
        "horizon": HORIZON_S,
        "token": STREAM_TOKEN,
    }
    with ThreadPoolExecutor(max_workers=1) as pool:
        pinging = pool.submit(run_agent, real, [stream])
        time.sleep(max(0.0, cut_at - time.time()))
        cut = ["ip", "link", "set", UNDERLAY_DEVICE, "down"]
        real.runner.run(Step(in_netns(real.pid(chassis_key), cut), what=f"cut {active}'s underlay link"))
        cut_done = time.time()
        pings = pinging.result()[0]["pings"]
    took_over, seen_at = _holder_after(real, cloud, router, ovn, active)
    answered_before = [p for p in pings if p["sent"] < cut_done and p["answered"] is not None]
    return {
        "gateway_failover_s": recovery(pings, cut_done),
        "gateway_failover": {
            "cut": active,
            "took_over": took_over,
            "sb_moved_by_s": round(seen_at - cut_done, 3),
            "client": client,
            "pings": len(pings),
            "answered_before_cut": len(answered_before),
            "sent_before_cut": sum(1 for p in pings if p["sent"] < cut_done),
        },
    }


def _holder_after(real: Realisation, cloud: Cloud, router, ovn: OvnCloud, cut: str) -> tuple[str, float]:
    """Who holds ``cr-lrp`` in the SB once it has left *cut*, and when this process saw it (wall clock); after
    :data:`SB_SETTLE_S`, whoever holds it then. Traffic can flow before the SB says so: here the row moved
    0.07-0.19 s after the first answered ping (why it lags, the new chassis's commit or the old one still
    holding on, was not looked into), so one read at recovery can still show the cut chassis."""
    deadline = time.time() + SB_SETTLE_S
    while True:
        holder = logical_map(cloud, router, ovn.central.sb_rows(real.runner, SB_READ), ovn.neutron).cr_lrp_host
        if holder != cut or time.time() > deadline:
            return holder, time.time()
        time.sleep(0.1)


def recovery(pings: list[dict], cut: float) -> Optional[float]:
    """Seconds from *cut* to the first answered ping sent after it. None when none was, and when no ping sent
    before the cut was answered: then the path never worked (or the agent started late), so nothing recovered.

    >>> pings = [{"sent": 1.0, "answered": 1.01}, {"sent": 2.0, "answered": None}, {"sent": 4.5, "answered": 4.6}]
    >>> recovery(pings, 1.5)
    3.0
    """
    worked = any(p["sent"] < cut and p["answered"] is not None for p in pings)
    after = [p["sent"] for p in pings if p["sent"] > cut and p["answered"] is not None]
    return round(min(after) - cut, 6) if after and worked else None
