"""The floating-IP agent gateway ports (fg-) every DVR L3 agent asks for (labtwin.description.neutron_ports).

Neutron 29: each ``dvr``/``dvr_snat`` agent hosting a DVR router with a gateway asks for one, floating IP or not
(``DvrLocalRouter.process_external`` -> ``get_agent_gateway_port``); tests/oracle checks the same clouds against
Neutron's own server and RPC handler (slow), these check the loader alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from labtwin.description import CloudError
from labtwin.description.loader import load_cloud, load_declared

ROOT = Path(__file__).resolve().parents[1]
EXHAUST = ROOT / "tests" / "oracle" / "fg-ports-exhaust-pool.yaml"


def _fg(cloud) -> dict[str, list[str]]:
    return {
        str(p.host): [str(f.ip_address) for f in p.fixed_ips]
        for p in cloud.network_ports
        if p.device_owner == "network:floatingip_agent_gateway"
    }


def test_every_host_hosting_the_dvr_router_gets_an_fg_port_in_neutrons_order():
    """neutron-l3-dvr.yaml: compute-1 and compute-2 have floating IPs (their fg- ports made right after each, as
    before), network-1 (dvr_snat: the router's SNAT, and no floating IP) gets one when its agent asks, after."""
    cloud = load_cloud(ROOT / "tests" / "scenarios" / "dvr" / "neutron-l3-dvr.yaml")
    fips = {str(f.floating_ip_address) for f in cloud.floatingips}
    fg = _fg(cloud)
    assert sorted(fg) == ["compute-1", "compute-2", "network-1"]
    (network_1,) = fg["network-1"]
    assert network_1 not in fips and all(network_1 > a for h in ("compute-1", "compute-2") for a in fg[h])


def test_fg_ports_of_hosts_without_floating_ips_exhaust_the_pool_a_located_error():
    declared = load_declared(EXHAUST)
    assert [(p.line, p.loc) for p in declared.problems] == [(15, ("hosts", 3))]
    assert "IpAddressGenerationFailure" in declared.problems[0].message
    assert sorted(_fg(declared.resolved)) == ["compute-1", "compute-2", "network-1"]
    with pytest.raises(CloudError, match="compute-3"):
        load_cloud(EXHAUST)


def test_a_loader_giving_fg_ports_to_floating_ip_hosts_only_accepts_the_exhausted_pool(monkeypatch):
    """The check can fail: without the agents' requests (labtwin's loader before) the cloud loads."""
    from labtwin.description import neutron_ports

    monkeypatch.setattr(neutron_ports, "agent_gateway_ports", lambda *args: ((), []))
    assert sorted(_fg(load_cloud(EXHAUST))) == ["compute-1"]


def test_no_fg_port_for_a_legacy_router_or_a_host_without_the_router():
    """Only distributed routers with a gateway bring fg- ports; a host with no DVR-serviced port on the router's
    subnets (and not its SNAT node) does not host it."""
    text = EXHAUST.read_text()
    legacy = text.replace("distributed: true", "distributed: false")
    assert _fg(_parse(legacy)) == {}
    unbound = text.replace("binding:host_id: compute-3", "device_owner: ''")  # vm-3 not DVR-serviced, unbound
    assert sorted(_fg(_parse(unbound))) == ["compute-1", "compute-2", "network-1"]


def _parse(text: str):
    from labtwin.description.loader import parse_cloud

    return parse_cloud(text, "fg.yaml")
