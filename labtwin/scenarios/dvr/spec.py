"""The DVR scenario's traffic classes and routers: which ports stand for each class, the probe of each, each
router's mode (the design knobs are :mod:`.knobs`, the traffic matrix over them :mod:`.matrix`).

Shared by the model and the emulation (both must probe the same ports, and weigh
the same traffic matrix).

Neither backend invents endpoints: both take the first fitting ports of
the topology, in file order, so a reader can check the pick against the file:

- ``ew-same-host``: two VMs on one host, on *different* router subnets (traffic
  on one subnet never meets the router, in any design);
- ``ew-cross-host``: two VMs on different hosts and different router subnets;
- ``ew-same-network``: two VMs on one router subnet, on different hosts if any
  (switched on the network, no router: the networking guide's east-west
  scenario 1; outside the routed traffic matrix);
- ``ns-fip-out`` / ``ns-fip-in``: a VM with a floating IP on the router's
  external network;
- ``ns-snat``: a VM with an IPv4 address on a router subnet and no floating IP;
- ``ns-ipv6``: a VM with an IPv6 address on a router subnet (one without a FIP first);
- ``dhcp``: a VM behind the router on a subnet with ``enable_dhcp``;
- ``vip-after-failover``: an allowed_address_pairs /32 that two or more VMs
  list, reached from a VM on another router subnet (on a third host if there is one).

Each router with an interface is studied (:func:`studied_routers`), in its own mode
(:func:`router_mode`), with its own endpoints.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from itertools import permutations
from typing import Optional

from labtwin.description.neutron_ports import DHCP_OWNER
from labtwin.description.routing import port_segment
from labtwin.description.schema import Cloud, ExternalGateway, Host, Network, Port, Router, Subnet

from .knobs import FROM_TOPOLOGY, DvrDesign

CLASSES = (
    "ew-same-host",
    "ew-cross-host",
    "ew-same-network",
    "ns-fip-out",
    "ns-fip-in",
    "ns-snat",
    "ns-ipv6",
    "dhcp",
    "vip-after-failover",
)
#: The outside world, as a probe's src/dst and as a hop.
EXTERNAL = "external"


@dataclass(frozen=True)
class Vip:
    """A VRRP VIP shared through allowed_address_pairs, and who reaches it.

    DVR's server writes one permanent ARP entry per /32 pair with the owning
    port's MAC; when several ports list the VIP the last writer wins
    (neutron/db/l3_dvr_db.py). We take ports in file order as the write order,
    and assume keepalived's master before the failover is that last writer (so
    the VIP works until the failover); the new master is the first other holder.
    """

    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    subnet: Subnet
    holders: tuple[Port, ...]
    client: Port

    @property
    def old_master(self) -> Port:
        return self.holders[-1]

    @property
    def new_master(self) -> Port:
        return next(p for p in self.holders if p.name != self.old_master.name)


@dataclass(frozen=True)
class Endpoints:
    """The representative ports per class; ``None`` where the cloud has no fitting port."""

    ew_same_host: Optional[tuple[Port, Port]]
    ew_cross_host: Optional[tuple[Port, Port]]
    ew_same_network: Optional[tuple[Port, Port]]
    fip: Optional[Port]
    snat: Optional[Port]
    ipv6: Optional[Port]
    dhcp: Optional[Port]
    vip: Optional[Vip]


def studied_routers(cloud: Cloud) -> list[Router]:
    """Every router with at least one interface, in file order (one without a gateway routes east-west only)."""
    return [router for router in cloud.routers if router.interfaces]


def router_mode(router: Router, design: DvrDesign) -> str:
    """The mode *router* runs in: the ``router`` knob when it names one (it overrides every router), else the
    router's own ``distributed`` field.

    Neutron 29: a router created without ``distributed`` gets the server's ``router_distributed`` option,
    default False (neutron/conf/db/l3_dvr_db.py), so the loader's default False is a legacy router. ``ha`` does
    not change a path: keepalived makes one network node's instance active, and the model draws it there.
    """
    if design.router != FROM_TOPOLOGY:
        return design.router
    return "dvr" if router.distributed else "legacy"


def design_conflicts(cloud: Cloud, design: DvrDesign) -> list[str]:
    """What the design asks that Neutron cannot build on this cloud: DVR and the OVS agent's DHCP extension need
    the OVS agent (the Linux bridge agent has neither); an OVN gateway chassis is a network node."""
    out = []
    gateway = design.ovn_gateway
    if gateway and not (gateway in cloud.host and cloud.host[gateway].role == "network"):
        out.append(f"ovn_gateway={gateway} to be a network node (gateway chassis are the hosts with role: network)")
    out += _ovn_unmodelled(cloud, design)
    if design.agent != "linuxbridge":
        return out
    out += [
        f"router {r.name} in legacy mode, not dvr (agent=linuxbridge builds legacy routers only: DVR needs the "
        "OVS agent; --set router=legacy)"
        for r in studied_routers(cloud)
        if router_mode(r, design) == "dvr"
    ]
    if design.distributed_dhcp:
        out.append("the OVS agent for distributed_dhcp (its dhcp extension; agent=linuxbridge has none)")
    return out


def _ovn_unmodelled(cloud: Cloud, design: DvrDesign) -> list[str]:
    """OVN routers the model does not draw: one with VLAN or flat networks beside tunnelled ones (routing into a
    router port that resides on the gateway chassis from a tunnelled network), and, with distributed floating
    IPs, one with only VLAN or flat networks (its gateway port is ``redirect-type=bridged``)."""
    out = []
    for router in studied_routers(cloud):
        if router_mode(router, design) != "ovn":
            continue
        kinds = {on_physnet(cloud, cloud.subnet[s].network_id) for s in router.interfaces}
        if kinds == {True, False}:
            out.append(
                f"router {router.name}'s networks all tunnelled or all VLAN/flat under OVN (mixed: not modelled)"
            )
        elif kinds == {True} and design.ovn_distributed_fip and router.external_gateway_info is not None:
            out.append(
                f"ovn_distributed_fip off for router {router.name}, whose networks are all VLAN or flat (its gateway "
                "port would be redirect-type=bridged: not modelled)"
            )
    return out


def on_physnet(cloud: Cloud, network: str) -> bool:
    """Whether *network* is a VLAN or flat network (its frames leave by the physnet's bridge; under OVN by the
    logical switch's ``localnet`` port)."""
    segment = next((s for s in cloud.segments if s.network_id == network), None)
    return segment is not None and segment.network_type in ("vlan", "flat")


def gateway_host(cloud: Cloud, design: DvrDesign, mode: str) -> str:
    """Where a router in *mode* has its gateway: the network node, or under OVN the active gateway chassis
    (``ovn_gateway``, else the network node)."""
    if mode == "ovn" and design.ovn_gateway:
        return design.ovn_gateway
    return network_node(cloud).name


def modes_said(cloud: Cloud, design: DvrDesign) -> dict[str, str]:
    """Each studied router's mode and where it came from, for the run summary."""
    source = "topology" if design.router == FROM_TOPOLOGY else f"knob router={design.router} (overrides the topology)"
    return {router.name: f"{router_mode(router, design)} ({source})" for router in studied_routers(cloud)}


def the_router(cloud: Cloud) -> Router:
    """The router the emulation builds: the first one with an external gateway and interfaces."""
    for router in cloud.routers:
        if router.external_gateway_info is not None and router.interfaces:
            return router
    raise ValueError("the dvr scenario needs a router with an external gateway and at least one interface")


def network_node(cloud: Cloud) -> Host:
    """The host running the dvr_snat L3 agent and the DHCP agent (OVN: the gateway chassis).

    Simplification: with several network nodes, Neutron's schedulers pick one
    per router / network; we take the first in the file.
    """
    for host in cloud.hosts:
        if host.role == "network":
            return host
    raise ValueError("the dvr scenario needs a host with role: network")


def dhcp_host(cloud: Cloud, port: Port) -> Optional[str]:
    """The host whose DHCP agent answers *port*'s DHCP request under ML2/OVS: the host of the first DHCP port
    Neutron made on the port's network (on a routed network, on the port's segment), as Neutron 29's
    WeightScheduler placed it (:func:`labtwin.description.neutron_ports.dhcp_ports`). None: no agent serves it
    (ML2/OVN, or the DHCP port found no free address). Simplification: with ``dhcp_agents_per_network`` above 1,
    every agent answers the broadcast and the client takes the first offer; the path drawn is to the first agent
    in file order."""
    segment = port_segment(cloud, port)
    for made in cloud.network_ports:
        if made.device_owner != DHCP_OWNER or made.network_id != port.network_id:
            continue
        if made.segment is None or segment is None or made.segment == segment.name:
            return made.host
    return None


def gateway(router: Router) -> ExternalGateway:
    """The studied router's gateway (the router is chosen for having one, see :func:`the_router`)."""
    if router.external_gateway_info is None:
        raise ValueError(f"router {router.name!r} has no external_gateway_info")
    return router.external_gateway_info


def hop_host(hop: str) -> str:
    """The host a hop is on (``host:...``), or ``external`` for the outside world."""
    return EXTERNAL if hop == EXTERNAL else hop.split(":", 1)[0]


def carrier(cloud: Cloud, network: str, host: str, mode: str) -> tuple[str, Optional[int]]:
    """(network_type, segmentation_id) of what carries *network* between hosts, leaving *host*: the segment on a
    physnet the host maps, else the first (a tunnel); flat segments have no id. Under OVN every tunnel between
    chassis is Geneve, keyed by a tunnel key ovn-northd allocates (not Neutron's segmentation id): None.

    A network the topology gives no segment is a project network: ML2 allocates it a segment of its
    ``project_network_types`` (vxlan here, as the oracle configures Neutron) with the next free VNI, which the
    topology does not know: ``("vxlan", None)``.
    """
    segments = [s for s in cloud.segments if s.network_id == network]
    if not segments:
        return ("geneve" if mode == "ovn" else "vxlan"), None
    mapped = cloud.host[host].bridge_mappings if host in cloud.host else {}
    chosen = next((s for s in segments if s.physical_network in mapped), segments[0])
    if mode == "ovn" and chosen.physical_network is None:
        return "geneve", None
    return chosen.network_type, chosen.segmentation_id


def external_network(cloud: Cloud, router: Router) -> Optional[Network]:
    """The network *router*'s gateway is on (None: the router has no gateway)."""
    if router.external_gateway_info is None:
        return None
    return cloud.network[router.external_gateway_info.network_id]


def routed_subnet(cloud: Cloud, router: Router, port: Port, version: int = 4) -> Optional[Subnet]:
    """The first subnet of *port* of IP *version* that *router* has an interface on."""
    for fixed in port.fixed_ips:
        subnet = cloud.subnet[fixed.subnet_id]
        if subnet.ip_version == version and subnet.name in router.interfaces:
            return subnet
    return None


def has_fip(cloud: Cloud, router: Router, port: Port) -> bool:
    if router.external_gateway_info is None:
        return False
    ext = router.external_gateway_info.network_id
    return any(f.port_id == port.name and f.floating_network_id == ext for f in cloud.floatingips)


def routed_pairs(cloud: Cloud, router: Router) -> list[tuple[Port, Port]]:
    """Ordered VM pairs whose IPv4 traffic the router routes (different router subnets)."""
    pairs = []
    for a, b in permutations(cloud.vm_ports, 2):
        sa, sb = routed_subnet(cloud, router, a), routed_subnet(cloud, router, b)
        if sa is not None and sb is not None and sa.name != sb.name:
            pairs.append((a, b))
    return pairs


def same_host_ratio(cloud: Cloud, router: Router) -> float:
    """Share of routed VM pairs that sit on one host: splits east-west traffic (0.5 if none)."""
    pairs = routed_pairs(cloud, router)
    if not pairs:
        return 0.5
    return sum(a.host == b.host for a, b in pairs) / len(pairs)


def pick_endpoints(cloud: Cloud, router: Router) -> Endpoints:
    vms = list(cloud.vm_ports)
    pairs = routed_pairs(cloud, router)
    outside = router.external_gateway_info is not None  # north-south classes need a gateway
    v4 = [p for p in vms if outside and routed_subnet(cloud, router, p) is not None]
    v6 = [p for p in vms if outside and routed_subnet(cloud, router, p, 6) is not None]
    return Endpoints(
        ew_same_host=next(((a, b) for a, b in pairs if a.host == b.host), None),
        ew_cross_host=next(((a, b) for a, b in pairs if a.host != b.host), None),
        ew_same_network=_same_network_pair(cloud, router, vms),
        fip=next((p for p in v4 if has_fip(cloud, router, p)), None),
        snat=next((p for p in v4 if not has_fip(cloud, router, p)), None),
        ipv6=next(iter(sorted(v6, key=lambda p: has_fip(cloud, router, p))), None),
        dhcp=next(
            (p for p in vms if _behind(router, p) and any(cloud.subnet[f.subnet_id].enable_dhcp for f in p.fixed_ips)),
            None,
        ),
        vip=pick_vip(cloud, router, vms),
    )


def _same_network_pair(cloud: Cloud, router: Router, vms: list[Port]) -> Optional[tuple[Port, Port]]:
    """The first two VMs on one IPv4 router subnet, on different hosts when any are."""
    pairs = [
        (a, b)
        for a, b in permutations(vms, 2)
        if (sa := routed_subnet(cloud, router, a)) is not None
        and (sb := routed_subnet(cloud, router, b)) is not None
        and sa.name == sb.name
    ]
    return next(((a, b) for a, b in pairs if a.host != b.host), pairs[0] if pairs else None)


def _behind(router: Router, port: Port) -> bool:
    """True when *port* has an address on a subnet *router* has an interface on."""
    return any(f.subnet_id in router.interfaces for f in port.fixed_ips)


def pick_vip(cloud: Cloud, router: Router, vms: list[Port]) -> Optional[Vip]:
    """The first /32 (or /128) address pair held by two VMs, with a routed client."""
    holders: dict = {}
    for port in vms:
        for pair in port.allowed_address_pairs:
            net = ipaddress.ip_network(str(pair.ip_address), strict=False)
            if net.num_addresses == 1:
                holders.setdefault(net.network_address, []).append(port)
    for ip, ports in holders.items():
        if len(ports) < 2:
            continue
        subnet = next((s for s in cloud.subnets if s.network_id == ports[0].network_id and ip in s.cidr), None)
        if subnet is None or subnet.name not in router.interfaces:
            continue
        client = _vip_client(cloud, router, vms, subnet, ports)
        if client is not None:
            return Vip(ip, subnet, tuple(ports), client)
    return None


def _vip_client(cloud, router, vms, subnet, holders) -> Optional[Port]:
    busy = {p.host for p in holders}
    routed = [
        p
        for p in vms
        if p not in holders
        and (s := routed_subnet(cloud, router, p, subnet.ip_version)) is not None
        and s.name != subnet.name
    ]
    return next((p for p in routed if p.host not in busy), routed[0] if routed else None)


def probe_of(cls: str, ends: Endpoints) -> tuple[str, str, str, Optional[int]]:
    """The (src, dst, protocol, port) a probe of *cls* uses; the same under every design."""

    def name(port):
        return port.name if port is not None else ""

    pair = {
        "ew-same-host": ends.ew_same_host,
        "ew-cross-host": ends.ew_cross_host,
        "ew-same-network": ends.ew_same_network,
    }.get(cls)
    if cls in ("ew-same-host", "ew-cross-host", "ew-same-network"):
        return (name(pair[0]), name(pair[1]), "icmp", None) if pair else ("", "", "icmp", None)
    table = {
        "ns-fip-out": (name(ends.fip), EXTERNAL, "icmp", None),
        "ns-fip-in": (EXTERNAL, name(ends.fip), "tcp", 22),
        "ns-snat": (name(ends.snat), EXTERNAL, "icmp", None),
        "ns-ipv6": (name(ends.ipv6), EXTERNAL, "icmpv6", None),
        "dhcp": (name(ends.dhcp), "dhcp", "udp", 67),
        "vip-after-failover": (
            name(ends.vip.client) if ends.vip else "",
            str(ends.vip.ip) if ends.vip else "",
            "icmp",
            None,
        ),
    }
    return table[cls]


def physnet_bridge(cloud: Cloud, network: str, host: str, default: str) -> str:
    """The OVS bridge *network* leaves *host* by: the bridge the host maps the network's physnet to (a VLAN or
    flat network), else *default* (``br-tun`` for a tunnel, ``br-ex`` for an external network)."""
    segment = next((s for s in cloud.segments if s.network_id == network), None)
    if segment is None or segment.network_type in ("vxlan", "geneve"):
        return default
    return cloud.host[host].bridge_mappings.get(segment.physical_network or "", default)


def router_bridges(cloud: Cloud, router: Optional[Router], host: str) -> list[str]:
    """The bridges *router*'s networks leave *host* by (:func:`physnet_bridge`; ``br-tun`` for tunnels)."""
    networks = sorted({cloud.subnet[s].network_id for s in router.interfaces}) if router is not None else []
    return sorted({physnet_bridge(cloud, network, host, "br-tun") for network in networks})
