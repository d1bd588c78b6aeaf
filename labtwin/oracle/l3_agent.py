"""The L3 agents' part in loading a cloud: the floating-IP agent gateway ports they ask Neutron's server for.

Neutron 29 (and Train: the same code): a ``dvr`` or ``dvr_snat`` L3 agent syncs its routers
(``L3RpcCallback.sync_routers``: the routers scheduled to it, its SNAT ones, and the DVR routers its host's
DVR-serviced ports bring, ``l3_dvrscheduler_db._get_router_ids_for_agent``) and processes each; for a DVR router
with a gateway, ``DvrLocalRouter.process_external`` -> ``create_dvr_external_gateway_on_agent`` looks for its
host's agent gateway port in the router it synced (``_floatingip_agent_interfaces``) and, when there is none, asks
the server (RPC ``get_agent_gateway_port``, ``L3RpcCallback.get_agent_gateway_port`` ->
``l3_dvr_db.create_fip_agent_gw_port_if_not_exists``), floating IP or not. Here the oracle plays that on each L3
agent host with Neutron's own RPC handler answering both calls, in-process: which routers a host gets, and
whether its port finds an address, are Neutron's. Nothing else of the agent runs (no namespaces, no devices).
Hand-written: only the agent's loop over its synced routers and its look-up of its own port (two lines of
``create_dvr_external_gateway_on_agent``; the agent class needs a whole agent configuration to instantiate).
"""

from __future__ import annotations

from .server import Answer, NeutronServer


def ask_agent_gateway_ports(server: NeutronServer, host: str, mode: str) -> Answer:
    """Play *host*'s L3 agent (``agent_mode`` *mode*) once: sync its routers, ask for the agent gateway port of
    each DVR router with a gateway that carries none for this host. The answer: 200 with the ports it got, or the
    first failure as Neutron's server answers the RPC (``IpAddressGenerationFailure``: the agent fails the router
    and retries at its next resync)."""
    from neutron.api.rpc.handlers.l3_rpc import L3RpcCallback
    from neutron_lib import constants

    rpc = L3RpcCallback()
    got: list[dict] = []
    if mode == constants.L3_AGENT_MODE_DVR_NO_EXTERNAL:
        return Answer(200, {"ports": got})
    for router in rpc.sync_routers(server.context, host=host):
        gateway = router.get("gw_port")
        if not router.get("distributed") or not gateway:
            continue
        network = gateway["network_id"]
        if any(p["network_id"] == network for p in router.get("_floatingip_agent_interfaces", [])):
            continue  # DvrLocalRouter.get_floating_agent_gw_interface finds it: no request
        try:
            port = rpc.get_agent_gateway_port(server.context, network_id=network, host=host)
        except Exception as exc:  # noqa: BLE001 - the RPC answers the agent with the server's exception
            cause = exc.exc_info[1] if hasattr(exc, "exc_info") else exc
            return Answer(409, {"NeutronError": {"type": type(cause).__name__, "message": str(cause)}})
        if port:
            got.append(port)
    return Answer(200, {"ports": got})


def pin_snat(server: NeutronServer, router_id: str, host: str) -> None:
    """Put DVR router *router_id*'s SNAT on *host*'s ``dvr_snat`` agent, as labtwin's loader assumes (the first
    network node): its binding rows removed (``RouterL3AgentBinding``) and made again by Neutron's own scheduler
    (``L3Scheduler.bind_router``, what scheduling and an admin's manual ``add_router_to_l3_agent`` call; that API
    method itself would notify the agent over RPC, which has no listener here). Matters with several network nodes
    only: Neutron schedules the router when it is created (``LeastRoutersScheduler``: the agent with the fewest
    routers, and among equally loaded ones the first in database order, ``Agent.get_l3_agent_with_min_routers``
    grouping by agent, whose ids are random uuids), which no file can foresee."""
    from neutron.objects import l3agent
    from neutron_lib.plugins import constants as plugin_constants
    from neutron_lib.plugins import directory

    plugin = directory.get_plugin(plugin_constants.L3)
    wanted = next((a["id"] for a in plugin.get_agents(server.context, filters={"host": [host]})
                   if a["agent_type"] == "L3 agent"), None)  # fmt: skip
    hosting = [a["id"] for a in plugin.list_l3_agents_hosting_router(server.context, router_id)["agents"]]
    if wanted is None or hosting == [wanted]:
        return
    l3agent.RouterL3AgentBinding.delete_objects(server.context, router_id=router_id)
    plugin.router_scheduler.bind_router(plugin, server.context, router_id, wanted)
