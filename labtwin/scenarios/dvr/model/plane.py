"""The data-plane pieces a DVR path is made of, named as Neutron (and OVN) name them.

A :class:`Plane` knows the cloud, one router and the mode it runs in, the network
node and the router's external network (if it has a gateway), and turns "the qr- port of subnet X on host H" into a
hop string (see :mod:`labtwin.scenarios.dvr.model.paths` for the hop grammar).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from labtwin.description import Cloud, Network, Port, Router, Subnet
from labtwin.description.names import vlan_subinterface_name

from .. import neutron_names as names
from ..knobs import DvrDesign
from ..spec import EXTERNAL, gateway, on_physnet, physnet_bridge, routed_subnet

FABRIC = "fabric"


@dataclass(frozen=True)
class Found:
    """What the path search (:mod:`.search`) computed beyond the hops: the wires (``Wire``), the TTL at arrival
    and the same for the reply."""

    wires: tuple
    ttl: Optional[int]
    reply_wires: tuple
    reply_ttl: Optional[int]


@dataclass(frozen=True)
class Leg:
    """A design's answer for one class: hops, NAT, reachability, why, and the reply's hops.

    ``reply`` None: the reply retraces *hops* backwards (one router, or the same routers both ways).
    """

    hops: tuple[str, ...]
    nat: str = "none"
    reachable: bool = True
    note: str = ""
    reply: Optional[tuple[str, ...]] = None
    #: The path as routed, when a filter cut *hops* short before an addressed device: the frames on each wire
    #: *hops* still crosses are read from it.
    routed: Optional[tuple[str, ...]] = None
    #: The search's own wires and TTLs (None: read off the hops by :mod:`.wire`).
    found: Optional[Found] = None

    @property
    def reply_hops(self) -> tuple[str, ...]:
        if not self.reachable:
            return ()
        return self.reply if self.reply is not None else self.hops[::-1]


@dataclass(frozen=True)
class Plane:
    """The cloud's data plane pieces a path is made of: names and where they live."""

    cloud: Cloud
    router: Router
    mode: str  # legacy | dvr | ovn (see labtwin.scenarios.dvr.spec.router_mode)
    nn: str
    ext: Optional[Network]  # None: the router has no gateway (east-west only)
    design: DvrDesign

    # -- root-namespace devices and bridges ---------------------------------
    def host(self, port: Port) -> str:
        """The host *port* is bound to (every port a path starts or ends at is bound)."""
        if port.host is None:
            raise ValueError(f"port {port.name!r} is not bound to a host")
        return port.host

    def tap(self, port: Port) -> str:
        return f"{port.host}:{names.tap_device(port.id)}"

    @property
    def linuxbridge(self) -> bool:
        """The Linux bridge agent wires the hosts (``agent`` knob; OVN has its own, so never under OVN)."""
        return self.mode != "ovn" and self.design.agent == "linuxbridge"

    def integration(self, host: str, network: str) -> str:
        """Where a port of *network* plugs on *host*: br-int, or the network's ``brq`` bridge (Linux bridge)."""
        if self.linuxbridge:
            return f"{host}:{names.brq_bridge(self.cloud.network[network].id)}"
        return f"{host}:br-int"

    def vm_out(self, port: Port) -> list[str]:
        """The VM's tap to its integration bridge, through qbr-qvb-qvo with the iptables_hybrid firewall."""
        host = self.host(port)
        hybrid = self.mode != "ovn" and not self.linuxbridge and self.design.firewall_driver == "iptables_hybrid"
        between = [f"{host}:{device}" for device in names.hybrid_devices(port.id)] if hybrid else []
        return [self.tap(port), *between, self.integration(host, port.network_id)]

    def vm_in(self, port: Port) -> list[str]:
        return self.vm_out(port)[::-1]

    def _uplink(self, network: str, host: str) -> str:
        """The Linux bridge agent's device between a network's brq and the wire: ``vxlan-<VNI>`` for a tunnel,
        ``<interface>.<VLAN>`` for a VLAN, the interface itself for flat (the topology's ``bridge_mappings``
        value read as the physical interface, as in the multisegment scenario)."""
        segment = next((s for s in self.cloud.segments if s.network_id == network), None)
        if segment is None or segment.physical_network is None:
            vni = segment.segmentation_id if segment is not None else None
            return names.vxlan_device(vni) if vni is not None else "vxlan"
        interface = self.cloud.host[host].bridge_mappings.get(segment.physical_network, segment.physical_network)
        if segment.network_type == "vlan" and segment.segmentation_id is not None:
            return vlan_subinterface_name(interface, int(segment.segmentation_id))
        return interface

    def _physnet_bridge(self, network: str, host: str, default: str) -> str:
        return physnet_bridge(self.cloud, network, host, default)

    def l2(self, network: str, a: str, b: str) -> list[str]:
        """br-int of host *a* to br-int of host *b* on *network* (tunnel or physnet bridge)."""
        if a == b:
            return [self.integration(a, network)]
        if self.mode == "ovn" and not self.on_physnet(network):  # Geneve tunnels end on br-int itself
            return [f"{a}:br-int", FABRIC, f"{b}:br-int"]
        if self.linuxbridge:
            ua, ub = self._uplink(network, a), self._uplink(network, b)
            return [self.integration(a, network), f"{a}:{ua}", FABRIC, f"{b}:{ub}", self.integration(b, network)]
        ta, tb = self._physnet_bridge(network, a, "br-tun"), self._physnet_bridge(network, b, "br-tun")
        return [f"{a}:br-int", f"{a}:{ta}", FABRIC, f"{b}:{tb}", f"{b}:br-int"]

    def on_physnet(self, network: str) -> bool:
        return on_physnet(self.cloud, network)

    def resides_on_gateway(self, subnet: Subnet) -> bool:
        """ML2/OVN: the router's port on *subnet* is routed on the gateway chassis. Neutron 29 sets
        ``reside-on-redirect-chassis`` on a VLAN or flat network's router port, true unless floating IPs are
        distributed and every network on the router is VLAN or flat (then the gateway port gets
        ``redirect-type=bridged`` instead): ``OVNClient._gen_router_port_options`` and
        ``_get_reside_redir_for_gateway_port``. Routers the model does not draw (a VLAN network beside a
        tunnelled one; ``redirect-type=bridged``) are refused first (``spec.design_conflicts``)."""
        if self.mode != "ovn" or not self.on_physnet(subnet.network_id):
            return False
        if not self.design.ovn_distributed_fip:
            return True
        networks = {self.cloud.subnet[s].network_id for s in self.router.interfaces}
        return any(not self.on_physnet(network) for network in networks)

    def external(self) -> Network:
        if self.ext is None:
            raise ValueError(f"router {self.router.name!r} has no external_gateway_info")
        return self.ext

    def egress(self, host: str) -> list[str]:
        if self.linuxbridge:
            ext = self.external().name
            return [self.integration(host, ext), f"{host}:{self._uplink(ext, host)}", FABRIC, EXTERNAL]
        bridge = self._physnet_bridge(self.external().name, host, "br-ex")
        return [f"{host}:br-int", f"{host}:{bridge}", FABRIC, EXTERNAL]

    def ingress(self, host: str) -> list[str]:
        return self.egress(host)[::-1]

    # -- namespaced devices ---------------------------------------------------
    def qr(self, host: str, subnet: Subnet) -> str:
        port_id = names.router_port_id(self.router.name, "qr", subnet.name)
        return f"{host}:{names.qrouter_ns(self.router.id)}:{names.qr_device(port_id)}"

    def qg(self, host: str, namespace: str) -> str:
        return f"{host}:{namespace}:{names.qg_device(names.router_port_id(self.router.name, 'qg'))}"

    def sg(self, host: str, subnet: Subnet) -> str:
        port_id = names.router_port_id(self.router.name, "sg", subnet.name)
        return f"{host}:{names.snat_ns(self.router.id)}:{names.sg_device(port_id)}"

    def fip_leg(self, host: str) -> list[str]:
        """qrouter-:rfp- -> fip-:fpr- -> fip-:fg-, the DVR floating-IP veth and gateway."""
        ext = self.external()
        fip = names.fip_ns(ext.id)
        fg = names.fg_device(names.fip_gateway_port_id(host, ext.name))
        return [
            f"{host}:{names.qrouter_ns(self.router.id)}:{names.rfp_device(self.router.id)}",
            f"{host}:{fip}:{names.fpr_device(self.router.id)}",
            f"{host}:{fip}:{fg}",
        ]

    def qdhcp(self, host: str, network: Network) -> str:
        return f"{host}:{names.qdhcp_ns(network.id)}:{names.tap_device(names.dhcp_port_id(host, network.name))}"

    # -- OVN logical router ports ---------------------------------------------
    def lrp(self, host: str, subnet: Subnet) -> str:
        return f"{host}:br-int:{names.ovn_lrp(names.router_port_id(self.router.name, 'qr', subnet.name))}"

    def gw_lrp(self, host: str) -> str:
        return f"{host}:br-int:{names.ovn_lrp(names.router_port_id(self.router.name, 'qg'))}"

    def cr_lrp(self, host: str) -> str:
        return f"{host}:br-int:{names.ovn_cr_lrp(names.router_port_id(self.router.name, 'qg'))}"

    def subnet(self, port: Port, version: int = 4) -> Subnet:
        subnet = routed_subnet(self.cloud, self.router, port, version)
        if subnet is None:
            raise ValueError(f"port {port.name!r} has no IPv{version} subnet on router {self.router.name!r}")
        return subnet

    @property
    def snat_enabled(self) -> bool:
        return gateway(self.router).enable_snat


def hops(*parts) -> tuple[str, ...]:
    """Join hop lists, dropping a hop that repeats the one before it."""
    out: list[str] = []
    for part in parts:
        for hop in [part] if isinstance(part, str) else part:
            if not out or out[-1] != hop:
                out.append(hop)
    return tuple(out)
