"""``control=neutron``: each emulated host's firewall is programmed by Neutron 29's own agent code.

One worker per host (:mod:`labtwin.emulation.neutron_agent`: Neutron's
``SecurityGroupAgentRpc`` with the hybrid iptables driver, and ipset when
``firewall=ipset``; with ``firewall=ovs``, the OVS firewall on br-int of the
host's own private OVS, started and plugged by :func:`plug_own_ovs`).
:class:`NeutronHostAgent` has the labtwin agent's interface
(``converge``/``join``/``leave``/``read_state``), so the workload, the kernel
reader and the probes are the same for both controls; what differs is who
decides what to write: Neutron's code, from what the server tells it.

The server's side is labtwin's (:class:`ServerView` here): the layout's ports
and groups as Neutron objects. A join is a port create pushed to every host; a
leave is a port delete pushed to every host, and on the port's own host the
device goes (``remove_devices_filter``). A port never comes back: only the
first join is timed under this control (``emulation.timed_joins`` says why), and
Neutron's cache would refuse a deleted id anyway.

Simplification, stated: the outsider's group is Neutron's default rule set for
a non-default group (egress anywhere, IPv4 and IPv6), whatever groups the
topology gives it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Optional

from labtwin.description.schema import NEUTRON_DEFAULT_RULES
from labtwin.emulation.neutron_agent import NeutronWorker, in_parallel, start_worker
from labtwin.emulation.neutron_agent.objects import group_dict, group_id
from labtwin.emulation.neutron_agent.ovs_host import DEAD_VLAN_TAG, INTEGRATION_BRIDGE
from labtwin.emulation.private_ovs import PrivateOvs, start_private_ovs
from labtwin.emulation.runner import Runner, Step, in_netns

from ..spec import Layout
from . import kernel, state
from .plan import Shape
from .rules import EPort

#: The group the outsider port is in (not the studied group).
OUTSIDER_GROUP = "labtwin-outsider"


@dataclass
class ServerView:
    """The server's objects as every host's worker must see them: the layout's ports and groups."""

    layout: Layout
    ports: dict[str, EPort]

    def port(self, eport: EPort) -> dict:
        group = self.layout.group if eport.member else OUTSIDER_GROUP
        return {
            "id": eport.port_id,
            "mac": eport.mac,
            "ips": [eport.ip],
            "host": eport.host,
            "security_groups": [group_id(group)],
            "allowed_address_pairs": [{"ip_address": pair, "mac_address": eport.mac} for pair in eport.pairs],
        }

    def groups(self) -> list[dict]:
        outsider = [r.for_group(OUTSIDER_GROUP) for r in NEUTRON_DEFAULT_RULES if r.used_in_non_default_sg]
        return [group_dict(self.layout.group, self.layout.rules), group_dict(OUTSIDER_GROUP, outsider)]


@dataclass
class NeutronHostAgent:
    """One host's Neutron agent, behind labtwin's agent interface (see the module docstring)."""

    host: str
    firewall: str
    layout: Layout
    runner: Runner
    pid: int  # the host namespace's holder (for reading the kernel)
    server: ServerView
    worker: NeutronWorker
    ovs: Optional[PrivateOvs] = None  # firewall=ovs: the host's own OVS, whose br-int Neutron programs
    local: list = field(default_factory=list)
    busy_s: float = 0.0
    calls: dict = field(default_factory=dict)  # method -> count, over the run's counted iterations
    deleted: set = field(default_factory=set)  # port ids deleted during the run

    # --- the agent interface --------------------------------------------------
    def converge(self, ports: list, ips: frozenset) -> None:
        """Start Neutron's agent on this host with the server's objects; it prepares its existing ports."""
        joining = {j.name for j in self.layout.joins}
        present = [p for p in self.server.ports.values() if p.name not in joining]
        rundir = self.ovs.rundir if self.ovs is not None else None
        self.worker.start(self.server.groups(), [self.server.port(p) for p in present], self.firewall, rundir)
        self.local = list(ports)
        self._iteration([], [p.port_id for p in ports], [], counted=False)

    def join(self, port: EPort, ips: frozenset) -> tuple[float, float]:
        """*port* created in the group: pushed to this host; on its own host its device appears too."""
        if port.port_id in self.deleted:
            raise RuntimeError(
                f"{port.name} was deleted: Neutron's cache never takes a deleted port id back, so a port cannot "
                "rejoin under control=neutron (only the first join is timed)"
            )
        local = port.host == self.host
        start, took = self._iteration([{"update": self.server.port(port)}], [port.port_id] if local else [], [])
        if local:
            if self.ovs is None:
                # port_bound after the filter: the tap was down until now (see the labtwin agent's join); on
                # the own OVS the worker binds the port (it leaves the dead VLAN after its filter is written)
                self.runner.run(
                    Step(in_netns(self.pid, ("ip", "link", "set", port.tap, "up")), what=f"{self.host}: wire port")
                )
                took = time.perf_counter() - start
            self.local.append(port)
        self.busy_s += took
        return start, took

    def leave(self, port: EPort, ips: frozenset) -> tuple[float, float]:
        """*port* deleted: pushed to this host; on its own host its device and filter go."""
        self.deleted.add(port.port_id)
        local = port.host == self.host
        if local:
            self.local = [p for p in self.local if p.name != port.name]
        if local and self.ovs is not None:
            # Nova unplugs the VM's port (os-vif: del-port) as the VM goes. Left plugged, the deleted port
            # would come back as an unfiltered "trusted" port: Neutron 29's iteration refreshes the deleted
            # id and process_trusted_ports writes its egress-accept flow (the hybrid driver's stale FORWARD
            # rules, see emulation.timed_joins, are the same quirk).
            self.runner.run(
                Step(
                    self.ovs.vsctl("--if-exists", "del-port", INTEGRATION_BRIDGE, port.tap),
                    what=f"{self.host}: unplug {port.name}",
                )
            )
        start, took = self._iteration([{"delete": port.port_id}], [], [port.port_id] if local else [])
        self.busy_s += took
        return start, took

    def read_state(self) -> dict:
        if self.ovs is not None:
            return kernel.read_flows(self.host, self.runner, self.ovs.mgmt(INTEGRATION_BRIDGE))
        return kernel.read_hybrid(self.host, self.runner, self.pid)

    # --- helpers --------------------------------------------------------------------
    def _iteration(self, pushes: list, added: list, removed: list, counted: bool = True) -> tuple[float, float]:
        answer = self.worker.iteration(pushes, added, removed)
        if counted:
            for method, n in answer["calls"].items():
                self.calls[method] = self.calls.get(method, 0) + n
        return float(answer["start"]), float(answer["took"])


def start_agents(real, shape, layout: Layout, firewall: str, ports: dict[str, EPort], joining: set) -> dict:
    """One Neutron agent per host, each converged on its existing ports (workers started side by side)."""
    server = ServerView(layout, ports)
    agents = {
        host: NeutronHostAgent(
            host,
            firewall,
            layout,
            real.runner,
            real.pid(shape.host_ns[host]),
            server,
            start_worker(real, shape.host_ns[host], host),
            shape.own_ovs.get(host),
        )
        for host in layout.hosts
    }
    in_parallel(
        lambda a: a.converge([p for p in ports.values() if p.host == a.host and p.name not in joining], frozenset()),
        agents.values(),
    )
    return agents


def plug_own_ovs(real, shape: Shape, ports: dict[str, EPort]) -> None:
    """Start each host's private OVS with its br-int, and plug the uplink and the host's ports into it.

    The ports as os-vif plugs them for ML2/OVS (``iface-id``, ``attached-mac``, ``iface-status``), each
    on the dead VLAN 4095, where the OVS agent keeps a port it has not bound yet (Neutron's agent binds
    the existing ports when it starts, a joining one when it joins). The uplink is a trunk.
    """

    def start(host: str) -> None:
        ovs = start_private_ovs(real, shape.host_ns[host], shape.own_ovs[host])
        steps = [
            *ovs.vsctl("add-br", INTEGRATION_BRIDGE),
            *("--", "set", "Bridge", INTEGRATION_BRIDGE, "datapath_type=netdev", "fail_mode=secure"),
            *("other-config:disable-in-band=true", "protocols=OpenFlow10,OpenFlow13,OpenFlow14"),
            *("--", "add-port", INTEGRATION_BRIDGE, shape.uplink[host]),
        ]
        for port in (p for p in ports.values() if p.host == host):
            steps += ["--", "add-port", INTEGRATION_BRIDGE, port.tap, f"tag={DEAD_VLAN_TAG}"]
            steps += ["--", "set", "Interface", port.tap, f"external_ids:iface-id={port.port_id}"]
            steps += [f"external_ids:attached-mac={port.mac}", "external_ids:iface-status=active"]
        real.runner.run(Step(tuple(steps), what=f"{host}: br-int and its ports on its own OVS"))

    in_parallel(start, list(shape.own_ovs))


def own_ofports(real, shape: Shape) -> dict[str, int]:
    """OpenFlow port numbers of the ports' taps, each read from its host's own OVS (each numbers its own)."""
    ofport = {}
    taps = set(shape.port_dev.values())
    for host, ovs in shape.own_ovs.items():
        listing = ovs.vsctl("--format=csv", "--columns=name,ofport", "list", "Interface")
        found = state.parse_ofports(real.runner.run(Step(listing, what=f"{host}: ofports")).stdout)
        ofport.update({dev: n for dev, n in found.items() if dev in taps})
    return ofport


def with_own_ofports(real, shape: Shape, ports: dict[str, EPort]) -> dict[str, EPort]:
    """*ports* with their ofports on their hosts' own OVS."""
    ofport = own_ofports(real, shape)
    return {name: replace(p, ofport=ofport[shape.port_dev[name]]) for name, p in ports.items()}
