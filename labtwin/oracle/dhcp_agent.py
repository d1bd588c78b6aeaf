"""The DHCP agent's part in loading a cloud: the ports it asks Neutron's server for, with Neutron's own code.

A real DHCP agent, told of a new subnet, asks the server for its networks (``get_active_networks_info``,
which also schedules the networks no agent hosts yet) and makes a DHCP port on each
(``DeviceManager.setup_dhcp_port``), one per segment on a routed network (``DhcpAgent.call_driver`` groups
the subnets by segment). Here the oracle plays that agent on each DHCP host, in-process: Neutron's own
``DhcpRpcCallback`` answers, and Neutron's own ``DeviceManager.setup_dhcp_port`` builds each port's request.
Nothing else of the agent runs (no dnsmasq, no namespaces, no interface driver): only the ports matter to
the server's answers. Only :func:`_by_segment` is written out here: it is the grouping of
``DhcpAgent.call_driver``, which needs a whole running agent to call.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Optional

from .server import NeutronServer


class _AgentPluginApi:
    """What ``DeviceManager`` asks of the agent's ``DhcpPluginApi``, answered by Neutron's RPC handler in this
    process, with the agent's *host* (the RPC client adds it to every call)."""

    def __init__(self, server: NeutronServer, host: str):
        from neutron.api.rpc.handlers.dhcp_rpc import DhcpRpcCallback

        self.rpc = DhcpRpcCallback()
        self.context = server.context
        self.host = host

    def create_dhcp_port(self, port: dict) -> Optional[Any]:
        return self._model(self.rpc.create_dhcp_port(self.context, host=self.host, port=port))

    def update_dhcp_port(self, port_id: str, port: dict) -> Optional[Any]:
        return self._model(self.rpc.update_dhcp_port(self.context, host=self.host, port_id=port_id, port=port))

    def get_dhcp_port(self, port_id: str) -> Optional[Any]:
        return self._model(self.rpc.get_dhcp_port(self.context, host=self.host, port_id=port_id))

    @staticmethod
    def _model(port: Optional[dict]) -> Optional[Any]:
        from neutron.agent.linux import dhcp

        return dhcp.DictModel(port) if port else None


class _NoInterfaceDriver:
    """The interface driver ``DeviceManager`` consults: a port of its own per DHCP server, not the gateway's
    addresses (``use_gateway_ips`` False, the default drivers' answer)."""

    use_gateway_ips = False


def make_dhcp_ports(server: NeutronServer, host: str) -> list[str]:
    """Play the DHCP agent of *host* once: every network it hosts gets its DHCP ports. Returns what failed
    (the agent logs it and retries at its next resync), one line per network."""
    from neutron.agent.linux import dhcp

    plugin = _AgentPluginApi(server, host)
    manager = dhcp.DeviceManager.__new__(dhcp.DeviceManager)  # its __init__ loads an interface driver
    manager.conf = SimpleNamespace(host=host)  # the one option it reads: the device id names the host
    manager.plugin = plugin
    manager.driver = _NoInterfaceDriver()
    failed = []
    for info in plugin.rpc.get_active_networks_info(server.context, host=host):
        network = dhcp.NetModel(info)
        if not network.admin_state_up or not any(s.enable_dhcp for s in network.subnets):
            continue  # DhcpAgent.configure_dhcp_for_network: nothing to serve
        segments = {s.id: s for s in network.get("segments") or []}
        for segment_id, subnets in _by_segment(network.subnets).items():
            network.subnets = subnets
            try:
                manager.setup_dhcp_port(network, segments.get(segment_id))
            except Exception as exc:  # noqa: BLE001 - the agent logs any failure and resyncs later
                cause = exc.exc_info[1] if hasattr(exc, "exc_info") else exc  # oslo.messaging's ExpectedException
                failed.append(f"network {info['id']}: {type(cause).__name__}: {cause}")
    return failed


def _by_segment(subnets: list) -> dict[Optional[str], list]:
    """The subnets grouped by segment, as ``DhcpAgent.call_driver`` groups them (one DHCP server each)."""
    grouped: dict[Optional[str], list] = {}
    for subnet in subnets:
        grouped.setdefault(subnet.get("segment_id"), []).append(subnet)
    return grouped


def dhcp_agent(host: str) -> dict:
    """A DHCP agent's state report (``_get_dhcp_agent_dict`` in Neutron's test helpers)."""
    from neutron_lib import constants

    return {
        "binary": constants.AGENT_PROCESS_DHCP,
        "host": host,
        "topic": "dhcp_agent",
        "agent_type": constants.AGENT_TYPE_DHCP,
        "configurations": {"dhcp_driver": "neutron.agent.linux.dhcp.Dnsmasq", "networks": 0},
        "start_flag": True,
    }
