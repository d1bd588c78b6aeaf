"""What packets between the admitted VMs should show: the model's probe predictions.

From :func:`.domains.expected_l2_domains` alone (no packets): two
segments are one broadcast domain when they are the same segment or a host
device (bridge or local VLAN) holds both, transitively — a segment's VLAN spans
its physnet, so a merge on one host reaches every host of it. For every ordered
pair of admitted ports in one rack:

- ``arp``: allowed iff one broadcast domain (the destination hears the request);
- ``broadcast``: allowed iff one broadcast domain;
- ``icmp``: allowed when the destination is in the source's subnet, or both
  subnets have a gateway (the rack's fabric router holds every segment's);
- ``icmp-via-gateway``: allowed iff the destination is in another subnet, so the
  kernel sends through the gateway: one hop (TTL 64 -> 63, the gateway's MAC).
  Merged domains do not change this: routing follows subnets, not bridges.

Under ML2/OVN (``agent = ovn``, :class:`~.agents.OvnController`) two rules differ:

- ``arp``: allowed for every pair: ovn-northd's ARP responder (``ls_in_arp_rsp``) answers a port's
  request for the address of any port of its logical switch that is up, on the asker's own chassis,
  whichever segment either is on;
- ``icmp`` in one subnet between two chassis: the request leaves by the localnet port the source's
  chassis sends unicast by (:meth:`~.agents.OvnController.bound`), and arrives only where the
  destination's chassis takes in that VLAN (:meth:`~.agents.OvnController.patched`); the reply the same
  way back. Routed probes leave through the gateway, an unknown MAC, so they flood out of every patched
  localnet port like a broadcast: they get there when each end's chassis patches its own segment's
  localnet port (which Neutron's IPAM makes so: a port's segment is on its host's physnets).

Between racks (the first VM of each rack, :func:`~..spec.inter_rack_pairs`), segment gateways
live on each rack's router outside Neutron, and the racks' routers talk over the spine:
``icmp`` and ``icmp-via-gateway`` are allowed when both subnets have a gateway, two hops
(TTL 64 -> 62, the source rack's gateway MAC). No ARP or broadcast crosses racks (other
physnets), so those are not probed.
"""

from __future__ import annotations

from labtwin.description import Cloud

from ..spec import INTER_RACK_HOPS, MultisegmentDesign, inter_rack_pairs
from .domains import admitted_ports, built_agents, expected_l2_domains

PROTOCOLS = ("arp", "icmp", "icmp-via-gateway", "broadcast")


def broadcast_domains(domains: dict[str, list[dict]]) -> dict[str, str]:
    """Segment -> a representative of its merged broadcast domain (union of host devices)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for devices in domains.values():
        for device in devices:
            first = find(device["segments"][0])
            for seg in device["segments"][1:]:
                parent[find(seg)] = find(first)
    return {seg: find(seg) for seg in list(parent)}


def predicted_probes(cloud: Cloud, design: MultisegmentDesign) -> list[dict]:
    """One dict per (src, dst, protocol): verdict and the hops the model expects."""
    domains = broadcast_domains(expected_l2_domains(cloud, design))
    ports = admitted_ports(cloud, design)
    agents = built_agents(cloud, design) if design.agent == "ovn" else {}
    responder = arp_responder(design)
    rows = []
    for (a, host_a, seg_a), (b, host_b, seg_b) in _same_rack_pairs(cloud, ports):
        sub_a, sub_b = _subnet(cloud, a, seg_a), _subnet(cloud, b, seg_b)
        same_subnet = _ip(cloud, b, seg_b) in sub_a.cidr
        one_domain = domains.get(seg_a, seg_a) == domains.get(seg_b, seg_b)
        routed = sub_a.gateway_ip is not None and sub_b.gateway_ip is not None
        if same_subnet:
            reach = _unicast(agents, a, host_a, b, host_b)
        else:
            reach = routed and _gateway_heard(agents, a, host_a, seg_a) and _gateway_heard(agents, b, host_b, seg_b)
        hops = (0 if same_subnet else 1) if reach else None
        verdicts = {
            "arp": one_domain or responder,
            "broadcast": one_domain,
            "icmp": reach,
            "icmp-via-gateway": reach and not same_subnet,
        }
        for protocol in PROTOCOLS:
            rows.append(
                {
                    "src": a,
                    "dst": b,
                    "protocol": protocol,
                    "verdict": "allowed" if verdicts[protocol] else "blocked",
                    "hops": hops if protocol.startswith("icmp") else None,
                    "segments": [seg_a, seg_b],
                }
            )
    return rows + _inter_rack(cloud, ports)


def _same_rack_pairs(cloud: Cloud, ports: list[tuple[str, str, str]]):
    """Ordered pairs of distinct ports in one rack, in the order ``permutations(ports, 2)`` gives them (only a
    rack's own ports are paired, so the work grows with the racks' sizes squared, not the cloud's)."""
    by_rack: dict[str, list[tuple[str, str, str]]] = {}
    for port in ports:
        by_rack.setdefault(_rack(cloud, port[1]), []).append(port)
    for a in ports:
        yield from ((a, b) for b in by_rack[_rack(cloud, a[1])] if b is not a)


def arp_responder(design: MultisegmentDesign) -> bool:
    """Whether something other than the destination answers an ARP request for it: under OVN, ovn-northd's ARP
    responder, for every port of the logical switch that is up (see the module docstring)."""
    return design.agent == "ovn"


def _gateway_heard(agents: dict, port: str, host: str, segment: str) -> bool:
    """Whether the port's gateway (the fabric router on its segment's VLAN) and the port hear each other: always
    for an L2 agent's bridge; under OVN when the port's chassis patches its segment's localnet port."""
    return not agents or segment in agents[host].patched(agents[host].ports_network(port))


def _unicast(agents: dict, a: str, host_a: str, b: str, host_b: str) -> bool:
    """Whether a frame between two ports of one subnet gets there and back: always on one L2 agent's bridge;
    under OVN (*agents*: host -> :class:`~.agents.OvnController`), on one chassis, or when each chassis takes
    in the VLAN the other sends unicast by."""
    if not agents or host_a == host_b:
        return True
    network = agents[host_a].ports_network(a)
    there, back = agents[host_a].bound(network), agents[host_b].bound(network)
    return there in agents[host_b].patched(network) and back in agents[host_a].patched(network)


def _inter_rack(cloud: Cloud, ports: list[tuple[str, str, str]]) -> list[dict]:
    where = {name: (host, seg) for name, host, seg in ports}
    rows = []
    for a, b in inter_rack_pairs([(name, _rack(cloud, host)) for name, host, _ in ports]):
        (_, seg_a), (_, seg_b) = where[a], where[b]
        routed = _subnet(cloud, a, seg_a).gateway_ip is not None and _subnet(cloud, b, seg_b).gateway_ip is not None
        for protocol in ("icmp", "icmp-via-gateway"):
            rows.append(
                {
                    "src": a,
                    "dst": b,
                    "protocol": protocol,
                    "verdict": "allowed" if routed else "blocked",
                    "hops": INTER_RACK_HOPS if routed else None,
                    "segments": [seg_a, seg_b],
                }
            )
    return rows


def probe_metrics(rows: list[dict]) -> dict:
    """The counts the twin compares with tolerances: leaks across segments, routed probes."""
    cross = [r for r in rows if r["segments"][0] != r["segments"][1] and r["verdict"] == "allowed"]
    return {
        "probe_count": len(rows),
        "arp_leaks": sum(r["protocol"] == "arp" for r in cross),
        "broadcast_leaks": sum(r["protocol"] == "broadcast" for r in cross),
        "probes_via_gateway": sum(r["protocol"] == "icmp-via-gateway" and r["verdict"] == "allowed" for r in rows),
    }


def _rack(cloud: Cloud, host: str) -> str:
    return cloud.host[host].rack or host


def _fixed(cloud: Cloud, port: str, segment: str):
    return next(f for f in cloud.port[port].fixed_ips if cloud.subnet[f.subnet_id].segment_id == segment)


def _subnet(cloud: Cloud, port: str, segment: str):
    return cloud.subnet[_fixed(cloud, port, segment).subnet_id]


def _ip(cloud: Cloud, port: str, segment: str):
    return _fixed(cloud, port, segment).ip_address
