"""A path found by searching the cloud's devices, not drawn per design and class.

A first piece of the path model the conformance issue asks for: a graph of the devices the ML2/OVS agent
builds on each host, the physical network between hosts, and the physical network's router, searched for
the way one port's packet reaches another. It covers what no Neutron router routes (the networking guide's
provider networks, deploy-ovs-provider.rst): two ports on one segment meet on the physnet's wire; ports on
two segments meet through the router outside Neutron that holds both subnets' gateways
(:func:`~labtwin.description.routing.physically_routed`). The Neutron routers' paths are still drawn by
:mod:`.designs`; moving them onto this search is the rest of that work.

The graph, per segment (a frame carries one segment's tag on the wire, and the agent keeps segments apart on
each host with its local VLANs):

- a bound port: ``tap`` -> (``qbr`` -> ``qvb`` -> ``qvo`` with the iptables hybrid firewall) -> ``br-int``;
- ``br-int`` -> the bridge the host maps the segment's physnet to (``br-tun`` for a tunnel) -> the wire;
- the wire -> the physical network's router, for a segment with a subnet whose gateway it holds.

Stated: only the OVS agent's devices (the Linux bridge agent's are drawn by :mod:`.plane`); the physical
router is one hop (``physical-router``), one routing decision; IPv4 and IPv6 alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import networkx as nx

from labtwin.description import Cloud, Port, Segment
from labtwin.description.routing import physically_routed, port_segment, subnet_segment

from .. import neutron_names as names
from ..knobs import DvrDesign
from .plane import FABRIC
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
