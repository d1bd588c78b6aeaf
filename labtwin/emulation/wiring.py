"""A cloud's hosts, VMs and physical networks as a realisation plan: shared by every layout that puts each host
and each VM port in a namespace of its own (the reachability layouts, and ML2/OVN's for any scenario).

- :class:`Wiring`: bridges, physnet interfaces and fabric ports, made on first use;
- :func:`add_vm`: a VM port's namespace with its MAC, addresses and default routes;
- :func:`add_physical_router`: the physical network's router for subnets no Neutron router holds.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import Optional

from labtwin.description import Cloud, Port, Segment, Subnet
from labtwin.description.routing import physically_routed, subnet_segment
from labtwin.emulation import naming
from labtwin.emulation.ledger import ROOT
from labtwin.emulation.plan import (
    Endpoint,
    NsConfig,
    OvsBridge,
    OvsPort,
    Plan,
    PlanError,
    Veth,
    checked_mac,
    derived_mac,
)


class Wiring:
    """Bridges, physnet interfaces and fabric ports, created on first use."""

    def __init__(self, cloud: Cloud, result: Plan, hosts: dict[str, str]) -> None:
        self.cloud, self.result, self.hosts = cloud, result, hosts
        self.physnets = {p.name: i for i, p in enumerate(cloud.physnets)}
        self.done: set[tuple] = set()

    def network_bridge(self, host: str, network: str, segment: Optional[Segment]) -> str:
        """The bridge for *network* on *host*, with its segment's uplink enslaved."""
        cfg = self.result.config[self.hosts[host]]
        name = naming.bridge_name(self.cloud.network[network].id)
        if ("bridge", host, name) not in self.done:
            self.done.add(("bridge", host, name))
            cfg.bridge(name)
        if segment is not None and ("segment", host, segment.name) not in self.done:
            self.done.add(("segment", host, segment.name))
            cfg.enslave(self.uplink(host, segment), name)
        return name

    def uplink(self, host: str, segment: Segment) -> str:
        """The host's device onto *segment* of its physnet: a veth to a fabric access port.

        The kernel here has no 802.1Q module, so the host cannot make VLAN
        subinterfaces; instead its ``eth<N>.<vlan>`` is a veth whose far end is
        an OVS access port with ``tag=<vlan>`` on the physnet's fabric bridge,
        which carries every segment as a real VLAN. A flat segment gets an
        access tag no VLAN segment of that physnet uses.
        """
        p = self.physnets.setdefault(segment.physical_network, len(self.physnets))
        tag = self.tag(segment)
        dev = naming.vlan_device(naming.physnet_interface(p), tag) if segment.network_type == "vlan" else None
        return self.access(self.hosts[host], dev or naming.physnet_interface(p), segment)

    def access(self, ns: str, dev: str, segment: Segment) -> str:
        """A veth from *dev* in namespace *ns* to an access port of *segment* on its physnet's fabric."""
        self._veth_to_fabric(ns, dev, str(segment.physical_network), OvsPort("", "", self.tag(segment)))
        return dev

    def trunk(self, ns: str, dev: str, physnet: str) -> str:
        """A veth from *dev* in namespace *ns* to a trunk port of *physnet*'s fabric (every VLAN; untagged
        frames are the physnet's flat network): an OVN chassis's provider bridge tags VLANs itself."""
        self._veth_to_fabric(ns, dev, physnet, OvsPort("", "", self.flat_tag(physnet), native_untagged=True))
        return dev

    def _veth_to_fabric(self, ns: str, dev: str, physnet: str, port: OvsPort) -> None:
        """A veth from *dev* in *ns* to a port of *physnet*'s fabric bridge (made on first use), tagged as
        *port* says."""
        p = self.physnets.setdefault(physnet, len(self.physnets))
        fabric = naming.node_name(self.result.run_id, "b", p)
        if ("fabric", p) not in self.done:
            self.done.add(("fabric", p))
            self.result.ovs_bridges.append(OvsBridge(fabric, "fabric"))
        far = naming.node_name(self.result.run_id, "u", len(self.result.ovs_ports))
        self.result.veths.append(Veth(ns, dev, ROOT, far))
        self.result.ovs_ports.append(replace(port, bridge=fabric, dev=far))

    def tag(self, segment: Segment) -> int:
        if segment.network_type not in ("vlan", "flat"):
            raise PlanError(
                f"segment {segment.name}: {segment.network_type} segments are not emulated (vlan and flat are)"
            )
        if segment.network_type == "vlan":
            return int(segment.segmentation_id or 0)
        return self.flat_tag(str(segment.physical_network))

    def flat_tag(self, physnet: str) -> int:
        used = {
            s.segmentation_id for s in self.cloud.segments if s.physical_network == physnet and s.network_type == "vlan"
        }
        return max(set(range(1, 4095)) - used)


def add_vm(cloud: Cloud, result: Plan, port: Port, index: int, host_key: str) -> str:
    """Port *index*'s VM: a namespace with the port's MAC, addresses and default routes on ``eth0``, whose
    veth peer is the port's tap in namespace *host_key* (returned, for the caller to plug)."""
    key = f"port:{index}"
    cfg = result.add_ns(key, "port", port.name)
    mac = checked_mac(port.mac_address or derived_mac(port.id))
    tap = naming.tap_name(port.id)
    result.veths.append(Veth(key, "eth0", host_key, tap))
    ips = []
    for fixed in port.fixed_ips:
        ips.append(ipaddress.ip_address(str(fixed.ip_address)))
        address(cfg, ips[-1], cloud.subnet[fixed.subnet_id].cidr)
    _vm_sysctls(cfg)
    cfg.ip_batch[:0] = ["link set lo up", f"link set eth0 address {mac}"]
    cfg.ip_batch.append("link set eth0 up")
    for subnet in _routed_subnets(cloud, port):
        default_route(cfg, subnet)
    result.endpoints[port.name] = Endpoint(port.name, key, "eth0", mac, tuple(ips))
    return tap


def address(cfg: NsConfig, ip, cidr, dev: str = "eth0") -> None:
    prefix = ipaddress.ip_network(str(cidr)).prefixlen
    cfg.ip_batch.append(f"addr add {ip}/{prefix} dev {dev}" + (" nodad" if ip.version == 6 else ""))


def _vm_sysctls(cfg: NsConfig) -> None:
    # No ICMP rate limit: a burst of UDP probes must each get its port-unreachable.
    # No DAD: addresses usable at once (there is nobody to conflict with).
    # ARP/ND retransmit after 100 ms, not the kernel's 1 s: now and then the first
    # solicitation of a freshly wired VM goes unanswered, and a probe's latency should
    # measure the data path, not one lost neighbour request (simplification: a real VM
    # keeps the 1 s default but has long resolved its neighbours before anyone probes).
    cfg.sysctls += [
        "net.ipv4.icmp_ratelimit=0",
        "net.ipv6.icmp.ratelimit=0",
        "net.ipv6.conf.all.accept_dad=0",
        "net.ipv6.conf.default.accept_dad=0",
        "net.ipv6.conf.eth0.accept_dad=0",
        "net.ipv4.neigh.eth0.retrans_time_ms=100",
        "net.ipv6.neigh.eth0.retrans_time_ms=100",
    ]


def _routed_subnets(cloud: Cloud, port: Port) -> list[Subnet]:
    """The subnets whose gateway is the port's default route: per IP version the first of its subnets that a
    router serves (Neutron's, or the physical network's)."""
    routed = {s for r in cloud.routers for s in r.interfaces} | {s.name for s in physically_routed(cloud)}
    out: list[Subnet] = []
    for fixed in port.fixed_ips:
        subnet = cloud.subnet[fixed.subnet_id]
        if subnet.name in routed and subnet.gateway_ip is not None:
            if subnet.ip_version not in {s.ip_version for s in out}:
                out.append(subnet)
    return out


def default_route(cfg: NsConfig, subnet: Subnet, dev: str = "eth0") -> None:
    """``default via`` *subnet*'s gateway on *dev*. A gateway outside the subnet is first given an on-link route
    (``scope link``), as Neutron's L3 agent (``RouterInfo._add_route_to_gw``) and DHCP agent add one, and as a
    guest does from the classless static routes DHCP hands it."""
    if subnet.gateway_off_subnet:
        cfg.ip_batch.append(f"route add {subnet.gateway_ip} dev {dev} scope link")
    cfg.ip_batch.append(f"route add default via {subnet.gateway_ip} dev {dev}")


def gateway_address(cfg: NsConfig, subnet: Subnet, dev: str) -> None:
    """*subnet*'s gateway on *dev* of the router that holds it (the physical network's, or the world outside an
    external network): inside the subnet, an address with the subnet's prefix; outside it, the address alone
    and an on-link route to the subnet, as a router whose own network differs reaches those hosts."""
    gateway = ipaddress.ip_address(str(subnet.gateway_ip))
    if not subnet.gateway_off_subnet:
        address(cfg, gateway, subnet.cidr, dev)
        return
    address(cfg, gateway, ipaddress.ip_network(f"{gateway}/{gateway.max_prefixlen}"), dev)
    cfg.ip_batch.append(f"route add {subnet.cidr} dev {dev} scope link")


def add_physical_router(cloud: Cloud, result: Plan, wiring: Wiring) -> None:
    """The physical network's router: one namespace holding the gateway of every subnet no Neutron router
    holds on a provider segment (:func:`~labtwin.description.routing.physically_routed`), each on an access
    port of its segment's VLAN on the physnet's fabric, as a ToR router would be."""
    subnets = physically_routed(cloud)
    if not subnets:
        return
    key = "router:physical"
    cfg = result.add_ns(key, "router", "physical-network")
    cfg.sysctls += ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1", "net.ipv4.icmp_ratelimit=0"]
    cfg.ip_batch.append("link set lo up")
    devices: dict[str, str] = {}  # segment -> device: one per segment, every subnet of it on that device
    for subnet in subnets:
        segment = subnet_segment(cloud, subnet)
        assert segment is not None  # physically_routed keeps only subnets on a segment
        if segment.name not in devices:
            devices[segment.name] = wiring.access(key, f"gw{len(devices)}", segment)
            dev = devices[segment.name]
            cfg.ip_batch.append(f"link set {dev} address {derived_mac(f'physical-gateway/{segment.id}')}")
            cfg.ip_batch.append(f"link set {dev} up")
        gateway_address(cfg, subnet, devices[segment.name])
