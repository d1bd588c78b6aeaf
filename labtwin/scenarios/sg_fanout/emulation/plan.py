"""sg-fanout's realisation plan: the layout's hosts and ports as namespaces, bridges and veths (data only).

Two shapes, both on a small userspace OVS "fabric" bridge standing for the
physical network between hosts (flat, no VLAN: one network):

- **hybrid** (``iptables``, ``ipset``): each host is a namespace with a Linux
  bridge ``brq<net-id>``, its ports' ``tap`` devices enslaved, and an uplink
  ``eth1`` to the fabric; ``br_netfilter`` sends bridged traffic through the
  host's iptables, where the agent writes the per-port chains. A joining
  port's tap stays down until Nova "plugs" it (before the API call is timed).
- **ovs** (``ovs``, ``subtable``): each host is one userspace OVS integration
  bridge (``lt<rid>i<n>``, one per host: small bridges forward sooner here),
  with its ports and a veth uplink to the fabric; the agent writes OpenFlow.
  A joining port is attached from the start: until its flows exist, nothing
  addressed to it gets past table 60.
- **own OVS** (``ovs`` under ``control=neutron``; ``ovn``, an OVN chassis on it): each host is a namespace
  with its uplink ``eth1`` and its ports' taps, and its own private OVS
  (:mod:`labtwin.emulation.private_ovs`, started once the namespaces exist:
  :func:`.neutron_agent.plug_own_ovs`), whose ``br-int`` Neutron's OVS firewall programs. The
  taps are plugged as os-vif plugs them (``iface-id``, ``attached-mac``), each
  on the dead VLAN until the agent binds it.

Port namespaces hold the port's MAC and address on ``eth0``, and static
neighbour entries for every other port: ARP is not what this scenario
measures, and a neighbour entry that failed while the new port was still
unwired would otherwise add ARP's one-second retry to the time to ready
(Neutron's l2population ARP responder answers for remote ports similarly).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from labtwin.description.schema import derived_id
from labtwin.emulation.ledger import ROOT
from labtwin.emulation.naming import bridge_name, node_name
from labtwin.emulation.neutron_agent.ovs_host import INTEGRATION_BRIDGE
from labtwin.emulation.plan import Endpoint, OvsBridge, OvsPort, Plan, Veth
from labtwin.emulation.private_ovs import PrivateOvs

from ..spec import Layout, host_pairs
from .rules import EPort

HYBRID = ("iptables", "ipset")
#: The layout's addresses come from one /14 (labtwin.scenarios.sg_fanout.spec._ip).
PREFIX = 14


@dataclass(frozen=True)
class Shape:
    """Where things are: host -> namespace key (hybrid, own OVS) or bridge (ovs: name; own OVS: OpenFlow
    address), port -> OVS device."""

    hybrid: bool
    host_ns: dict
    host_bridge: dict
    uplink: dict  # host -> OVS uplink device on its bridge (ovs shapes)
    port_dev: dict  # port -> device on its host bridge (ovs shapes)
    brq: str
    own_ovs: dict = field(default_factory=dict)  # host -> PrivateOvs (own OVS shape)


def build(
    layout: Layout, ports: dict[str, EPort], firewall: str, run_id: str, control: str = "labtwin"
) -> tuple[Plan, Shape]:
    """The plan for *layout* under *firewall* and *control*, and where its parts are.

    Under ``control=neutron``, the hybrid firewalls get the hybrid plug: each tap on its own ``qbr``
    joined to the host's bridge by ``qvb``/``qvo``, as ML2/OVS plugs a port for the hybrid driver
    (:meth:`Plan.plug`), so that Neutron's per-port conntrack zones see both directions of a connection;
    ``ovs`` gets the own-OVS shape.
    """
    if firewall not in HYBRID and control in ("neutron", "ovn"):
        return _own_ovs(layout, ports, run_id)
    hybrid_plug = control == "neutron"
    plan = Plan(run_id)
    hybrid = firewall in HYBRID
    fabric = _fabric(plan)
    brq = bridge_name(derived_id("network", layout.group))
    host_ns, host_bridge, uplink = {}, {}, {}
    for i, host in enumerate(layout.hosts):
        if hybrid:
            key = f"host:{i}"
            host_ns[host] = key
            cfg = plan.add_ns(key, "host", host)
            cfg.sysctls += ["net.bridge.bridge-nf-call-iptables=1", "net.ipv4.icmp_ratelimit=0"]
            cfg.ip_batch.append("link set lo up")
            cfg.bridge(brq)
            _uplink(plan, key, i, fabric)
            cfg.enslave("eth1", brq)
        else:
            br, near, far = (node_name(run_id, k, i) for k in "ixy")
            host_bridge[host] = br
            uplink[host] = near
            plan.ovs_bridges.append(OvsBridge(br, host))
            plan.veths.append(Veth(ROOT, near, ROOT, far))
            plan.ovs_ports += [OvsPort(br, near), OvsPort(fabric, far)]
    joining = {m.name for m in layout.joins}
    port_dev = {}
    for j, port in enumerate(ports.values()):
        key = _port_ns(plan, j, port, ports)
        if hybrid:
            plan.veths.append(Veth(key, "eth0", host_ns[port.host], port.tap))
            plan.plug(host_ns[port.host], port.port_id, port.tap, brq, hybrid_plug, tap_up=port.name not in joining)
        else:
            dev = node_name(run_id, "t", j)
            port_dev[port.name] = dev
            plan.veths.append(Veth(key, "eth0", ROOT, dev))
            plan.ovs_ports.append(OvsPort(host_bridge[port.host], dev))
    return plan, Shape(hybrid, host_ns, host_bridge, uplink, port_dev, brq)


def _own_ovs(layout: Layout, ports: dict[str, EPort], run_id: str) -> tuple[Plan, Shape]:
    """The own-OVS shape (see the module docstring): namespaces and veths here; the OVS comes later."""
    plan = Plan(run_id)
    fabric = _fabric(plan)
    host_ns, own = {}, {}
    for i, host in enumerate(layout.hosts):
        key = host_ns[host] = f"host:{i}"
        cfg = plan.add_ns(key, "host", host)
        cfg.ip_batch += ["link set lo up", "link set eth1 up"]
        _uplink(plan, key, i, fabric)
        own[host] = PrivateOvs.for_node(host, plan.ns(key).node)
    port_dev = {}
    for j, port in enumerate(ports.values()):
        key = _port_ns(plan, j, port, ports)
        plan.veths.append(Veth(key, "eth0", host_ns[port.host], port.tap))
        plan.config[host_ns[port.host]].ip_batch.append(f"link set {port.tap} up")
        port_dev[port.name] = port.tap
    bridges = {h: o.mgmt(INTEGRATION_BRIDGE) for h, o in own.items()}
    return plan, Shape(False, host_ns, bridges, {h: "eth1" for h in host_ns}, port_dev, "", own)


def _fabric(plan: Plan) -> str:
    fabric = node_name(plan.run_id, "b", 0)
    plan.ovs_bridges.append(OvsBridge(fabric, "fabric"))
    return fabric


def _uplink(plan: Plan, key: str, i: int, fabric: str) -> None:
    """The host namespace's ``eth1``, its far end a port of the fabric bridge."""
    far = node_name(plan.run_id, "u", i)
    plan.veths.append(Veth(key, "eth1", ROOT, far))
    plan.ovs_ports.append(OvsPort(fabric, far))


def vips(port: EPort) -> list[str]:
    """The port's allowed-address-pair addresses that name one host, as bare addresses (the VIPs it holds)."""
    return host_pairs(port.pairs)


def _port_ns(plan: Plan, j: int, port: EPort, ports: dict[str, EPort]) -> str:
    """Port *j*'s namespace: its MAC and address on ``eth0``, static neighbours for every other port."""
    key = f"port:{j}"
    cfg = plan.add_ns(key, "port", port.name)
    cfg.sysctls += ["net.ipv4.icmp_ratelimit=0"]
    cfg.ip_batch += [
        "link set lo up",
        f"link set eth0 address {port.mac}",
        f"addr add {port.ip}/{PREFIX} dev eth0",
        # the port's allowed-address-pair VIPs, held as keepalived would hold them (host pairs only)
        *(f"addr add {vip}/32 dev eth0" for vip in vips(port)),
        "link set eth0 up",
    ]
    cfg.ip_batch += [
        f"neigh replace {ip} lladdr {q.mac} dev eth0 nud permanent"
        for q in ports.values()
        if q is not port
        for ip in (q.ip, *vips(q))
    ]
    plan.endpoints[port.name] = Endpoint(port.name, key, "eth0", port.mac, (ipaddress.ip_address(port.ip),))
    return key
