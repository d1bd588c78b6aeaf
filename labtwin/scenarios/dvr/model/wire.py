"""What a packet walk shows beyond the hops: the wire between hosts, the TTL at arrival.

The networking guide's packet walks (deploy-ovs-selfservice, deploy-ovs-ha-dvr)
name, for each hop between hosts, what carries the packet ("the OVS tunnel
bridge wraps the packet using VNI 101", "swaps the internal VLAN tag with
actual VLAN tag 101") and which router rewrote it. This module reads that off
a path's hops, with an index of the devices the router's mode implies, for the paths the path search
(:mod:`.search`, which computes its own wires: a legacy or DVR router's east-west and north-south classes) does
not give:

- a :class:`Wire` per crossing of the fabric: the hosts it joins, the network
  and segment that carry it (the tenant network's VNI or VLAN, or the external
  network's flat/VLAN segment), and the source and destination MAC on the wire.
  The sender is the last device before the fabric that owns an address (a VM's
  tap, a router port), the receiver the first after it. A rule from
  Neutron's code changes a MAC: under OVN with
  ``enable_distributed_floating_ip``, a floating IP's NAT row carries the MAC of
  the floating IP's own port as ``external_mac`` (ovn_client.py
  ``_create_or_update_floatingip``), so the outside world talks to that MAC. A DHCP request is broadcast.
- the TTL at arrival: sent with 64 (scapy's and Linux's default), one less per
  router that routes it: each stretch of hops in one qrouter-, snat- or fip-
  namespace on one host, and an OVN logical router once (a gateway redirect
  continues the same logical router pipeline on the gateway chassis).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

from labtwin.description import Port
from labtwin.description.neutron_ports import DHCP_OWNER

from .. import neutron_names as names
from ..spec import EXTERNAL, carrier, hop_host
from .plane import FABRIC, Plane

#: The TTL a probe is sent with (Linux ``net.ipv4.ip_default_ttl``, scapy's default).
SENT_TTL = 64
BROADCAST = "ff:ff:ff:ff:ff:ff"
#: Namespaces whose devices route: each stretch in one of them on one host is one routing decision.
ROUTING_NAMESPACES = ("qrouter-", "snat-", "fip-")
OVN_ROUTER_STAGES = ("lrp-", "cr-lrp-")


@dataclass(frozen=True)
class Wire:
    """One crossing of the fabric: between which hosts, on which segment, with which MACs."""

    src_host: str  # "external": the outside world
    dst_host: str
    network: str
    network_type: str
    segmentation_id: Optional[int]
    src_mac: str  # "external": the outside world's router
    dst_mac: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Device:
    """A device that owns an address: its network and MAC."""

    network: str
    mac: str


def device_index(plane: Plane) -> dict[str, Device]:
    """Every addressed device a path of *plane*'s router can meet, by its name (the hop's last part)."""
    cloud, router = plane.cloud, plane.router
    index = {names.tap_device(p.id): Device(p.network_id, _mac(p)) for p in cloud.ports}
    for subnet in (cloud.subnet[s] for s in router.interfaces):
        qr = names.router_port_id(router.name, "qr", subnet.name)
        sg = names.router_port_id(router.name, "sg", subnet.name)
        index[names.qr_device(qr)] = Device(subnet.network_id, names.mac_of(qr))
        index[names.ovn_lrp(qr)] = Device(subnet.network_id, names.mac_of(qr))
        index[names.sg_device(sg)] = Device(subnet.network_id, names.mac_of(sg))
    for made in cloud.network_ports:  # a DHCP port on the host its agent was scheduled to
        if made.device_owner == DHCP_OWNER and made.host is not None:
            dhcp = names.dhcp_port_id(made.host, made.network_id)
            index[names.tap_device(dhcp)] = Device(made.network_id, names.mac_of(dhcp))
    if plane.ext is not None:
        qg = names.router_port_id(router.name, "qg")
        for device in (names.qg_device(qg), names.ovn_lrp(qg), names.ovn_cr_lrp(qg)):
            index[device] = Device(plane.ext.name, names.mac_of(qg))
        for host in cloud.hosts:
            fg = names.fip_gateway_port_id(host.name, plane.ext.name)
            index[names.fg_device(fg)] = Device(plane.ext.name, names.mac_of(fg))
    return index


def _mac(port: Port) -> str:
    return port.mac_address or names.mac_of(port.id)


def wires(plane: Plane, hops: tuple[str, ...], broadcast: bool = False, fip_port: Optional[Port] = None) -> list[Wire]:
    """One :class:`Wire` per ``fabric`` hop of *hops* (see the module doc for the rules).

    *fip_port*: the VM whose floating IP the path uses (OVN distributed FIPs put its MAC on the external wire).
    """
    index = device_index(plane)
    out = []
    for at, hop in enumerate(hops):
        if hop != FABRIC:
            continue
        sender = _addressed(hops[at - 1 :: -1], index)
        receiver = _addressed(hops[at + 1 :], index)
        src, dst = hop_host(hops[at - 1]), hop_host(hops[at + 1])
        ends = {n for n in (_network(sender, index), _network(receiver, index)) if n is not None}
        if len(ends) > 1 and plane.mode == "ovn":
            out.append(_gateway_redirect(plane, src, dst, receiver, index))
            continue
        if len(ends) != 1:
            raise ValueError(f"{sender} and {receiver} are not on one network: {sorted(map(str, ends))}")
        network = plane.cloud.network[ends.pop()]
        kind, segmentation_id = carrier(plane.cloud, network.name, src, plane.mode)
        src_mac = _src_mac(plane, sender, index, fip_port)
        dst_mac = BROADCAST if broadcast else _dst_mac(plane, receiver, index, fip_port)
        out.append(Wire(src, dst, network.name, kind, segmentation_id, src_mac, dst_mac))
    return out


def _gateway_redirect(plane: Plane, src: str, dst: str, receiver: str, index: dict[str, Device]) -> Wire:
    """OVN's distributed gateway port: the source chassis has routed the packet (lr_in_arp_resolve set its MACs:
    the gateway port's and the next hop's) and tunnels it to the gateway chassis on the router's own datapath."""
    gateway_mac = index[receiver.rsplit(":", 1)[-1]].mac
    return Wire(src, dst, f"router:{plane.router.name}", "geneve", None, gateway_mac, EXTERNAL)


def ttl_at_arrival(hops: tuple[str, ...]) -> int:
    """:data:`SENT_TTL` minus the routers that route along *hops* (see the module doc)."""
    stretches, last, ovn = 0, None, False
    for hop in hops:
        parts = hop.split(":")
        if len(parts) == 3 and parts[1].startswith(ROUTING_NAMESPACES):
            where = (parts[0], parts[1])
            stretches += where != last
            last = where
            continue
        last = None
        ovn = ovn or (len(parts) == 3 and parts[1] == "br-int" and parts[2].startswith(OVN_ROUTER_STAGES))
    return SENT_TTL - stretches - int(ovn)


def _addressed(hops, index: dict[str, Device]) -> str:
    """The first hop of *hops* that is the outside world or an addressed device (its full hop string)."""
    for hop in hops:
        if hop == EXTERNAL or hop.rsplit(":", 1)[-1] in index:
            return hop
    raise ValueError(f"no addressed device on one side of the fabric in {list(hops)}")


def _network(hop: str, index: dict[str, Device]) -> Optional[str]:
    """The network of an addressed hop (None: the outside world, which is on the other end's network)."""
    return None if hop == EXTERNAL else index[hop.rsplit(":", 1)[-1]].network


def _src_mac(plane: Plane, sender: str, index: dict[str, Device], fip_port: Optional[Port]) -> str:
    if sender == EXTERNAL:
        return EXTERNAL
    device = index[sender.rsplit(":", 1)[-1]]
    return _ovn_fip_mac(plane, sender, fip_port) or device.mac


def _dst_mac(plane: Plane, receiver: str, index: dict[str, Device], fip_port: Optional[Port]) -> str:
    if receiver == EXTERNAL:
        return EXTERNAL
    return _ovn_fip_mac(plane, receiver, fip_port) or index[receiver.rsplit(":", 1)[-1]].mac


def _ovn_fip_mac(plane: Plane, hop: str, fip_port: Optional[Port]) -> Optional[str]:
    """OVN with distributed floating IPs: the gateway router port on the VM's chassis answers with the NAT row's
    ``external_mac``, which Neutron 29 sets to the MAC of the floating IP's own port (``port_db`` of
    ``floating_port_id`` in ``ovn_client._create_or_update_floatingip``), not the VM's (the twin showed it)."""
    gateway_stage = plane.ext is not None and hop.endswith(names.ovn_lrp(names.router_port_id(plane.router.name, "qg")))
    if plane.mode == "ovn" and plane.design.ovn_distributed_fip and fip_port is not None and gateway_stage:
        return names.mac_of(names.floatingip_port_id(fip_port.name))
    return None
