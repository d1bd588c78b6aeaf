"""One emulated host's security-group agent: Neutron 29's own code, driven over stdin/stdout (JSON lines).

``python -m labtwin.emulation.neutron_agent.worker --run RID --host NAME``
(the run id and host make the argv unique, so the run's ledger finds this process by it).

What runs is Neutron's: ``SecurityGroupAgentRpc`` (deferred refresh, as the
OVS agent creates it), ``SecurityGroupServerAPIShim`` over a
``RemoteResourceCache`` (how an ML2/OVS agent learns groups and members
today), and the hybrid iptables driver ``OVSHybridIptablesFirewallDriver``
(with ipset when asked) on the host's named network namespace. labtwin's own
code here: the server side (:mod:`.server`), the transport, and one subclass
line: the driver is built with the host's namespace (Neutron's
``init_firewall`` builds it with none, for an agent that owns its machine).

Requests, one JSON object per line, each answered by one line:

- ``{"op": "start", "namespace", "lock_dir", "firewall", "ovs_rundir", "groups", "ports"}``:
  ``firewall`` is ``iptables``, ``ipset`` or ``ovs``; under ``ovs`` the driver is
  Neutron's ``OVSFirewallDriver`` on ``br-int`` of the host's private OVS in
  ``ovs_rundir`` (:mod:`labtwin.emulation.private_ovs`), whose base flows and
  port binding are the OVS agent's (:mod:`.ovs_host`).
- ``{"op": "iteration", "pushes": [...], "added": [...], "removed": [...]}``:
  the server's pushes (``{"update": port}`` or ``{"delete": port_id}``) reach
  the cache, then one ``rpc_loop`` iteration: removed devices' filters go
  (``remove_devices_filter``), then (ovs) the added ports are bound, then
  ``setup_port_filters(added, set())``, which prepares the new devices and
  refreshes every device the pushes marked, then (ovs) the added ports get
  their local VLAN tag.
  Answer: ``{"start", "took", "calls": {method: count}}`` (perf_counter, the
  machine's monotonic clock, comparable with the caller's).
- ``{"op": "stop"}``

An error answers ``{"error": "<traceback>"}``; so does an iteration in which Neutron's code logged an
ERROR (:class:`ErrorLog`: its agent logs a refused command and goes on).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import time
from typing import Any

from labtwin.emulation import neutron_harness
from labtwin.emulation.neutron_agent import serve_lines

from . import ovs_host

#: The firewall driver methods whose calls are counted (what Neutron's agent asked the driver to do).
COUNTED = (
    "prepare_port_filter",
    "update_port_filter",
    "remove_port_filter",
    "update_security_group_members",
    "update_security_group_rules",
)


class HostAgent:
    """Neutron's security-group agent for one host, and the server it listens to."""

    def __init__(self, request: dict) -> None:
        firewall = request["firewall"]
        neutron_harness.configure(request["lock_dir"], firewall, request.get("ovs_rundir"))
        from neutron.agent import resource_cache
        from neutron.agent import securitygroups_rpc as sg_rpc
        from neutron.api.rpc.handlers import resources_rpc
        from neutron.api.rpc.handlers import securitygroups_rpc as sg_handlers
        from neutron_lib import context as n_context

        from .server import NETWORK_ID, Server

        self.server = Server(request["groups"], request["ports"])
        resources_rpc.ResourcesPullRpcApi = lambda: self.server  # the cache's and the shim's puller
        self.network_id = NETWORK_ID
        self.int_br = _integration_bridge() if firewall == "ovs" else None
        make_driver = _firewall_factory(request["namespace"], self.int_br)

        class NamespacedAgent(sg_rpc.SecurityGroupAgentRpc):
            def init_firewall(self, defer_refresh_firewall=False, integration_bridge=None):
                self.firewall = make_driver()
                self.defer_refresh_firewall = defer_refresh_firewall
                self.devices_to_refilter = set()

        self.context = n_context.get_admin_context()
        self.cache = resource_cache.RemoteResourceCache(["Port", "SecurityGroup", "SecurityGroupRule"])
        shim = sg_handlers.SecurityGroupServerAPIShim(self.cache)
        self.agent = NamespacedAgent(self.context, shim, defer_refresh_firewall=True)
        shim.register_legacy_sg_notification_callbacks(self.agent)
        self.calls: collections.Counter = collections.Counter()
        _count_calls(self.agent.firewall, self.calls)
        _count_conntrack_deletes(self.agent.firewall.ipconntrack, self.calls)
        self.errors = ErrorLog()
        logging.getLogger().addHandler(self.errors)

    def iteration(self, request: dict) -> dict:
        self.calls.clear()
        with self.errors.none_allowed("iteration"):
            return self._iteration(request)

    def _iteration(self, request: dict) -> dict:
        start = time.perf_counter()
        for push in request.get("pushes", ()):
            if "update" in push:
                self.cache.record_resource_update(self.context, "Port", self.server.put_port(push["update"]))
            else:
                self.server.delete_port(push["delete"])
                self.cache.record_resource_delete(self.context, "Port", push["delete"])
        added = request.get("added", ())
        self.agent.remove_devices_filter(request.get("removed", ()))
        bound = ovs_host.bind_ports(self.int_br, added, self.network_id) if self.int_br is not None else []
        self.agent.setup_port_filters(set(added), set())
        if bound:
            ovs_host.tag_ports(self.int_br, bound)
        took = time.perf_counter() - start
        return {"start": start, "took": took, "calls": dict(self.calls)}


class ErrorLog(logging.Handler):
    """The ERROR records Neutron's code logs. Its agent logs a failed command (an ``ovs-ofctl`` that refused a
    flow, an ``iptables-restore`` that failed) and carries on with the port unfiltered; here that fails the
    request, naming the first error, instead of a run whose counts and verdicts quietly come from a broken
    filter."""

    #: ERRORs Neutron logs on a path that leaves nothing unfiltered, each with why it is harmless here.
    HARMLESS = {
        # process_trusted_ports on a deleted port's id whose tap Nova has already unplugged (a leave, on the
        # port's own host): the OVS firewall finds no such port in OVSDB, logs, and writes nothing.
        "Initializing unfiltered port": "the port is deleted and unplugged; nothing is left to filter",
    }

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if not any(message.startswith(known) for known in self.HARMLESS):
            self.records.append(f"{record.name}: {message}")

    @contextlib.contextmanager
    def none_allowed(self, what: str):
        self.records.clear()
        yield
        if self.records:
            first = self.records[0]
            raise RuntimeError(
                f"Neutron's agent logged {len(self.records)} error(s) during {what}; the first: {first[:1500]}"
            )


def _integration_bridge():
    """br-int of the host's private OVS (Neutron's ``ovs_lib.OVSBridge``), with the OVS agent's base flows."""
    from neutron.agent.common import ovs_lib
    from neutron.plugins.ml2.drivers.openvswitch.agent.openflow.br_cookie import OVSBridgeCookieMixin

    class IntegrationBridge(OVSBridgeCookieMixin, ovs_lib.OVSBridge):
        """ovs_lib's bridge (OVSDB, ovs-ofctl) with the OVS agent's cookie bookkeeping, which the firewall uses."""

    br = IntegrationBridge(ovs_host.INTEGRATION_BRIDGE)
    if not br.bridge_exists(br.br_name):
        raise RuntimeError(f"the host's private OVS has no {br.br_name}: the run creates it before the agent")
    ovs_host.install_base_flows(br)
    return br


def _firewall_factory(namespace: str, int_br):
    """The host's firewall driver, built in its namespace (Neutron's ``init_firewall`` builds it in none)."""
    if int_br is None:
        from neutron.agent.linux import iptables_firewall

        return lambda: iptables_firewall.OVSHybridIptablesFirewallDriver(namespace=namespace)
    from neutron.agent.linux.openvswitch_firewall import firewall as ovs_firewall

    def build():
        driver = ovs_firewall.OVSFirewallDriver(int_br)
        # its conntrack cleanup runs `conntrack -D` with no namespace: the machine's own table otherwise
        driver.ipconntrack.namespace = namespace
        return driver

    return build


def _count_calls(driver: Any, calls: collections.Counter) -> None:
    """Count each call of the :data:`COUNTED` driver methods (the driver's behaviour is unchanged)."""
    for name in COUNTED:
        method = getattr(driver, name)

        def counted(*args, _method=method, _name=name, **kwargs):
            calls[_name] += 1
            return _method(*args, **kwargs)

        setattr(driver, name, counted)


def _count_conntrack_deletes(manager: Any, calls: collections.Counter) -> None:
    """Count the ``conntrack -D`` commands the driver queues (``conntrack_deletes``), each when queued, by
    Neutron's own command builder (``_get_conntrack_cmds``), as its queue thread will build them. The queue
    thread still runs them: counting changes nothing."""
    process = manager._process

    def counted(device_info_list, rule, remote_ips=None):
        for ip in remote_ips or (None,):
            calls["conntrack_deletes"] += len(manager._get_conntrack_cmds(device_info_list, rule, ip))
        return process(device_info_list, rule, remote_ips)

    manager._process = counted


def serve(lines, out) -> int:
    agents: list[HostAgent] = []

    def handle(request: dict) -> dict:
        if request["op"] == "start":
            agents.append(HostAgent(request))
            return {"started": True}
        if request["op"] == "iteration":
            if not agents:
                raise RuntimeError("iteration before start")
            return agents[-1].iteration(request)
        raise ValueError(f"unknown op {request['op']!r}")

    return serve_lines(lines, out, handle)


def main(argv=None) -> None:
    neutron_harness.run_worker(serve, __doc__, argv=argv)


if __name__ == "__main__":
    main()
