"""The gateway-failover experiment both backends run (``gateway_failover_s``): which chassis can hold an OVN
router's gateway, when the active one's underlay link is cut, and how the client probes.

The model (:mod:`.model.gateway`) simulates it; the OVN emulation (:mod:`.emulation.ovn_failover`) does it.
"""

from __future__ import annotations

from labtwin.description import Cloud
from labtwin.description.schema import Host, Router

#: The client pings the outside world this often (seconds).
PROBE_INTERVAL_S = 0.1
#: Seconds of pings before the cut.
FAIL_AT_S = 1.0
#: Seconds after the cut by which the pings must be answered again, or the recovery is None.
HORIZON_S = 10.0


def gateway_chassis(cloud: Cloud, router: Router) -> list[Host]:
    """The chassis Neutron can schedule *router*'s gateway on: network nodes (``enable-chassis-as-gw``, as the
    emulation marks them) that map the external network's physnet; in file order."""
    if router.external_gateway_info is None:
        return []
    network = router.external_gateway_info.network_id
    physnets = {s.physical_network for s in cloud.segments if s.network_id == network and s.physical_network}
    return [h for h in cloud.hosts if h.role == "network" and physnets & set(h.bridge_mappings)]
