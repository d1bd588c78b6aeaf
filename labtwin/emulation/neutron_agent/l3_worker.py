"""One emulated host's L3 agent: Neutron 29's own ``L3NATAgentWithStateReport``, driven over stdin/stdout (JSON).

``python -m labtwin.emulation.neutron_agent.l3_worker --run RID --host NAME`` (the argv makes the
process this run's own: the ledger finds it by it).

What runs is Neutron's: the agent class ``neutron-l3-agent`` runs (``neutron.agent.l3.agent``),
its options registered by Neutron's own ``l3_agent.register_opts``, its routers
built by its own ``periodic_sync_routers_task`` (the fullsync: ``get_router_ids``
and ``get_routers`` from the server, the ``NamespaceManager``'s stale-namespace
cleanup, one queued update per router) and ``_process_update`` (the body of
``_process_routers_loop``: ``_process_router_if_compatible`` ->
``_process_added_router`` -> ``RouterInfo.process``). labtwin's own code here:

- the server (:class:`L3Server`): it answers ``sync_routers`` (``get_routers``) as
  Neutron's ``L3_NAT_dbonly_mixin.get_sync_data`` does, by calling that mixin's
  own ``_populate_mtu_and_subnets_for_ports``, ``_process_floating_ips`` and
  ``_process_interfaces`` on the rows labtwin gives it (what the database
  queries ``_get_sync_routers``, ``_get_sync_interfaces``,
  ``_get_sync_floating_ips``, ``_get_subnets_by_network_list`` and
  ``_get_mtus_by_network_list`` would return; made from the topology by
  :func:`labtwin.scenarios.dvr.emulation.neutron_l3_rows.sync_rows`);
- the interface driver (:mod:`.l3_driver`);
- the run's private namespace prefixes (:func:`private_prefixes`);
- RPC: no transport. The plugin API (``L3PluginApi``) is :class:`L3Server`, the
  state report (``PluginReportStateAPI``) a recorder, and ``create_consumers``
  (the server's notifications to the agent) makes none: the agent hears only
  its fullsync.
- GARPs: Neutron's ``ip_lib.send_ip_addr_adv_notif`` sends them with ``arping``
  (Debian's iputils-arping) in a thread running its own ``_arping`` (``count``
  rounds of ``arping -U`` and ``-A``, 1 s each here, ``ARPING_SLEEP`` = 2 s
  apart: about 10 s an address); here that thread is a daemon, so the later
  rounds go with the worker when it stops once its routers are built (the
  first is sent as the router is built), and each GARP is also recorded
  (namespace, device, address) for the run summary.

Requests (one JSON line each, answered by one line):

- ``{"op": "start", "lock_dir", "host", "agent_mode", "prefix", "plugs", "rows"}``
  (and optionally ``"options"``: Neutron option name -> value, e.g. an HA router's
  ``ha_vrrp_advert_int``): configure, construct the agent, ``init_host()``.
  Answer ``{"took"}``. Rows with ``ha_interfaces`` (HA port bindings) are
  answered through ``l3_hamode_db``'s ``_process_sync_ha_data``.
- ``{"op": "sync"}``: one fullsync and the router updates it queued. Answer
  ``{"took", "seen", "garps", "fip_statuses", "routers"}``: ``seen`` is every
  namespace the agent's NamespaceManager counted as its own when the sync began
  (the ones its cleanup may delete).
- ``{"op": "ha_states"}``: what the agent reported of its HA routers' states so far
  (``update_ha_routers_states``, one entry per batch). Answer ``{"states"}``.
- ``{"op": "stop"}``.

An error answers ``{"error": traceback}``, and so does a request during which Neutron's code logged an ERROR
(its agent logs a failed router and carries on; here that fails the run).
"""

from __future__ import annotations

import copy
import time
from typing import Any, Optional

from labtwin.emulation import neutron_harness
from labtwin.emulation.neutron_agent import serve_lines

#: The binary Neutron's iptables chain prefix is taken from: ``neutron-l3-agent-*`` chains.
L3_BINARY = "neutron-l3-agent"
#: Neutron's own namespace prefixes, which the run's private prefix goes in front of.
NEUTRON_PREFIXES = ("qrouter-", "snat-", "fip-")


def private_prefixes(prefix: str) -> dict[str, str]:
    """Put *prefix* in front of Neutron's ``qrouter-``, ``snat-`` and ``fip-`` (every module constant that
    names them, and the ``NamespaceManager``'s map of the prefixes it manages, built at import).

    The agent's first fullsync deletes every namespace with a prefix it manages that it does not own
    (``NamespaceManager.__exit__``); with the run's private prefix the only namespaces it manages are the
    run's own on this host: ``qrouter-<id>`` of the machine or of another run is not its prefix. *prefix* has
    no ``-`` (``namespaces.get_prefix_from_ns_name`` cuts at the first one). Returns Neutron's prefix ->
    the private one."""
    if not prefix or "-" in prefix or not prefix.isalnum():
        raise ValueError(f"a private namespace prefix is letters and digits, not {prefix!r}")
    from neutron.agent.l3 import dvr_fip_ns, dvr_snat_ns, namespace_manager, namespaces

    namespaces.NS_PREFIX = prefix + "qrouter-"
    dvr_snat_ns.SNAT_NS_PREFIX = prefix + "snat-"
    dvr_fip_ns.FIP_NS_PREFIX = prefix + "fip-"
    namespace_manager.NamespaceManager.ns_prefix_to_class_map = {
        namespaces.NS_PREFIX: namespaces.RouterNamespace,
        dvr_snat_ns.SNAT_NS_PREFIX: dvr_snat_ns.SnatNamespace,
        dvr_fip_ns.FIP_NS_PREFIX: dvr_fip_ns.FipNamespace,
    }
    return dict(zip(NEUTRON_PREFIXES, (namespaces.NS_PREFIX, dvr_snat_ns.SNAT_NS_PREFIX, dvr_fip_ns.FIP_NS_PREFIX)))


class _SyncQueries:
    """What ``get_sync_data``'s helpers read from the database, answered from labtwin's rows."""

    def __init__(self, rows: dict) -> None:
        self.rows = rows

    @staticmethod
    def _each_port_having_fixed_ips(ports):
        from neutron.db import l3_db

        return l3_db.L3_NAT_dbonly_mixin._each_port_having_fixed_ips(ports)

    def _get_subnets_by_network_list(self, context, network_ids):
        return {n: copy.deepcopy(self.rows["subnets"].get(n, [])) for n in network_ids}

    def _get_mtus_by_network_list(self, context, network_ids):
        return {n: self.rows["mtus"][n] for n in network_ids}


class _HaQueries(_SyncQueries):
    """What ``_process_sync_ha_data`` reads from the database: this host's HA port bindings (the rows'
    ``ha_interfaces``, one per HA router, with the binding's state)."""

    class _core_plugin:
        @staticmethod
        def _make_port_dict(port):
            return copy.deepcopy(port)

    def get_ha_router_port_bindings(self, context, router_ids, host=None):
        from types import SimpleNamespace

        return [
            SimpleNamespace(
                router_id=p["device_id"],
                port={k: v for k, v in p.items() if k != "_ha_state"},
                state=p.get("_ha_state", "standby"),
            )
            for p in self.rows["ha_interfaces"]
            if p["device_id"] in router_ids
        ]

    def _populate_mtu_and_subnets_for_ports(self, context, ports):
        from neutron.db import l3_db

        return l3_db.L3_NAT_dbonly_mixin._populate_mtu_and_subnets_for_ports(self, context, ports)


class L3Server:
    """The L3 plugin's side of ``L3PluginApi``, for one agent (see the module docstring)."""

    def __init__(self, rows: dict) -> None:
        self.rows = rows
        self.fip_statuses: dict[str, dict] = {}
        #: ``update_ha_routers_states`` as the agent sent them (its BatchNotifier's batches), in order
        self.ha_states: list[dict[str, str]] = []

    def get_router_ids(self, context):
        return [r["id"] for r in self.rows["routers"]]

    def get_routers(self, context, router_ids=None):
        """``sync_routers``: Neutron's ``get_sync_data`` over the rows, its own steps in its order."""
        from neutron.db import l3_db

        mixin, queries = l3_db.L3_NAT_dbonly_mixin, _SyncQueries(self.rows)
        wanted = set(router_ids or self.get_router_ids(context))
        routers = [copy.deepcopy(r) for r in self.rows["routers"] if r["id"] in wanted]
        interfaces = [copy.deepcopy(p) for p in self.rows["interfaces"] if p["device_id"] in wanted]
        fips = [copy.deepcopy(f) for f in self.rows["floatingips"] if f["router_id"] in wanted]
        ports = [r["gw_port"] for r in routers if r.get("gw_port")] + interfaces
        for r in routers:  # l3_dvr_db._get_dvr_sync_data populates a DVR router's agent gateway and SNAT ports too
            ports += r.get("_floatingip_agent_interfaces", []) + r.get("_snat_router_interfaces", [])
        mixin._populate_mtu_and_subnets_for_ports(queries, None, ports)
        routers_dict = {r["id"]: r for r in routers}
        mixin._process_floating_ips(queries, None, routers_dict, fips)
        mixin._process_interfaces(queries, routers_dict, interfaces)
        if self.rows.get("ha_interfaces"):  # l3_hamode_db.get_ha_sync_data_for_host: each HA router's HA port
            from neutron.db import l3_hamode_db

            return l3_hamode_db.L3_HA_NAT_db_mixin._process_sync_ha_data(
                _HaQueries(self.rows), None, list(routers_dict.values()), None, False
            )
        return list(routers_dict.values())

    def get_host_ha_router_count(self, context):
        return sum(1 for r in self.rows["routers"] if r.get("ha"))

    def get_service_plugin_list(self, context):
        return []

    def update_floatingip_statuses(self, context, router_id, fip_statuses):
        self.fip_statuses.setdefault(router_id, {}).update(fip_statuses)

    def update_all_ha_network_port_statuses(self, context):
        return None

    def _not_yet(self, name: str):
        raise NotImplementedError(f"labtwin's L3 server does not answer {name} (legacy routers only, for now)")

    def get_networks(self, context, filters=None, fields=None):  # the interface driver's MTU lookup
        self._not_yet("get_networks")

    def get_ports_by_subnet(self, context, subnet_id):
        """DVR's ARP entries: ``get_ports_under_dvr_connected_subnet`` (the rows' ``subnet_ports``)."""
        return copy.deepcopy(self.rows["subnet_ports"][subnet_id])

    def get_agent_gateway_port(self, context, fip_net):  # DVR
        self._not_yet("get_agent_gateway_port")

    def delete_agent_gateway_port(self, context, fip_net):  # DVR
        self._not_yet("delete_agent_gateway_port")

    def update_ha_routers_states(self, context, states):  # HA: recorded (the server would bind the states)
        self.ha_states.append(dict(states))


class _StateReport:
    def __init__(self, *args, **kwargs) -> None:
        self.reports: list[dict] = []

    def report_state(self, context, agent_state, use_call=False):
        self.reports.append(copy.deepcopy(agent_state))
        return "alive"


class HostL3Agent:
    """Neutron's L3 agent for one host, its server and the GARPs it asked for."""

    def __init__(self, request: dict) -> None:
        self.garps: list[list[str]] = []
        self.server = L3Server(request["rows"])
        self.prefixes = _configure(request)
        from neutron.agent import rpc as agent_rpc
        from neutron.agent.l3 import agent as l3_agent
        from neutron.agent.linux import ip_lib
        from oslo_config import cfg

        from . import l3_driver
        from .worker import ErrorLog

        l3_driver.PLUGS.clear()
        l3_driver.PLUGS.update(request["plugs"])
        l3_agent.L3PluginApi = lambda topic, host: self.server
        agent_rpc.PluginReportStateAPI = _StateReport
        agent_rpc.create_consumers = lambda *args, **kwargs: []
        ip_lib.send_ip_addr_adv_notif = self._garp
        self.errors = ErrorLog()
        import logging

        logging.getLogger().addHandler(self.errors)
        with self.errors.none_allowed("start"):
            self.agent = l3_agent.L3NATAgentWithStateReport(request["host"], cfg.CONF)
            self.agent.init_host()

    def _garp(self, ns_name, iface_name, address, count=3, log_exception=True) -> None:
        """``ip_lib.send_ip_addr_adv_notif``: Neutron's own ``_arping``, in a daemon thread; recorded."""
        import threading

        import netaddr
        from neutron.agent.linux import ip_lib

        self.garps.append([ns_name, iface_name, str(address)])
        if count > 0 and netaddr.IPAddress(address).version == 4:  # as send_ip_addr_adv_notif: IPv4 only
            args = (ns_name, iface_name, address, count, log_exception)
            threading.Thread(target=ip_lib._arping, args=args, daemon=True).start()

    def sync(self) -> dict:
        with self.errors.none_allowed("the router sync"):
            start = time.perf_counter()
            manager = self.agent.namespaces_manager
            seen = sorted(manager.list_all())
            self.agent.periodic_sync_routers_task(self.agent.context)
            while not self.agent._queue._queue.empty():
                self.agent._process_update()
            took = time.perf_counter() - start
        return {
            "took": took,
            "seen": seen,
            "garps": self.garps,
            "fip_statuses": self.server.fip_statuses,
            "routers": sorted(self.agent.router_info),
        }


def _configure(request: dict) -> dict[str, str]:
    """Neutron's L3 agent options as ``neutron-l3-agent`` registers them, set for the emulated host."""
    from neutron.agent import l3_agent
    from oslo_config import cfg

    l3_agent.register_opts(cfg.CONF)
    neutron_harness.configure_agent(
        request["lock_dir"],
        {
            ("host", None): request["host"],
            ("agent_mode", None): request["agent_mode"],
            ("interface_driver", None): "labtwin.emulation.neutron_agent.l3_driver.EmulatedBridgeDriver",
            # the metadata proxy is haproxy (not installed); no instance asks for metadata here
            ("enable_metadata_proxy", None): False,
            ("state_path", None): request["lock_dir"],  # DVR's FIP rule priorities and link-local pairs (files)
            ("report_interval", "AGENT"): 0,  # no heartbeat thread (its report would go to no server)
            # the run's own choices of Neutron options (HA routers: ha_vrrp_advert_int, ha_conntrackd_enabled)
            **{(name, None): value for name, value in request.get("options", {}).items()},
        },
    )
    return private_prefixes(request["prefix"])


def serve(lines, out) -> int:
    agents: list[HostL3Agent] = []

    def handle(request: dict) -> dict[str, Any]:
        if request["op"] == "start":
            start = time.perf_counter()
            agents.append(HostL3Agent(request))
            return {"took": time.perf_counter() - start, "prefixes": agents[-1].prefixes}
        if request["op"] == "sync":
            if not agents:
                raise RuntimeError("sync before start")
            return agents[-1].sync()
        if request["op"] == "ha_states":  # what the agent told the server of its HA routers' states so far
            return {"states": agents[-1].server.ha_states if agents else []}
        raise ValueError(f"unknown op {request['op']!r}")

    return serve_lines(lines, out, handle)


def main(argv: Optional[list] = None) -> None:
    neutron_harness.run_worker(serve, __doc__, L3_BINARY, argv)


if __name__ == "__main__":
    main()
