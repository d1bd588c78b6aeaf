"""The gateway-failover experiment both backends run (``gateway_failover_s``): which chassis can hold an OVN
router's gateway, when the active one's underlay link is cut, and how the client probes.

The model (:mod:`.model.gateway`) simulates it; the OVN emulation (:mod:`.emulation.ovn_failover`) does it.
"""

from __future__ import annotations

from typing import Callable, Optional

import simpy

from labtwin.description import Cloud
from labtwin.description.schema import Host, Router
from labtwin.records import Recorder

#: The client pings the outside world this often (seconds).
PROBE_INTERVAL_S = 0.1
#: Seconds of pings before the cut.
FAIL_AT_S = 1.0
#: Seconds after the cut by which the pings must be answered again, or the recovery is None.
HORIZON_S = 10.0
#: Cuts a model averages into its recovery time.
CUTS = 100


def probe_recovery(env: simpy.Environment, rec: Recorder, client: str, answered: Callable[[], bool], horizon: float):
    """Run *env* to *horizon* while *client* pings every :data:`PROBE_INTERVAL_S` (``answered()`` says whether a
    ping sent now is answered); seconds from the cut to the first answered ping sent after it (None: none was)."""
    outcomes: list[tuple[float, bool]] = []

    def probes():
        while True:
            ok = answered()
            outcomes.append((env.now, ok))
            rec.event(env.now, "gateway-probe", subject=client, answered=ok)
            yield env.timeout(PROBE_INTERVAL_S)

    env.process(probes())
    env.run(until=horizon)
    after = [t for t, ok in outcomes if t > FAIL_AT_S and ok]
    return round(after[0] - FAIL_AT_S, 6) if after else None


def mean_recovery(one_cut: Callable[[Recorder], Optional[float]], rec: Recorder, cuts: int = CUTS) -> Optional[float]:
    """The mean of *cuts* simulated cuts' recoveries (None: one did not recover); the first cut's events go to *rec*.

    >>> mean_recovery(lambda rec: 2.0, Recorder(), cuts=3)
    2.0
    >>> mean_recovery(lambda rec: None, Recorder()) is None
    True
    """
    times = [one_cut(rec if i == 0 else Recorder()) for i in range(cuts)]
    if any(t is None for t in times):
        return None
    return round(sum(t for t in times if t is not None) / cuts, 6)


def gateway_chassis(cloud: Cloud, router: Router) -> list[Host]:
    """The chassis Neutron can schedule *router*'s gateway on: network nodes (``enable-chassis-as-gw``, as the
    emulation marks them) that map the external network's physnet; in file order."""
    if router.external_gateway_info is None:
        return []
    network = router.external_gateway_info.network_id
    physnets = {s.physical_network for s in cloud.segments if s.network_id == network and s.physical_network}
    return [h for h in cloud.hosts if h.role == "network" and physnets & set(h.bridge_mappings)]
