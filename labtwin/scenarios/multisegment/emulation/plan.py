"""Routed-network realisation plan for ``multisegment``: the design's bridges, as plain data.

What is built (Linux bridge agent, neutron-facts.md 1.3):

- every compute host with an admitted VM is a namespace holding the bridges
  the agent would create, named ``brq`` + 11 characters of the *key*: the
  network id (``bridge_naming = network``, Neutron before the PoC) or the
  segment id (``segment``). Each VM's ``tap`` and each segment's uplink
  ``<phys_if>.<vlan>`` (hashed like Neutron's when longer than 15 characters)
  are enslaved to the bridge of their key. Two segments of one network on a
  host under network naming therefore really share one bridge;
- the uplink is a veth to an OVS access port tagged with the segmentation id
  on the physnet's fabric bridge (this kernel has no 802.1Q: see
  :meth:`labtwin.scenarios.reachability.emulation.plan.Wiring.uplink`), so segments stay apart
  on the fabric unless a host bridge joins them;
- one router namespace per rack (the fabric router: Neutron does not route
  between segments) with a device ``vlan<id>`` on every segment of the rack's
  physnets, holding that segment subnet's gateway address;
- every admitted VM port is a namespace with its MAC and fixed IP on ``eth0``
  and a default route via its subnet's gateway.

Which ports exist is this module's own IPAM check (:func:`admission`), from
Neutron's rules, not the model's. Simplifications (said where they happen):
no security groups (port filtering does not change which L2 domain a frame
reaches); no DHCP ports (addresses are fixed); the OVS agent is not emulated.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Optional

from labtwin.description import Cloud, Port, Segment, Subnet
from labtwin.description.names import vlan_subinterface_name
from labtwin.emulation import naming
from labtwin.emulation.ledger import ROOT
from labtwin.emulation.plan import OvsBridge, OvsPort, Plan, PlanError, Veth, derived_mac
from labtwin.emulation.wiring import Wiring, default_route, gateway_address

from ..spec import MultisegmentDesign, loop_closers

MAX_NAMESPACES = 64  # beyond this, a run is a model question, not an emulation one

MULTIPLE_SEGMENTS = "host_connected_to_multiple_segments"
NO_SEGMENT = "host_not_connected_to_any_segment"
INCOMPATIBLE = "host_not_compatible_with_fixed_ips"


@dataclass(frozen=True)
class Vm:
    """An admitted VM port: where it is, which segment, and its gateway."""

    port: str
    host: str
    rack: str
    segment: str
    ip: str
    mac: str
    ns: str
    gateway: Optional[str]


@dataclass
class SegmentPlan:
    """The plan plus what the multisegment probes need to know about it."""

    plan: Plan
    vms: list[Vm] = field(default_factory=list)
    refused: list[dict] = field(default_factory=list)  # port, host, reason
    bridges: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # host -> bridge -> segments
    uplinks: dict[str, dict[str, str]] = field(default_factory=dict)  # host -> segment -> device
    gateway_macs: dict[str, str] = field(default_factory=dict)  # segment -> MAC of its gateway
    host_ns: dict[str, str] = field(default_factory=dict)  # host name -> namespace key


def subinterface_name(phys_if: str, vlan: int) -> str:
    """The Linux bridge agent's ``get_subinterface_name`` (the rule: :func:`labtwin.description.names.
    vlan_subinterface_name`), refusing a mapping that is not a plain interface name.

    >>> subinterface_name("bond0", 2011), subinterface_name("enp175s0f1np1", 2021)
    ('bond0.2011', 'enp195a366.2021')
    """
    name = vlan_subinterface_name(phys_if, vlan)
    if not name.replace(".", "").replace("-", "").replace("_", "").isalnum():
        raise PlanError(f"interface mapping {phys_if!r} is not a plain interface name")
    return name


def port_segment(cloud: Cloud, port: Port) -> Optional[Segment]:
    """The segment of the subnet of the port's first fixed IP."""
    for fixed in port.fixed_ips:
        seg = cloud.subnet[fixed.subnet_id].segment_id
        if seg is not None:
            return cloud.segment[seg]
    return None


def reachable_segments(cloud: Cloud, network: str, host: str) -> list[Segment]:
    """SegmentHostMapping: segments of *network* with a subnet, on a physnet *host*'s agent maps."""
    physnets = set(cloud.host[host].bridge_mappings)
    with_subnet = {s.segment_id for s in cloud.subnets if s.network_id == network}
    return [
        s
        for s in cloud.segments
        if s.network_id == network and s.physical_network in physnets and s.name in with_subnet
    ]


def admission(cloud: Cloud, port: Port, segments_per_host: str) -> Optional[str]:
    """Why Neutron refuses to bind *port* to its host (HTTP 409), or None when it allocates.

    Binding runs the routed-network IPAM even for explicit ``fixed_ips``:
    more than one reachable segment under ``one`` is ``HostConnectedToMultipleSegments``.
    """
    reachable = reachable_segments(cloud, port.network_id, port.host)
    if not reachable:
        return NO_SEGMENT
    if segments_per_host == "one" and len(reachable) > 1:
        return MULTIPLE_SEGMENTS
    segment = port_segment(cloud, port)
    if segment is not None and segment.name not in {s.name for s in reachable}:
        return INCOMPATIBLE
    return None


def routed_ports(cloud: Cloud) -> list[Port]:
    """Bound ports with addresses on segment-bound subnets (file order)."""
    return [p for p in cloud.ports if p.host and p.ips and port_segment(cloud, p) is not None]


def plan_multisegment(cloud: Cloud, design: MultisegmentDesign, run_id: str) -> SegmentPlan:
    """The realisation of *cloud* under *design* (``segments_per_host``, ``bridge_naming``)."""
    if design.agent != "linuxbridge":
        raise PlanError(
            "agent=ovs is not emulated (only Linux bridges are, not OVS's local VLANs on br-int): use "
            "agent=linuxbridge (era=train-2019), or control=ovn for Neutron 29 on real OVN"
        )
    out = SegmentPlan(Plan(naming.check_run_id(run_id)))
    admitted = []
    for port in routed_ports(cloud):
        reason = admission(cloud, port, design.segments_per_host)
        if reason:
            out.refused.append({"port": port.name, "host": port.host, "reason": reason})
        else:
            admitted.append(port)
    wiring = _Fabric(cloud, out)
    for port in admitted:
        _add_vm(cloud, out, wiring, port, design.bridge_naming)
    racks = sorted({out_vm.rack for out_vm in out.vms})
    for rack in racks:
        add_rack_router(cloud, out, wiring, rack)
    add_spine(cloud, out, racks)
    check_loops(out.bridges)
    if len(out.plan.namespaces) > MAX_NAMESPACES:
        raise PlanError(f"{len(out.plan.namespaces)} namespaces: more than {MAX_NAMESPACES}; emulate fewer racks/hosts")
    return out


class _Fabric:
    """Physnet fabric bridges and their tagged access ports, created on first use."""

    def __init__(self, cloud: Cloud, out: SegmentPlan) -> None:
        self.cloud, self.out = cloud, out
        self.fabrics: dict[str, str] = {}

    def access(self, ns: str, dev: str, segment: Segment) -> None:
        """A veth from *dev* in namespace *ns* to an access port with the segment's VLAN tag."""
        tag = _vlan(segment)
        physnet = segment.physical_network
        if physnet not in self.fabrics:
            self.fabrics[physnet] = naming.node_name(self.out.plan.run_id, "b", len(self.fabrics))
            self.out.plan.ovs_bridges.append(OvsBridge(self.fabrics[physnet], "fabric"))
        far = naming.node_name(self.out.plan.run_id, "u", len(self.out.plan.ovs_ports))
        self.out.plan.veths.append(Veth(ns, dev, ROOT, far))
        self.out.plan.ovs_ports.append(OvsPort(self.fabrics[physnet], far, tag))

    def host(self, name: str) -> str:
        """The host's namespace (created on first use) with ``lo`` up."""
        if name not in self.out.host_ns:
            key = f"host:{len(self.out.host_ns)}"
            self.out.plan.add_ns(key, "host", name).ip_batch.append("link set lo up")
            self.out.host_ns[name] = key
            self.out.bridges[name], self.out.uplinks[name] = {}, {}
        return self.out.host_ns[name]

    def bridge(self, host: str, segment: Segment, key_by: str) -> str:
        """The agent's bridge for *segment* on *host*, with the segment's uplink enslaved once."""
        ns = self.host(host)
        cfg = self.out.plan.config[ns]
        key = self.cloud.network[segment.network_id].id if key_by == "network" else segment.id
        name = naming.bridge_name(key)
        members = self.out.bridges[host]
        if name not in members:
            members[name] = []
            cfg.bridge(name)
        if segment.name not in self.out.uplinks[host]:
            phys_if = self.cloud.host[host].bridge_mappings[segment.physical_network]
            dev = subinterface_name(phys_if, _vlan(segment))
            self.access(ns, dev, segment)
            self.out.uplinks[host][segment.name] = dev
            members[name].append(segment.name)
            cfg.enslave(dev, name)
        return name


def _vlan(segment: Segment) -> int:
    """The segment's VLAN id; a flat or overlay segment is refused (each segment is a tagged access port here)."""
    if segment.network_type != "vlan":
        raise PlanError(f"segment {segment.name}: {segment.network_type} segments are not emulated (vlan are)")
    return int(segment.segmentation_id)


def _add_vm(cloud: Cloud, out: SegmentPlan, fabric: _Fabric, port: Port, key_by: str) -> None:
    segment = port_segment(cloud, port)
    fixed = next(f for f in port.fixed_ips if cloud.subnet[f.subnet_id].segment_id == segment.name)
    subnet = cloud.subnet[fixed.subnet_id]
    key = f"port:{len(out.vms)}"
    cfg = out.plan.add_ns(key, "port", port.name)
    mac = port.mac_address or derived_mac(port.id)
    tap = naming.tap_name(port.id)
    out.plan.veths.append(Veth(key, "eth0", fabric.host(port.host), tap))
    bridge = fabric.bridge(port.host, segment, key_by)
    out.plan.config[fabric.host(port.host)].enslave(tap, bridge)
    prefix = ipaddress.ip_network(str(subnet.cidr)).prefixlen
    cfg.sysctls += ["net.ipv4.icmp_ratelimit=0", "net.ipv4.icmp_echo_ignore_broadcasts=1"]
    cfg.ip_batch += [
        "link set lo up",
        f"link set eth0 address {mac}",
        f"addr add {fixed.ip_address}/{prefix} dev eth0",
        "link set eth0 up",
    ]
    gateway = str(subnet.gateway_ip) if subnet.gateway_ip is not None else None
    if gateway:
        default_route(cfg, subnet)
    rack = cloud.host[port.host].rack or port.host
    out.vms.append(Vm(port.name, port.host, rack, segment.name, str(fixed.ip_address), mac, key, gateway))


def rack_subnets(cloud: Cloud, rack: str) -> list[Subnet]:
    """The IPv4 subnets whose gateway the rack's router holds: those with a gateway on a segment of a physnet
    the rack's hosts map (a routed provider network's segment gateways live outside Neutron)."""
    physnets = {p for h in cloud.hosts if (h.rack or h.name) == rack for p in h.bridge_mappings}
    out = []
    for subnet in cloud.subnets:
        segment = cloud.segment[subnet.segment_id] if subnet.segment_id else None
        if segment is not None and segment.physical_network in physnets and subnet.gateway_ip is not None:
            if subnet.ip_version == 4:
                out.append(subnet)
    return out


#: The spine's transit network between rack routers (link-local: never a tenant's or a provider's subnet).
SPINE = ipaddress.ip_network("169.254.250.0/24")


def add_spine(cloud: Cloud, out: SegmentPlan, racks: list[str]) -> None:
    """The physical network between racks: one bridge joining every rack router's ``spine0`` (an address each
    on :data:`SPINE`), and on each router a static route to every other rack's subnets. Stated: the fabric's
    own routing (BGP, OSPF) is not modelled; static routes give the same reachability."""
    if len(racks) < 2:
        return
    clash = [s.name for s in cloud.subnets if s.ip_version == 4 and ipaddress.ip_network(str(s.cidr)).overlaps(SPINE)]
    if clash:
        raise PlanError(f"subnet(s) {', '.join(clash)} overlap the emulated spine's transit network {SPINE}")
    spine = naming.node_name(out.plan.run_id, "b", len(out.plan.ovs_bridges))
    out.plan.ovs_bridges.append(OvsBridge(spine, "spine"))
    transit = {rack: SPINE.network_address + i + 1 for i, rack in enumerate(racks)}
    for rack in racks:
        key = f"router:{rack}"
        far = naming.node_name(out.plan.run_id, "u", len(out.plan.ovs_ports))
        out.plan.veths.append(Veth(key, "spine0", ROOT, far))
        out.plan.ovs_ports.append(OvsPort(spine, far, None))
        cfg = out.plan.config[key]
        cfg.ip_batch += [f"addr add {transit[rack]}/{SPINE.prefixlen} dev spine0", "link set spine0 up"]
        for other in racks:
            if other != rack:
                cfg.ip_batch += [f"route add {s.cidr} via {transit[other]}" for s in rack_subnets(cloud, other)]


def add_rack_router(cloud: Cloud, out: SegmentPlan, fabric: _Fabric | Wiring, rack: str) -> None:
    """The rack's fabric router: a ``vlan<id>`` device with the gateway on every segment of its physnets, on an
    access port of the segment's VLAN (*fabric*: this module's, or ML2/OVN's :class:`~labtwin.emulation.wiring.
    Wiring`)."""
    key = f"router:{rack}"
    cfg = out.plan.add_ns(key, "router", rack)
    # arp_ignore=1: answer ARP only on the device holding the address, as a
    # router's VLAN interfaces do; otherwise a merged L2 domain would learn the
    # gateway of the other segment through the wrong device.
    cfg.sysctls += [
        "net.ipv4.ip_forward=1",
        "net.ipv4.icmp_ratelimit=0",
        "net.ipv4.conf.all.arp_ignore=1",
        "net.ipv4.conf.all.arp_announce=2",
        "net.ipv4.conf.all.send_redirects=0",
    ]
    cfg.ip_batch.append("link set lo up")
    for subnet in rack_subnets(cloud, rack):
        segment = cloud.segment[str(subnet.segment_id)]
        dev = f"vlan{_vlan(segment)}"  # a flat segment's gateway is refused like its ports (PlanError)
        if any(v.a == key and v.a_dev == dev for v in out.plan.veths):
            raise PlanError(f"rack {rack}: two segments with VLAN {segment.segmentation_id} on its physnets")
        fabric.access(key, dev, segment)
        mac = derived_mac(f"gateway/{subnet.id}")
        out.gateway_macs[segment.name] = mac
        cfg.ip_batch += [f"link set {dev} address {mac}", f"link set {dev} up"]
        gateway_address(cfg, subnet, dev)


def check_loops(bridges: dict[str, dict[str, list[str]]]) -> None:
    """Refuse a plan whose host bridges join the same segments twice: a real L2 loop (broadcast storm).

    Segments and bridges form a graph (a bridge joins the segments it holds);
    a cycle means two paths between two VLANs, which Neutron would build too.

    >>> check_loops({"a": {"brq1": ["s1", "s2"]}, "b": {"brq1": ["s1"]}})
    >>> check_loops({"a": {"brq1": ["s1", "s2"]}, "b": {"brq1": ["s1", "s2"]}})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    labtwin.emulation.plan.PlanError: bridges brq1 on b and others join segments s1, s2 in a loop: not emulated (...)
    """
    joins = (
        (host, bridge, segments)
        for host, devices in sorted(bridges.items())
        for bridge, segments in sorted(devices.items())
        if len(segments) > 1  # one segment alone closes nothing
    )
    closers = loop_closers(joins)
    if closers:
        host, bridge, segments = closers[0]
        raise PlanError(
            f"bridges {bridge} on {host} and others join segments {', '.join(segments)} "
            "in a loop: not emulated (a broadcast storm)"
        )
