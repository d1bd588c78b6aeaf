"""The DHCP agent's part in loading a cloud: the ports it asks Neutron's server for, with Neutron's own code.

A real DHCP agent, told of a new subnet, asks the server for its networks (``get_active_networks_info``,
which also schedules the networks no agent hosts yet) and configures each
(``DhcpAgent.configure_dhcp_for_network``): one DHCP server per segment on a routed network
(``DhcpAgent.call_driver`` groups the subnets by segment), each starting with its port
(``DeviceManager.setup_dhcp_port``). Here the oracle plays that agent on each DHCP host, in-process, with
those three functions of Neutron's own: Neutron's own ``DhcpRpcCallback`` answers them. Nothing else of the
agent runs (no dnsmasq, no namespaces, no interface driver, no metadata proxy): only the ports matter to the
server's answers, so the driver's ``enable`` is the port's set-up alone (:class:`_PlayedAgent`).
"""

from __future__ import annotations

from types import MethodType, SimpleNamespace
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
    (the agent logs it and retries at its next resync), one line per DHCP server."""
    from neutron.agent.dhcp.agent import DhcpAgent
    from neutron.agent.linux import dhcp

    plugin = _AgentPluginApi(server, host)
    manager = dhcp.DeviceManager.__new__(dhcp.DeviceManager)  # its __init__ loads an interface driver
    manager.conf = SimpleNamespace(host=host)  # the one option it reads: the device id names the host
    manager.plugin = plugin
    manager.driver = _NoInterfaceDriver()
    agent = _PlayedAgent(manager)
    for info in plugin.rpc.get_active_networks_info(server.context, host=host):
        DhcpAgent.configure_dhcp_for_network(agent, dhcp.NetModel(info))
    return agent.failed


class _PlayedAgent:
    """What ``DhcpAgent.configure_dhcp_for_network`` and ``DhcpAgent.call_driver`` (Neutron's own, called on
    this object) use of an agent. The driver's ``enable`` is reduced to its first step, the DHCP port
    (``Dnsmasq.enable`` -> ``DeviceManager.setup``); a failure is kept, as the agent logs it."""

    def __init__(self, manager: Any):
        from neutron.agent.dhcp.agent import DhcpAgent

        self.manager = manager
        self.failed: list[str] = []
        self.cache = SimpleNamespace(put=lambda network: None)
        self.dhcp_ready_ports: set[str] = set()
        self.call_driver = MethodType(DhcpAgent.call_driver, self)

    def _call_driver(self, action: str, network: Any, segment: Any = None, **kwargs: Any) -> bool:
        try:
            self.manager.setup_dhcp_port(network, segment)
        except Exception as exc:  # noqa: BLE001 - the agent's _call_driver logs any failure and resyncs later
            cause = exc.exc_info[1] if hasattr(exc, "exc_info") else exc  # oslo.messaging's ExpectedException
            self.failed.append(f"network {network.id}: {type(cause).__name__}: {cause}")
            return False
        return True

    def safe_get_network_info(self, network_id: str) -> None:
        return None  # configure_dhcp_for_network then keeps the network it has

    def update_isolated_metadata_proxy(self, network: Any) -> None:
        pass  # no metadata proxy: it takes no address


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
