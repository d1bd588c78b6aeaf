"""A path found by searching the cloud's devices, not drawn per design and class.

A first piece of the path model the conformance issue asks for: a graph of the devices the ML2/OVS agent
builds on each host, the physical network between hosts, and the physical network's router, searched for
the way one port's packet reaches another. It covers what no Neutron router routes (the networking guide's
provider networks, deploy-ovs-provider.rst): two ports on one segment meet on the physnet's wire; ports on
two segments meet through the router outside Neutron that holds both subnets' gateways
(:func:`~labtwin.description.routing.physically_routed`). :class:`RouterSearch` walks a packet through the
Neutron routers, each in its own mode (:mod:`.namespaces`: the L3 agent's namespaces, devices, rules, routes and
NAT for legacy and DVR routers; ML2/OVN's logical router stages, its gateway redirect and NAT), and
:func:`router_legs` gives a router's east-west and north-south classes from that walk.

The graph, per segment (a frame carries one segment's tag on the wire, and the agent keeps segments apart on
each host with its local VLANs):

- a bound port: ``tap`` -> (``qbr`` -> ``qvb`` -> ``qvo`` with the iptables hybrid firewall) -> ``br-int``;
- ``br-int`` -> the bridge the host maps the segment's physnet to (``br-tun`` for a tunnel) -> the wire;
- the wire -> the physical network's router, for a segment with a subnet whose gateway it holds.

Stated for :func:`search`: only the OVS agent's devices; the physical router is one hop (``physical-router``), one
routing decision; IPv4 and IPv6 alike. :class:`RouterSearch` names the L2 devices as :class:`~.plane.Plane` does
(the OVS agent's, the Linux bridge agent's ``brq``/``vxlan-``, OVN's br-int tunnels), one L2 domain per network
(its first segment, or the one the sending host maps).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import networkx as nx

from labtwin.description import Cloud, Port, Segment
from labtwin.description.routing import physically_routed, port_segment, subnet_segment

from .. import neutron_names as names
from ..knobs import DvrDesign
from ..spec import EXTERNAL, Endpoints, carrier, hop_host
from .namespaces import MAIN_PRIORITY, Addr, Iface, Namespace, Routers, Rule, fixed, matches, specificity, version_of
from .plane import FABRIC, Found, Leg, Plane
from .wire import SENT_TTL, Wire

#: The physical network's router, as a hop and as the end of a wire.
PHYSICAL_ROUTER = "physical-router"


@dataclass(frozen=True)
class FoundPath:
    """One port's packet to another, as the search found it."""

    src: str
    dst: str
    hops: tuple[str, ...]
    wires: tuple[Wire, ...]
    ttl: Optional[int]  # None: no way found
    reply: tuple[str, ...]
    note: str = ""

    @property
    def reachable(self) -> bool:
        return self.ttl is not None


def search(cloud: Cloud, src: Port, dst: Port, design: DvrDesign) -> FoundPath:
    """The way *src*'s packet reaches *dst*: on *src*'s segment if *dst* is on it, else through the physical
    network's router when it holds a gateway on both ports' segments; none found: no hops, ``ttl`` None."""
    first, last = port_segment(cloud, src), port_segment(cloud, dst)
    if first is None or last is None:
        return FoundPath(src.name, dst.name, (), (), None, (), "a port on no segment")
    if first == last:
        stretches = [_on_segment(cloud, design, first, _tap(src), _tap(dst))]
    elif _routed(cloud, first) and _routed(cloud, last):
        stretches = [
            _on_segment(cloud, design, first, _tap(src), PHYSICAL_ROUTER),
            _on_segment(cloud, design, last, PHYSICAL_ROUTER, _tap(dst)),
        ]
    else:
        return FoundPath(src.name, dst.name, (), (), None, (), "no router holds a gateway on both segments")
    if not all(stretches):
        return FoundPath(src.name, dst.name, (), (), None, (), "a host does not map the segment's physnet")
    walk = stretches[0] + [node for stretch in stretches[1:] for node in stretch[1:]]
    routers = len(stretches) - 1
    hops = tuple(_hop(node) for node in walk)
    wires = tuple(_wires(cloud, walk, src, dst))
    reply = hops[::-1]
    return FoundPath(src.name, dst.name, hops, wires, SENT_TTL - routers, reply, f"{routers} router(s) on the way")


def device_graph(cloud: Cloud, design: DvrDesign, segment: Segment) -> nx.Graph:
    """The devices frames of *segment* can cross (see the module doc). Nodes are hop strings, except a wire
    (``fabric:<physnet or tunnel>``) and the physical router, named apart."""
    graph = nx.Graph()
    wire = f"{FABRIC}:{segment.physical_network or 'tunnel'}"
    for port in cloud.ports:
        if port.host is not None and port_segment(cloud, port) == segment:
            chain = [_tap(port), *_hybrid(port, design), f"{port.host}:br-int"]
            nx.add_path(graph, chain)
    for host in cloud.hosts:
        bridge = _bridge(host.bridge_mappings, segment)
        if bridge is not None and f"{host.name}:br-int" in graph:
            nx.add_path(graph, [f"{host.name}:br-int", f"{host.name}:{bridge}", wire])
    if _routed(cloud, segment):
        graph.add_edge(wire, PHYSICAL_ROUTER)
    return graph


def _on_segment(cloud: Cloud, design: DvrDesign, segment: Segment, start: str, end: str) -> list[str]:
    graph = device_graph(cloud, design, segment)
    try:
        return list(nx.shortest_path(graph, start, end))
    except (nx.NodeNotFound, nx.NetworkXNoPath):
        return []


def _routed(cloud: Cloud, segment: Segment) -> bool:
    """Whether the physical network's router holds a gateway on *segment*."""
    return any(subnet_segment(cloud, subnet) == segment for subnet in physically_routed(cloud))


def _bridge(mappings: dict[str, str], segment: Segment) -> Optional[str]:
    if segment.physical_network is None:
        return "br-tun"
    return mappings.get(segment.physical_network)


def _tap(port: Port) -> str:
    return f"{port.host}:{names.tap_device(port.id)}"


def _hybrid(port: Port, design: DvrDesign) -> list[str]:
    if design.firewall_driver != "iptables_hybrid":
        return []
    return [f"{port.host}:{device}" for device in names.hybrid_devices(port.id)]


def _hop(node: str) -> str:
    return FABRIC if node.startswith(f"{FABRIC}:") else node


def _wires(cloud: Cloud, walk: list[str], src: Port, dst: Port) -> list[Wire]:
    """One wire per crossing: the hosts (or the physical router) either side, the segment that carries it (the
    segment of the stretch it is on: the sender's before the router, the receiver's after), and the MACs of the
    ports either side (the router's own: ``physical-router``)."""
    out = []
    after_router = False
    for at, node in enumerate(walk):
        if node == PHYSICAL_ROUTER:
            after_router = True
        if not node.startswith(f"{FABRIC}:"):
            continue
        segment = port_segment(cloud, dst if after_router else src)
        assert segment is not None  # search() found both
        before, beyond = walk[at - 1].split(":")[0], walk[at + 1].split(":")[0]
        src_mac = PHYSICAL_ROUTER if after_router else _mac(src)
        dst_mac = _mac(dst) if after_router or PHYSICAL_ROUTER not in walk else PHYSICAL_ROUTER
        network = segment.network_id
        out.append(Wire(before, beyond, network, segment.network_type, segment.segmentation_id, src_mac, dst_mac))
    return out


def _mac(port: Port) -> str:
    return port.mac_address or names.mac_of(port.id)


# -- Neutron routers: a packet walked through the namespaces each router's mode builds ----------------------------
#: More namespaces than any path crosses (VM, qrouter-, snat- or fip-, qrouter-, VM): a loop is a bug.
MAX_NAMESPACES = 8


@dataclass(frozen=True)
class Walk:
    """One packet through the cloud: the hops, the wires it crossed, how many routers forwarded it, the NAT
    applied (as :mod:`.designs` says it: ``snat fixed->fip``...), and where it arrived (None: lost, ``note``
    says where)."""

    hops: tuple[str, ...]
    wires: tuple[Wire, ...]
    routed: int
    nat: str
    arrived: Optional[tuple[Addr, Addr]]  # (src, dst) as the receiver sees them
    receiver: str  # the namespace that received it
    note: str = ""
    conntrack: tuple[tuple[str, str, Addr, Addr], ...] = ()  # (namespace, "src"|"dst", before, after)

    @property
    def ttl(self) -> Optional[int]:
        return SENT_TTL - self.routed if self.arrived is not None else None


class RouterSearch:
    """The devices of every legacy and DVR router of a cloud, each in its own mode (:mod:`.namespaces`), the L2
    domains between them, and the walk of a packet: at each namespace its rules and routing table pick the
    device out and the next hop, the L2 domain's graph (networkx) the way to the device holding that address
    (under DVR the ``qr-`` port on the sender's own host: br-tun drops frames to the gateway MAC that would
    leave it, br_dvr_process.py ``install_dvr_process``), and iptables (NAT, conntrack) what changes on the way.
    """

    def __init__(self, cloud: Cloud, planes: dict[str, Plane], design: DvrDesign):
        self.cloud, self.design = cloud, design
        self.routers = Routers(cloud, planes)
        self.namer = next(iter(planes.values()), None)
        self.externals = {p.ext.name for p in planes.values() if p.ext is not None}
        self.mode = "ovn" if any(p.mode == "ovn" for p in planes.values()) else "legacy"
        self._graphs: dict[str, nx.Graph] = {}

    # -- the walk ---------------------------------------------------------------------------------------------
    def walk(self, start: str, src: Addr, dst: Addr, conntrack: tuple = ()) -> Walk:
        """A packet from *src* to *dst* sent by the namespace *start* (a VM's tap hop, or ``external``);
        *conntrack*: the translations of the request this packet answers."""
        ns = self.routers.namespaces[start]
        came: Optional[Iface] = None
        hops: list[str] = []
        wires: list[Wire] = []
        nats: list[tuple[str, str, Addr, Addr, str]] = []
        routed = 0
        for _ in range(MAX_NAMESPACES):
            if came is not None:  # PREROUTING: a reply's SNAT undone by conntrack, then DNAT
                dst = _undo(conntrack, ns.key, "src", dst)
                if dst in ns.dnat:
                    nats.append((ns.key, "dst", dst, ns.dnat[dst], "dnat fip->fixed"))
                    dst = ns.dnat[dst]
                if ns.endpoint:
                    if dst in came.addresses:
                        return self._done(hops, wires, routed, nats, (src, dst), ns.key)
                    return self._lost(hops, wires, f"{dst} is not {ns.key}'s")
            decision = self._lookup(ns, src, dst, came)
            if decision is None:
                why = ns.drops.get(version_of(self.cloud, dst)) or self._no_route(ns.key, dst)
                return self._lost(hops[:-1] if ns.ovn else hops, wires, why, routed)  # OVN: dropped on br-int
            out, via = decision
            routed += not ns.endpoint and not (came is not None and came.continues)
            undone = _undo(conntrack, ns.key, "dst", src)  # POSTROUTING: a reply's DNAT undone, else SNAT
            if undone != src:
                src = undone
            elif (snat := self._snat(ns, out, src)) is not None:
                nats.append((ns.key, "src", src, snat.to, snat.says))
                src = snat.to
            target = self._holder(out.l2, via or dst, out.host)
            if target is None:
                return self._lost(hops, wires, f"nobody on {out.l2} holds {via or dst}", routed)
            path = self._l2_path(out, target)
            hops += ([came.hop] if came is not None else []) + path
            wires += self._crossings(path, out, target)
            ns, came = self.routers.iface_ns[target.id], target
        raise RuntimeError(f"a packet from {start} to {dst} crossed more than {MAX_NAMESPACES} namespaces")

    def reply(self, request: Walk) -> Walk:
        """The answer to *request*, from its receiver to the address it saw, through conntrack."""
        assert request.arrived is not None
        src, dst = request.arrived
        return self.walk(request.receiver, dst, src, request.conntrack)

    def _done(self, hops, wires, routed, nats, arrived, receiver) -> Walk:
        nat = next((says for *_, says in nats), "none")
        track = tuple((key, what, before, after) for key, what, before, after, _ in nats)
        return Walk(_dedup(hops), tuple(wires), routed, nat, arrived, receiver, conntrack=track)

    def _lost(self, hops, wires, note: str, routed: int = 0) -> Walk:
        return Walk(_dedup(hops), tuple(wires), routed, "none", None, "", note)

    def _lookup(
        self, ns: Namespace, src: Addr, dst: Addr, came: Optional[Iface]
    ) -> Optional[tuple[Iface, Optional[Addr]]]:
        """``ip rule`` in priority order (the main table at 32766), the longest match in the first table that
        has one."""
        for rule in sorted([Rule(MAIN_PRIORITY, ("all", 0), "main"), *ns.rules], key=lambda r: r.priority):
            if not matches(self.cloud, rule.src, src) or (rule.iif and (came is None or came.id != rule.iif)):
                continue
            if rule.family and version_of(self.cloud, dst) != rule.family:
                continue
            routes = [r for r in ns.tables.get(rule.table, []) if matches(self.cloud, r.dst, dst)]
            if routes:
                best = max(routes, key=lambda r: specificity(r.dst))
                return next(i for i in ns.ifaces if i.id == best.dev), best.via
        return None

    def _snat(self, ns: Namespace, out: Iface, src: Addr):
        if version_of(self.cloud, src) != 4 or src[0] != "fixed":
            return None
        return next((s for s in ns.snat if s.dev == out.id and matches(self.cloud, s.src, src)), None)

    def _no_route(self, where: str, dst: Addr) -> str:
        """Why a namespace drops *dst*: the outside world does not route tenant IPv4 (a router without SNAT
        sends its VMs' fixed addresses out, and the answers have nowhere to go)."""
        kind, owner, version = dst
        if where == EXTERNAL and kind == "fixed" and version == 4:
            port = self.cloud.port[owner]
            subnet = next((self.cloud.subnet[f.subnet_id] for f in port.fixed_ips), None)
            plane = self.routers.owner(subnet) if subnet is not None else None
            if plane is not None and plane.ext is not None and not plane.snat_enabled:
                return "enable_snat is false: fixed addresses leave unNATed, replies do not return"
        return f"no route to {dst} in {where}"

    # -- L2 ---------------------------------------------------------------------------------------------------
    def _holder(self, l2: str, addr: Addr, host: str) -> Optional[Iface]:
        """The device answering ARP for *addr* on *l2* as seen from *host*: a DVR qr- port only on *host*."""
        held = [i for i in self.routers.by_l2.get(l2, []) if addr in i.addresses]
        if any(i.distributed for i in held):
            held = [i for i in held if i.host == host]
        return held[0] if held else None

    def _l2_path(self, out: Iface, target: Iface) -> list[str]:
        path = nx.shortest_path(self._graph(out.l2), out.hop, target.hop)
        return [_hop(node) for node in path]

    def _graph(self, l2: str) -> nx.Graph:
        """An L2 domain: a veth pair, or a network: each device's attachment (a VM's tap through the hybrid
        firewall's devices, a namespace's port) to the host's integration bridge, the bridge the network leaves
        the host by, the network's wire, and the outside world on an external network."""
        if l2 in self._graphs:
            return self._graphs[l2]
        graph = nx.Graph()
        ifaces = self.routers.by_l2.get(l2, [])
        if l2.startswith("veth:"):
            nx.add_path(graph, [i.hop for i in ifaces])
        elif l2.startswith("router:"):  # OVN's redirect to the gateway chassis: Geneve on the router's datapath
            stage = next(i for i in ifaces if i.continues)
            graph.add_edge(f"{stage.host}:br-int", stage.hop)
            for iface in ifaces:
                if not iface.continues and iface.host != stage.host:
                    nx.add_path(graph, [iface.hop, f"{FABRIC}:{l2}", f"{stage.host}:br-int"])
        else:
            wire = f"{FABRIC}:{l2}"
            for iface in ifaces:
                nx.add_path(graph, self._attachment(iface, l2, wire))
            hosts = {i.host for i in ifaces if i.hop != EXTERNAL}
            for host in sorted(hosts):
                bridge = self._plane().integration(host, l2)
                nx.add_path(graph, [bridge, *self._uplink(l2, host), wire])
        self._graphs[l2] = graph
        return graph

    def _plane(self) -> Plane:
        """A plane to name the L2 devices by (any router's: the agent and firewall knobs are the cloud's)."""
        if self.namer is None:
            raise ValueError("the path search needs a legacy or DVR router")
        return self.namer

    def _attachment(self, iface: Iface, l2: str, wire: str) -> list[str]:
        if iface.hop == EXTERNAL:
            return [EXTERNAL, wire]
        plane = self._plane()
        if iface.hop.count(":") == 1:  # a VM's tap
            port = next(p for p in self.cloud.vm_ports if f"{p.host}:{names.tap_device(p.id)}" == iface.hop)
            return plane.vm_out(port)
        return [iface.hop, plane.integration(iface.host, l2)]

    def _uplink(self, l2: str, host: str) -> list[str]:
        """What the network leaves *host* by (Plane's names: br-tun / br-ex / the physnet's bridge; the Linux
        bridge agent's vxlan-<VNI> or VLAN subinterface; OVN's Geneve tunnels end on br-int itself)."""
        plane = self._plane()
        if plane.linuxbridge:
            return [f"{host}:{plane._uplink(l2, host)}"]
        if self.mode == "ovn" and l2 not in self.externals and not plane.on_physnet(l2):
            return []
        default = "br-ex" if l2 in self.externals else "br-tun"
        return [f"{host}:{plane._physnet_bridge(l2, host, default)}"]

    def _crossings(self, path: list[str], sender: Iface, target: Iface) -> list[Wire]:
        """A :class:`Wire` per crossing of *path*: the segment that carries the network leaving the sender's
        host, the sender's MAC (a DVR qr- port's rewritten to its host's DVR MAC: br_dvr_process.py
        ``install_dvr_process``, set_field eth_src) and the receiver's."""
        out = []
        for at, hop in enumerate(path):
            if hop != FABRIC:
                continue
            src, dst = hop_host(path[at - 1]), hop_host(path[at + 1])
            if sender.l2.startswith("router:"):  # OVN's redirect: a tunnel key of ovn-northd's, not Neutron's
                kind, segmentation_id = "geneve", None
            else:
                kind, segmentation_id = carrier(self.cloud, sender.l2, src, self.mode)
            src_mac = names.dvr_mac(sender.host) if sender.dvr_mac else sender.mac
            out.append(Wire(src, dst, sender.l2, kind, segmentation_id, src_mac, target.mac))
        return out


def _undo(conntrack: tuple, key: str, what: str, addr: Addr) -> Addr:
    """The address a request's translation in namespace *key* replaced by *addr* (conntrack, for its reply)."""
    return next((before for k, w, before, after in conntrack if k == key and w == what and after == addr), addr)


def _dedup(hops: list[str]) -> tuple[str, ...]:
    out: list[str] = []
    for hop in hops:
        if not out or out[-1] != hop:
            out.append(hop)
    return tuple(out)


# -- the traffic classes of one router, from the walk ---------------------------------------------------------------
_SWITCHED = "switched on the network's segment: no router, no NAT"
#: What each class's path means, per mode (the walk decides the path; this says it in words).
NOTES = {
    ("legacy", "ew"): "routed in the network node's qrouter",
    ("dvr", "ew"): (
        "routed in the source host's qrouter; br-tun rewrites the source MAC to the host's DVR MAC; "
        "the reply is routed on the other host (asymmetric)"
    ),
    ("legacy", "ew-same-network"): _SWITCHED,
    ("dvr", "ew-same-network"): _SWITCHED,
    ("legacy", "ns-ipv6"): "IPv6 is routed, not NATed",
    ("dvr", "ns-fip-out"): "ip rule from <fixed> lookup 16 -> rfp-",
    ("dvr", "ns-fip-in"): "fg- answers ARP for the FIP (proxy_arp)",
    ("dvr", "ns-snat"): "centralized SNAT in snat-; the reply goes from sg- straight to the VM",
    ("dvr", "ns-ipv6"): (
        "out the host's own fip- (create_rtr_2_fip_link's IPv6 default via fpr- in qrouter's main table, before the "
        "SNAT redirect); fip- has no IPv6 default: only the external subnet is reached; the reply comes by snat-"
    ),
    ("ovn", "ew"): "distributed in OpenFlow on the source chassis",
    ("ovn", "ew-same-network"): _SWITCHED,
    ("ovn", "ns-fip-out"): "FIPs are centralized by default",
    ("ovn", "ns-fip-in"): (
        "FIPs are centralized by default; the VM's answer is routed on its own chassis and redirected "
        "to the gateway chassis (seen in real OVN: Geneve on the router's datapath to cr-lrp)"
    ),
    ("ovn", "ns-snat"): "SNAT to the router's gateway address, on its active gateway chassis (cr-lrp)",
    ("ovn", "ns-ipv6"): "through the gateway chassis; no fast-exit",
    ("ovn+distributed_fip", "ns-fip-out"): "enable_distributed_floating_ip: NAT on the VM's chassis",
    ("ovn+distributed_fip", "ns-fip-in"): "",
}


def router_legs(found: RouterSearch, plane: Plane, ends: Endpoints) -> dict[str, Leg]:
    """The east-west and north-south classes of *plane*'s router (legacy, DVR or OVN) from the walk: each class's
    request and, through conntrack, its reply; reachable when both arrive."""
    legs: dict[str, Leg] = {}
    notes = {cls: note for (mode, cls), note in NOTES.items() if mode == plane.mode}
    if plane.mode == "ovn" and plane.design.ovn_distributed_fip:
        notes.update({cls: note for (mode, cls), note in NOTES.items() if mode == "ovn+distributed_fip"})
    for cls, pair in (
        ("ew-same-host", ends.ew_same_host),
        ("ew-cross-host", ends.ew_cross_host),
        ("ew-same-network", ends.ew_same_network),
    ):
        if pair:
            a, b = pair
            legs[cls] = _leg(
                found, found.walk(_tap(a), fixed(a), fixed(b)), notes.get("ew" if cls != "ew-same-network" else cls, "")
            )
    out = {"ns-fip-out": ends.fip, "ns-snat": ends.snat, "ns-ipv6": ends.ipv6}
    for cls, port in out.items():
        if port is not None:
            version = 6 if cls == "ns-ipv6" else 4
            go = found.walk(_tap(port), fixed(port, version), ("external", "", version))
            legs[cls] = _leg(found, go, notes.get(cls, ""))
    if ends.fip is not None:
        go = found.walk(EXTERNAL, ("external", "", 4), ("fip", ends.fip.name, 4))
        legs["ns-fip-in"] = _leg(found, go, notes.get("ns-fip-in", ""))
    return legs


def port_to_port(found: RouterSearch, mode: str, a: Port, b: Port, what: str = "ew") -> Leg:
    """*a* to *b*'s IPv4 address, and *b*'s answer (under DVR routed on *b*'s host)."""
    return _leg(found, found.walk(_tap(a), fixed(a), fixed(b)), NOTES.get((mode, what), ""))


def _leg(found: RouterSearch, go: Walk, note: str) -> Leg:
    back = found.reply(go) if go.arrived is not None else None
    reachable = back is not None and back.arrived is not None
    if not reachable:
        note = go.note or (back.note if back is not None else "")
    reply = back.hops if back is not None and reachable else ()
    return Leg(
        go.hops,
        go.nat,
        reachable,
        note,
        reply,
        found=Found(go.wires, go.ttl, back.wires if back is not None else (), back.ttl if back is not None else None),
    )
