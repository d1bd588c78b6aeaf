"""Where the pieces of a DVR (or legacy) router live in the emulation, as plain data.

Names come from :mod:`labtwin.scenarios.dvr.neutron_names` (the model derives
the same ones). The ``qg-``, ``sg-`` and ``fg-`` ports have the addresses the
loader gave them (the cloud's router gateways and ``network_ports``, allocated
when Neutron's server makes them), and so do the DHCP ports (the loader's DHCP
agent on the network node; an EUI-64 address from the port's MAC on a SLAAC
subnet). Ports the file's cloud would not have (a knob making a legacy router
DVR: no SNAT or ``fg-`` port in the loader's cloud) take the next free address
of the pool, after everything the cloud already holds.

Simplifications, each said where it matters:

- the studied router is the first with an external gateway and interfaces
  (several routers to study: only ``control=neutron`` builds them, one layout per router,
  :func:`~labtwin.scenarios.dvr.emulation.neutron_l3.router_layout`; see
  :func:`~labtwin.scenarios.dvr.emulation.emulable.check_emulable`);
  the network node (``dvr_snat`` agent, DHCP agent) is the first host with
  role ``network``; a DVR router's ``qrouter-``, ``fip-`` and ``fg-`` are on
  every host whose agent hosts it, as Neutron's agents build them (the
  network node and DHCP hosts too, though no probe routes through them);
- each network gets one VLAN tag used on every bridge and on the fabric
  (its segmentation id; flat networks a tag of their own): the VXLAN overlay
  is a VLAN trunk between hosts, and Neutron's per-host local VLAN
  translation is not emulated.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Optional

from labtwin.description import Cloud, Network, Port, Router, Subnet
from labtwin.description.neutron_ports import DHCP_OWNER, SNAT_OWNER, dvr_router_hosts
from labtwin.description.resolve import eui64

from .. import neutron_names as names
from ..knobs import DvrDesign
from ..neutron_names import mac_of
from ..spec import dhcp_host, physnet_bridge, router_bridges, router_mode

#: Neutron's ``FIP_RT_TBL`` and ``FIP_PR_START``: the floating-IP route table and first rule priority.
FIP_RT_TBL = 16
FIP_PR_START = 32768
#: The first /31 of ``DVR_FIP_LL_CIDR`` (169.254.64.0/18): rfp- gets the even address, fpr- the odd one.
RFP_LL, FPR_LL = "169.254.64.0", "169.254.64.1"
#: The link-local pair on rfp-/fpr- for the IPv6 default route create_rtr_2_fip_link puts in qrouter's main table
#: (Neutron's is fpr-'s EUI-64 address: a stand-in, stated in routing._rfp).
RFP_LL6, FPR_LL6 = "fe80::40:0", "fe80::40:1"
_MASK_30 = 0x3FFFFFFF


@dataclass(frozen=True)
class RouterPort:
    """A router- or agent-owned port realised as a device: its id, name, MAC and addresses."""

    kind: str  # qr | sg | qg | fg | dhcp
    port_id: str
    dev: str
    mac: str
    network: str  # network name
    addrs: tuple[ipaddress.IPv4Interface | ipaddress.IPv6Interface, ...]
    subnet: str = ""  # the router subnet (qr, sg)


@dataclass
class Layout:
    """Everything the plan needs to know about the router under study, per design."""

    cloud: Cloud
    design: DvrDesign
    router: Router
    network_node: str
    ext: Network
    vms: list[Port]
    qr: dict[str, RouterPort] = field(default_factory=dict)  # by subnet name
    sg: dict[str, RouterPort] = field(default_factory=dict)  # by subnet name (dvr)
    qg: Optional[RouterPort] = None
    fg: dict[str, RouterPort] = field(default_factory=dict)  # by host (dvr)
    dhcp: dict[str, RouterPort] = field(default_factory=dict)  # by network name
    #: The host of each network's DHCP port: where Neutron's scheduler put its DHCP agent (spec.dhcp_host)
    dhcp_host: dict[str, str] = field(default_factory=dict)
    fips: dict[str, ipaddress.IPv4Address] = field(default_factory=dict)  # by port name
    external: tuple = ()  # the outside world's addresses (the external subnets' gateways)
    #: The external subnets with a gateway, whose gateways the routers' default routes go to (a gateway outside
    #: its subnet reached on-link: ``Subnet.gateway_off_subnet``).
    external_subnets: tuple = ()

    @property
    def mode(self) -> str:
        """The router's mode: its own ``distributed`` field, or the ``router`` knob that overrides it."""
        return router_mode(self.router, self.design)

    @property
    def dvr(self) -> bool:
        return self.mode == "dvr"

    def bridge_label(self, host: str, role: str) -> str:
        """The hop one of *host*'s three emulated bridges stands for, named as the model names it: ``br-tun``
        carries the router's networks, so it is the bridge they leave the host by (``br-tun`` for tunnels,
        the physnet's mapped bridge for VLAN or flat networks, :meth:`overlay_bridges`); ``br-ex`` is the
        external network's mapped bridge."""
        if role == "br-tun":
            return self.overlay_bridges(host)[0]
        if role == "br-ex":
            return physnet_bridge(self.cloud, self.ext.name, host, "br-ex")
        return role

    def overlay_bridges(self, host: str) -> list[str]:
        """The bridges the router's networks leave *host* by (the emulation has one: ``check_emulable`` refuses
        more)."""
        return router_bridges(self.cloud, self.router, host) or ["br-tun"]

    def subnets(self, version: Optional[int] = None) -> list[Subnet]:
        out = [self.cloud.subnet[s] for s in self.router.interfaces]
        return [s for s in out if version is None or s.ip_version == version]

    def qrouter_hosts(self) -> list[str]:
        """Hosts with a qrouter- namespace, in file order: the network node (legacy); under DVR every host whose L3
        agent hosts the router (:func:`~labtwin.description.neutron_ports.dvr_router_hosts`, Neutron 29
        ``l3_dvrscheduler_db``: the VMs' hosts, the DHCP ports' hosts and the dvr_snat node, as the model's
        ``Routers._dvr_hosts``)."""
        if not self.dvr:
            return [self.network_node]
        return [h.name for h in dvr_router_hosts(self.cloud, self.router, self.cloud.ports, self.cloud.network_ports)]

    def fip_hosts(self) -> list[str]:
        """Hosts with a fip- namespace and an fg- port: under DVR every qrouter host, floating IP or not (Neutron 29
        and Train ``DvrLocalRouter.process_external`` -> ``create_dvr_external_gateway_on_agent``,
        ``connect_rtr_2_fip``: the studied router always has a gateway)."""
        return self.qrouter_hosts() if self.dvr else []

    def vm_subnet(self, port: Port, version: int = 4) -> Optional[Subnet]:
        for fixed in port.fixed_ips:
            subnet = self.cloud.subnet[fixed.subnet_id]
            if subnet.ip_version == version and subnet.name in self.router.interfaces:
                return subnet
        return None


def layout(cloud: Cloud, design: DvrDesign) -> Layout:
    router = next((r for r in cloud.routers if r.external_gateway_info is not None and r.interfaces), None)
    if router is None:
        raise ValueError("the dvr emulation needs a router with an external gateway and interfaces")
    nn = next((h.name for h in cloud.hosts if h.role == "network"), None)
    if nn is None:
        raise ValueError("the dvr emulation needs a host with role: network")
    ext = cloud.network[router.external_gateway_info.network_id]
    vms = [p for p in cloud.vm_ports if p.host]
    lay = Layout(cloud, design, router, nn, ext, vms)
    lay.fips = {
        f.port_id: f.floating_ip_address
        for f in cloud.floatingips
        if f.floating_network_id == ext.name and f.floating_ip_address is not None
    }
    ipam = _Ipam(cloud, lay.fips.values())
    _dhcp_ports(lay, ipam)
    for subnet in lay.subnets():
        pid = names.router_port_id(router.name, "qr", subnet.name)
        lay.qr[subnet.name] = RouterPort(
            "qr",
            pid,
            names.qr_device(pid),
            mac_of(pid),
            subnet.network_id,
            (_iface(subnet.gateway_ip, subnet),),
            subnet.name,
        )
    made = _neutron_made_addresses(cloud, router.name)
    if lay.dvr:
        for subnet in lay.subnets():
            pid = names.router_port_id(router.name, "sg", subnet.name)
            ip = made.get(("snat", subnet.name))
            address = _iface(ip, subnet) if ip is not None else ipam.next(subnet)
            lay.sg[subnet.name] = RouterPort(
                "sg", pid, names.sg_device(pid), mac_of(pid), subnet.network_id, (address,), subnet.name
            )
    ext_subnets = [s for s in cloud.subnets if s.network_id == ext.name]
    pid = names.router_port_id(router.name, "qg")
    gateway_ips = router.external_gateway_info.external_fixed_ips  # the gateway port's, from the cloud's IPAM
    lay.qg = RouterPort(
        "qg",
        pid,
        names.qg_device(pid),
        mac_of(pid),
        ext.name,
        tuple(_iface(f.ip_address, cloud.subnet[f.subnet_id]) for f in gateway_ips),
    )
    for host in lay.fip_hosts():
        pid = names.fip_gateway_port_id(host, ext.name)
        addresses = tuple(
            _iface(made[(host, s.name)], s) if (host, s.name) in made else ipam.next(s) for s in ext_subnets
        )
        lay.fg[host] = RouterPort("fg", pid, names.fg_device(pid), mac_of(pid), ext.name, addresses)
    lay.external_subnets = tuple(s for s in ext_subnets if s.gateway_ip is not None)
    lay.external = tuple(_gateway_iface(s) for s in lay.external_subnets)
    return lay


def _neutron_made_addresses(cloud: Cloud, router: str) -> dict[tuple[str, str], Any]:
    """The addresses the loader gave the ports Neutron's server makes itself (:class:`NetworkPort`): *router*'s
    SNAT ports by ``("snat", subnet)``, each host's agent gateway port by ``(host, subnet)``. A port the file's
    cloud would not have (a design knob making a legacy router DVR) gets the next free address instead
    (:class:`_Ipam`)."""
    made: dict[tuple[str, str], Any] = {}
    for port in cloud.network_ports:
        if port.device_owner == DHCP_OWNER or (port.device_owner == SNAT_OWNER and port.router != router):
            continue
        owner = "snat" if port.device_owner == SNAT_OWNER else str(port.host)
        made.update({(owner, f.subnet_id): f.ip_address for f in port.fixed_ips if f.ip_address is not None})
    return made


def _dhcp_ports(lay: Layout, ipam: "_Ipam") -> None:
    """One DHCP port per network whose VMs have a DHCP-enabled subnet, on the host Neutron scheduled its DHCP agent
    to (:func:`~labtwin.scenarios.dvr.spec.dhcp_host`), with the addresses the loader's DHCP port took
    (:func:`~labtwin.description.neutron_ports.dhcp_ports`)."""
    given = {
        (p.network_id, f.subnet_id): f.ip_address
        for p in lay.cloud.network_ports
        if p.device_owner == DHCP_OWNER
        for f in p.fixed_ips
    }
    for network in lay.cloud.networks:
        subnets = [s for s in lay.cloud.subnets if s.network_id == network.name and s.enable_dhcp]
        vms = [v for v in lay.vms if v.network_id == network.name]
        host = dhcp_host(lay.cloud, vms[0]) if subnets and vms else None
        if host is None:
            continue
        lay.dhcp_host[network.name] = host
        pid = names.dhcp_port_id(host, network.name)
        mac = mac_of(pid)
        addresses = tuple(_dhcp_address(s, given.get((network.name, s.name)), mac, ipam) for s in subnets)
        lay.dhcp[network.name] = RouterPort("dhcp", pid, names.tap_device(pid), mac, network.name, addresses)


def _dhcp_address(subnet: Subnet, given, mac: str, ipam: "_Ipam"):
    """The loader's address; an EUI-64 one on a SLAAC subnet; else (no port made: a pool the named ports
    filled) the next free one, which fails loudly when there is none."""
    if given is not None:
        return _iface(given, subnet)
    if subnet.auto_address:
        return _iface(eui64(subnet.cidr, mac), subnet)
    return ipam.next(subnet)


class _Ipam:
    """Next free address per subnet, after everything the topology already uses."""

    def __init__(self, cloud: Cloud, fips) -> None:
        self.cloud = cloud
        self.used = {ipaddress.ip_address(str(f.ip_address)) for p in cloud.ports for f in p.fixed_ips}
        self.used |= {ipaddress.ip_address(str(ip)) for ip in fips}
        self.used |= {
            ipaddress.ip_address(str(f.ip_address)) for p in cloud.network_ports for f in p.fixed_ips if f.ip_address
        }
        self.used |= {ipaddress.ip_address(str(s.gateway_ip)) for s in cloud.subnets if s.gateway_ip is not None}
        for router in cloud.routers:
            gateway = router.external_gateway_info
            self.used |= {
                ipaddress.ip_address(str(f.ip_address)) for f in (gateway.external_fixed_ips if gateway else ())
            }
        for p in cloud.ports:
            self.used |= {
                pair.ip_address.network_address
                for pair in p.allowed_address_pairs
                if pair.ip_address.num_addresses == 1
            }

    def next(self, subnet: Subnet):
        for pool in subnet.allocation_pools:
            ip = ipaddress.ip_address(str(pool.start))
            while ip <= ipaddress.ip_address(str(pool.end)):
                if ip not in self.used:
                    self.used.add(ip)
                    return _iface(ip, subnet)
                ip += 1
        raise ValueError(f"subnet {subnet.name} has no free address for a router port")


def fixed_interfaces(cloud: Cloud, port: Port) -> list:
    """The port's fixed IPs with their subnets' prefix lengths (``10.10.0.2/24``)."""
    return [_iface(f.ip_address, cloud.subnet[f.subnet_id]) for f in port.fixed_ips]


def _gateway_iface(subnet: Subnet):
    """The gateway of an external subnet as the outside holds it: a host address when it lies outside the
    subnet."""
    if subnet.gateway_off_subnet:
        return ipaddress.ip_interface(str(subnet.gateway_ip))
    return _iface(subnet.gateway_ip, subnet)


def _iface(ip, subnet: Subnet):
    return ipaddress.ip_interface(f"{ip}/{ipaddress.ip_network(str(subnet.cidr)).prefixlen}")


def snat_idx(gateway: RouterPort) -> int:
    """Neutron's ``_get_snat_idx``: the IPv4 value of the gateway, or a crc32 fold above 32768 for IPv6.

    >>> snat_idx(RouterPort("qr", "x", "qr-x", "fa:16:3e:00:00:01", "n", (ipaddress.ip_interface("10.10.0.1/24"),)))
    168427521
    """
    import binascii

    addr = gateway.addrs[0]
    if addr.version == 4:
        return int(addr.ip)
    idx = binascii.crc32(str(addr).encode()) & 0xFFFFFFFF
    idx = (idx >> 30) ^ (idx & _MASK_30)
    return idx + _MASK_30 if idx < 32768 else idx


def vlan_of(cloud: Cloud, network: str) -> int:
    """The network's tag on every bridge and on the one emulated fabric (:func:`fabric_tags`)."""
    return fabric_tags(cloud)[network]


def fabric_tags(cloud: Cloud) -> dict[str, int]:
    """One tag per network, never two networks on one: a VLAN network keeps its VLAN id; a tunnel (vxlan,
    geneve, gre) or flat network is translated to a free tag, as Neutron's OVS agent translates a VNI to a
    local VLAN: its own id when no VLAN network uses it, else the first free tag from 4000 down.
    Simplification, stated: the emulation carries tunnel networks on the tagged fabric instead of
    VXLAN/Geneve between hosts, so a provider VLAN 101 and a VNI 101 must (and do) get different tags.

    >>> from labtwin.description.schema import Cloud
    >>> cloud = Cloud.model_validate({"name": "c", "physnets": [{"name": "p"}],
    ...     "networks": [{"name": "prov"}, {"name": "tenant"}],
    ...     "segments": [{"name": "v", "network_id": "prov", "physical_network": "p", "segmentation_id": 101},
    ...                  {"name": "x", "network_id": "tenant", "network_type": "vxlan", "segmentation_id": 101}]})
    >>> fabric_tags(cloud)
    {'prov': 101, 'tenant': 4000}
    """
    first = {n.name: next((s for s in cloud.segments if s.network_id == n.name), None) for n in cloud.networks}
    tags = {name: int(seg.segmentation_id) for name, seg in first.items() if seg and seg.network_type == "vlan"}
    taken = set(tags.values())
    free = (tag for tag in range(4000, 1, -1) if tag not in taken)
    for name, seg in first.items():
        if name in tags:
            continue
        own = int(seg.segmentation_id) if seg and seg.segmentation_id else None
        tag = own if own is not None and own < 4095 and own not in taken else next(t for t in free if t not in taken)
        tags[name] = tag
        taken.add(tag)
    return tags


def hop(host: str, ns: str, dev: str) -> str:
    """A hop label as the model writes it: ``host:namespace:device``."""
    return f"{host}:{ns}:{dev}"


def qrouter_ns(lay: Layout) -> str:
    return names.qrouter_ns(lay.router.id)


def snat_ns(lay: Layout) -> str:
    return names.snat_ns(lay.router.id)


def fip_ns(lay: Layout) -> str:
    return names.fip_ns(lay.ext.id)


def qdhcp_ns(lay: Layout, network: str) -> str:
    return names.qdhcp_ns(lay.cloud.network[network].id)


def rfp(lay: Layout) -> str:
    return names.rfp_device(lay.router.id)


def fpr(lay: Layout) -> str:
    return names.fpr_device(lay.router.id)


def tap(port: Port) -> str:
    return names.tap_device(port.id)
