"""What real OVN did with each probe, read off the wire and named in the model's hops (pure functions).

Under ``control=ovn`` OVN's logical routers have no Linux device to capture on: their stages run in
OpenFlow on whichever chassis the packet is. What the captures do see is exact enough to tell them:

- the VM's tap, where the probe starts or ends;
- every Geneve packet between chassis (each chassis's underlay device). Its header names the
  logical datapath the packet travels on (the VNI is the datapath's tunnel key) and OVN's own option
  (class 0x0102, type 0x80) its logical ingress and egress ports (tunnel keys within the datapath).
  A packet that left on another logical switch than it entered, with a router port as its ingress,
  was routed on the sending chassis; a packet on the router's own datapath with the ``cr-lrp`` port
  as egress was routed there and redirected to the gateway chassis;
- the chassis's device on the physical network (the provider bridge's uplink), and the outside world.
  A frame's 802.1Q tag (none: the flat network) names the network it is on, VLAN or flat tenant networks
  as well as the external one. Their frames carry no logical port: Neutron 29 sets
  ``reside-on-redirect-chassis`` on such a network's router port (``OVNClient._gen_router_port_options``),
  so a VM's frame to the router port's MAC is switched on the network's VLAN to the gateway chassis and
  routed there. Where a packet was routed is the chassis that received a frame on one network and sent the
  packet's next frame on another (or the next Geneve packet, or to the next tap): :func:`events_of`.

:func:`walk` turns one probe's sightings, in time order, into hops in the model's grammar
(:mod:`labtwin.scenarios.dvr.model.paths`): taps, ``br-int``, router stages, ``fabric``, the
provider bridge, ``external``. The router stages are named from the datapaths and ports the Geneve
header carried (:class:`LogicalMap` reads them from the SB and from what Neutron made); the one
stage no packet header names -- the router port a packet *entered* by, on the chassis it was sent
from -- is the router's port on the network the packet was on, of the packet's IP version (OVN
routes a packet in through the router port on its switch; there is no other). Inference, stated.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

from labtwin.description import Cloud, Router
from labtwin.emulation.captures import read_pcap

from .. import neutron_names as names
from ..spec import EXTERNAL
from .observe import Sighting, sighting

GENEVE_PORT = 6081
#: OVN's Geneve option: class 0x0102 (OVN), type 0x80, four bytes: 15-bit ingress, 16-bit egress port key.
OVN_OPTION = (0x0102, 0x80)
FABRIC = "fabric"


@dataclass(frozen=True)
class Tunnel:
    """One Geneve packet between chassis: the outer addresses, the datapath and logical ports it names."""

    src_ip: str
    dst_ip: str
    datapath: int
    inport: int
    outport: int


def geneve(payload: bytes) -> Optional[tuple[int, int, int, bytes]]:
    """(VNI, ingress port key, egress port key, inner frame) of a Geneve payload; None when it is not one
    carrying OVN's option.

    >>> hdr = bytes([0x02, 0, 0x65, 0x58, 0, 0, 5, 0]) + bytes([0x01, 0x02, 0x80, 0x01, 0, 3, 0, 7])
    >>> geneve(hdr + b"frame")
    (5, 3, 7, b'frame')
    """
    if len(payload) < 8 or payload[0] >> 6 != 0:
        return None
    options_len = (payload[0] & 0x3F) * 4
    vni = int.from_bytes(payload[4:7], "big")
    at, end = 8, 8 + options_len
    inport = outport = None
    while at + 4 <= end:
        cls, kind, length = int.from_bytes(payload[at : at + 2], "big"), payload[at + 2], (payload[at + 3] & 0x1F) * 4
        if (cls, kind) == OVN_OPTION and length >= 4:
            value = int.from_bytes(payload[at + 4 : at + 8], "big")
            inport, outport = (value >> 16) & 0x7FFF, value & 0xFFFF
        at += 4 + length
    if inport is None or outport is None:
        return None
    return vni, inport, outport, payload[end:]


def tunnel_sightings(pcap: Path) -> list[tuple[Sighting, Tunnel]]:
    """Every probe packet carried by Geneve in *pcap* (an underlay capture), with its tunnel."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    out = []
    for pkt in read_pcap(pcap):
        if not (pkt.haslayer(UDP) and pkt[UDP].dport == GENEVE_PORT and pkt.haslayer(IP)):
            continue
        decoded = geneve(bytes(pkt[UDP].payload))
        if decoded is None:
            continue
        vni, inport, outport, inner = decoded
        seen = sighting(Ether(inner), float(pkt.time))
        if seen is not None:
            out.append((seen, Tunnel(pkt[IP].src, pkt[IP].dst, vni, inport, outport)))
    return out


@dataclass(frozen=True)
class Event:
    """One place a probe packet was seen: ``tap`` (a VM's), ``tunnel`` (Geneve from *host* to *to_host*),
    ``provider`` (one frame on a physical network, from *host* to *to_host*, either of them ``external``: the
    outside world; its sightings on every uplink it reached are one event, :func:`events_of`) or ``external``
    (the outside world's own device)."""

    kind: str
    host: str
    seen: Sighting
    port: str = ""  # tap: the topology port; provider: the physical network
    to_host: str = ""  # tunnel, provider: the receiving chassis's host (provider: or ``external``)
    datapath: tuple[str, str] = ("", "")  # tunnel: ("switch", network) or ("router", router)
    inport: str = ""  # tunnel: logical port names
    outport: str = ""


@dataclass
class LogicalMap:
    """OVN's logical topology as the SB holds it, with labtwin's names: what a Geneve header's keys mean."""

    datapaths: dict[int, tuple[str, str]]
    ports: dict[tuple[int, int], str]
    hosts_by_encap: dict[str, str]
    #: Neutron's router ports: logical port name (its id, ``lrp-<id>``, ``cr-lrp-<id>``) -> (kind, subnets)
    router_ports: dict[str, tuple[str, tuple[str, ...]]]
    #: Neutron's MAC -> the model's MAC for the same port (labtwin derives router ports' MACs from names)
    macs: dict[str, str]
    cr_lrp_host: str  # where the gateway port's chassis-redirect port is bound

    def event(self, kind: str, host: str, seen: Sighting, tunnel: Optional[Tunnel] = None, port: str = "") -> Event:
        if tunnel is None:
            return Event(kind, host, seen, port=port)
        dp = self.datapaths.get(tunnel.datapath, ("unknown", str(tunnel.datapath)))
        return Event(
            "tunnel",
            self.hosts_by_encap.get(tunnel.src_ip, tunnel.src_ip),
            seen,
            to_host=self.hosts_by_encap.get(tunnel.dst_ip, tunnel.dst_ip),
            datapath=dp,
            inport=self.ports.get((tunnel.datapath, tunnel.inport), ""),
            outport=self.ports.get((tunnel.datapath, tunnel.outport), ""),
        )

    def model_mac(self, mac: str) -> str:
        return self.macs.get(mac, mac)


def _ext(row: dict) -> dict:
    """An OVSDB map column (``["map", [[k, v], ...]]``) as a dict."""
    value = row.get("external_ids", ["map", []])
    return dict(value[1]) if isinstance(value, list) and value and value[0] == "map" else {}


def _uuid(value) -> str:
    return value[1] if isinstance(value, list) and value and value[0] == "uuid" else ""


#: The SB tables :func:`logical_map` reads.
SB_READ = ("Datapath_Binding", "Port_Binding", "Chassis", "Encap")


def logical_map(cloud: Cloud, router: Router, sb: dict, made: dict) -> LogicalMap:
    """Read *sb* (rows of Datapath_Binding, Port_Binding, Chassis, Encap) and *made* (Neutron's ports and
    routers, :func:`labtwin.emulation.ovn_server._what_neutron_made`) into a :class:`LogicalMap`."""
    networks = {n["id"]: n["name"] for n in made.get("networks", [])}
    routers = {rid: name for name, rid in made.get("routers", {}).items()}
    datapaths, by_uuid = {}, {}
    for uuid, row in sb["Datapath_Binding"].items():
        ext = _ext(row)
        neutron_id = ext.get("name", "").removeprefix("neutron-")
        if "logical-switch" in ext:
            named = ("switch", networks.get(neutron_id, ext.get("name2", neutron_id)))
        else:
            named = ("router", routers.get(neutron_id, ext.get("name2", neutron_id)))
        datapaths[row["tunnel_key"]] = named
        by_uuid[uuid] = row["tunnel_key"]
    chassis_host = {uuid: row.get("hostname", row["name"]) for uuid, row in sb["Chassis"].items()}
    host_by_name = {row["name"]: row.get("hostname", row["name"]) for row in sb["Chassis"].values()}
    ports, cr_host = {}, ""
    for row in sb["Port_Binding"].values():
        ports[(by_uuid.get(_uuid(row["datapath"]), -1), row["tunnel_key"])] = row["logical_port"]
        if row["logical_port"].startswith("cr-lrp-"):
            cr_host = chassis_host.get(_uuid(row.get("chassis")), "")
    encaps = {row["ip"]: host_by_name.get(row["chassis_name"], row["chassis_name"]) for row in sb["Encap"].values()}
    router_ports, macs = {}, {}
    for port in made["ports"]:
        subnets = tuple(f["subnet"] for f in port["fixed_ips"])
        if port["device_id"] != _router_id(made, router.name):
            continue
        if port["device_owner"] == "network:router_gateway":
            model = names.router_port_id(router.name, "qg")
            kind = "qg"
        elif port["device_owner"].startswith("network:router_interface"):
            model = names.router_port_id(router.name, "qr", subnets[0])
            kind = "qr"
        else:
            continue
        for name in (port["id"], f"lrp-{port['id']}", f"cr-lrp-{port['id']}"):
            router_ports[name] = (kind, subnets)
        macs[port["mac"]] = names.mac_of(model)
    fip_owner = {f["address"]: f["port"] for f in made.get("floatingips", [])}
    for port in made["ports"]:  # a floating IP's own port: its MAC is a distributed FIP's external_mac
        owner = fip_owner.get(port["fixed_ips"][0]["ip"]) if port["fixed_ips"] else None
        if port["device_owner"] == "network:floatingip" and owner is not None:
            macs[port["mac"]] = names.mac_of(names.floatingip_port_id(owner))
    macs[names.mac_of(EXTERNAL)] = EXTERNAL
    return LogicalMap(datapaths, ports, encaps, router_ports, macs, cr_host)


def _router_id(made: dict, name: str) -> str:
    if name not in made.get("routers", {}):
        raise RuntimeError(f"Neutron holds no router named {name!r} (it has {sorted(made.get('routers', {}))})")
    return made["routers"][name]


@dataclass(frozen=True)
class Hops:
    """The model's hop names for what OVN does (the grammar of :mod:`labtwin.scenarios.dvr.model.paths`), from
    Neutron's names (:mod:`..neutron_names`): the emulation names what it saw, it does not ask the model."""

    cloud: Cloud
    router: Router
    ext: str  # the router's external network ("" without a gateway)

    def vm_out(self, port) -> list[str]:
        return [f"{port.host}:{names.tap_device(port.id)}", f"{port.host}:br-int"]

    def vm_in(self, port) -> list[str]:
        return self.vm_out(port)[::-1]

    def lrp(self, host: str, subnet) -> str:
        return f"{host}:br-int:{names.ovn_lrp(names.router_port_id(self.router.name, 'qr', subnet.name))}"

    def gw_lrp(self, host: str) -> str:
        return f"{host}:br-int:{names.ovn_lrp(names.router_port_id(self.router.name, 'qg'))}"

    def cr_lrp(self, host: str) -> str:
        return f"{host}:br-int:{names.ovn_cr_lrp(names.router_port_id(self.router.name, 'qg'))}"

    def egress(self, host: str) -> list[str]:
        """br-int to the host's bridge onto the external network's physnet, the fabric, the outside world."""
        segment = next((s for s in self.cloud.segments if s.network_id == self.ext and s.physical_network), None)
        mappings = self.cloud.host[host].bridge_mappings
        bridge = mappings.get(segment.physical_network or "", "br-ex") if segment is not None else "br-ex"
        return [f"{host}:br-int", f"{host}:{bridge}", FABRIC, EXTERNAL]

    def ingress(self, host: str) -> list[str]:
        return self.egress(host)[::-1]

    def l2(self, network: str, a: str, b: str) -> list[str]:
        """br-int of host *a* to br-int of host *b* on a VLAN or flat *network*: out and in by the bridges the
        hosts map its physical network to (OVN's ``localnet`` port)."""
        physnet = self._physnet(network)
        bridge = {h: self.cloud.host[h].bridge_mappings.get(physnet, "br-ex") for h in (a, b)}
        return [f"{a}:br-int", f"{a}:{bridge[a]}", FABRIC, f"{b}:{bridge[b]}", f"{b}:br-int"]

    def _physnet(self, network: str) -> str:
        segment = next((s for s in self.cloud.segments if s.network_id == network and s.physical_network), None)
        if segment is None:
            raise RuntimeError(f"network {network!r} has no segment on a physical network")
        return segment.physical_network or ""

    def network_on(self, physnet: str, vlan: Optional[int]) -> str:
        """The network a frame on *physnet* belongs to: the VLAN segment its 802.1Q tag names, or the flat
        segment when untagged (an uplink carries every network of its physical network, each by its tag)."""
        for segment in self.cloud.segments:
            if segment.physical_network != physnet:
                continue
            tagged = segment.network_type == "vlan" and segment.segmentation_id is not None
            if (tagged and vlan == int(segment.segmentation_id or 0)) or (
                segment.network_type == "flat" and vlan is None
            ):
                return segment.network_id
        raise RuntimeError(f"a probe frame on physnet {physnet!r} with VLAN tag {vlan} belongs to no segment")


@dataclass
class Walk:
    """A probe's path in the model's hops, the wires it crossed, and its TTL where it arrived."""

    hops: list[str]
    wires: list[dict]
    ttl: Optional[int]


class Walker:
    """Turns a probe's events into a :class:`Walk` (see the module doc); *hops* names them."""

    def __init__(self, hops: Hops, logical: LogicalMap, version: int) -> None:
        self.p, self.lm, self.version = hops, logical, version
        self.ext = hops.ext

    def walk(self, events: list[Event]) -> Walk:
        hops: list[str] = []
        wires: list[dict] = []
        at: Optional[tuple[str, str, str]] = None  # (host, "switch"|"router"|"gateway", network or router)
        for e in events:
            if e.kind == "tap":
                port = self.p.cloud.port[e.port]
                if at is None:
                    hops += self.p.vm_out(port)
                else:
                    hops += self._stages(at, ("switch", port.network_id), e.host) + self.p.vm_in(port)
                at = (e.host, "switch", port.network_id)
            elif e.kind == "tunnel":
                if at is None:  # seen first on the underlay: the tap was missed; nothing to name before it
                    at = (e.host, "switch", "")
                hops += self._stages(at, e.datapath, e.host, via=e.inport)
                hops += [f"{e.host}:br-int", FABRIC, f"{e.to_host}:br-int"]
                wires.append(self._tunnel_wire(e))
                routed_to_gateway = e.datapath[0] == "router" and e.outport.startswith("cr-lrp-")
                if routed_to_gateway:
                    hops.append(self.p.cr_lrp(e.to_host))
                at = (e.to_host, "gateway" if routed_to_gateway else e.datapath[0], e.datapath[1])
            elif e.kind == "provider":
                network = self.p.network_on(e.port, e.seen.vlan)
                if e.host == EXTERNAL:  # in from the outside world
                    hops += self.p.ingress(e.to_host)
                else:
                    if at is None:  # the tap was missed: nothing to name before the frame
                        at = (e.host, "switch", network)
                    hops += self._stages(at, ("switch", network), e.host, e.seen)
                    if e.to_host == EXTERNAL:
                        hops += self.p.egress(e.host)
                    else:  # to the chassis that acted on it next (none: it went onto the fabric, no further)
                        hops += self.p.l2(network, e.host, e.to_host or e.host)[: 5 if e.to_host else 3]
                wires.append(self._provider_wire(e.host, e.to_host, e.seen, network))
                at = (e.to_host, "switch", network)
            # an "external" event needs nothing: as the sender, its frame on the physical network starts the
            # path; as the receiver, that frame ended the path
        last = events[-1] if events else None
        ttl = last.seen.ttl if last is not None and last.kind in ("tap", "external") else None
        return Walk(_fold(hops), wires, ttl)

    def _stages(
        self, at: tuple[str, str, str], to: tuple[str, str], host: str, seen: Optional[Sighting] = None, via: str = ""
    ) -> list[str]:
        """The router stages on *host* between where the packet was (*at*) and the datapath it leaves on (*seen*:
        the frame it left in, on a physical network)."""
        _, kind, where = at
        if (kind, where) == to or to[0] == "router" and kind in ("router", "gateway"):
            return []
        stages = []
        if kind == "switch" and where == self.ext:  # in from the physical network: the gateway port
            stages.append(self.p.cr_lrp(host) if host == self.lm.cr_lrp_host else self.p.gw_lrp(host))
        elif kind == "switch":
            stages.append(self.p.lrp(host, self._router_subnet(where)))
        if to[0] == "switch":
            if to[1] == self.ext:
                if kind != "gateway":  # routed on this chassis: out of the gateway port's cr-lrp, or its lrp
                    stages.append(self.p.cr_lrp(host) if self._redirected(host, seen) else self.p.gw_lrp(host))
            else:
                stages.append(self.p.lrp(host, self._port_subnet(via) or self._router_subnet(to[1])))
        return stages

    def _redirected(self, host: str, seen: Optional[Sighting]) -> bool:
        """Whether a frame leaving *host* onto the external network left by the gateway port's chassis-redirect
        port: on the chassis the ``cr-lrp`` is bound to, from the gateway port's own MAC. OVN sends a frame
        from the distributed gateway port's MAC only where its ``cr-lrp`` is (elsewhere a packet for it is
        redirected there); a distributed floating IP leaves from its own ``external_mac`` (Neutron 29:
        ``OVNClient._create_or_update_floatingip`` writes it, ``ovn_client.py``)."""
        qg = names.mac_of(names.router_port_id(self.p.router.name, "qg"))
        return seen is not None and host == self.lm.cr_lrp_host and self.lm.model_mac(seen.src_mac) == qg

    def _router_subnet(self, network: str):
        """The router's subnet on *network* of the walk's IP version: the port the router is entered by."""
        for name in self.p.router.interfaces:
            subnet = self.p.cloud.subnet[name]
            if subnet.network_id == network and subnet.ip_version == self.version:
                return subnet
        raise RuntimeError(f"router {self.p.router.name} has no IPv{self.version} subnet on network {network!r}")

    def _port_subnet(self, logical_port: str):
        """The subnet of the walk's IP version on the router port a Geneve packet named as its ingress."""
        kind, subnets = self.lm.router_ports.get(logical_port, ("", ()))
        for name in subnets if kind == "qr" else ():
            if self.p.cloud.subnet[name].ip_version == self.version:
                return self.p.cloud.subnet[name]
        return None

    def _tunnel_wire(self, e: Event) -> dict:
        kind, name = e.datapath
        return {
            "src_host": e.host,
            "dst_host": e.to_host,
            "network": name if kind == "switch" else f"router:{name}",
            "network_type": "geneve",
            "segmentation_id": None,  # the VNI is northd's tunnel key, kept apart (tunnel_keys)
            "src_mac": self.lm.model_mac(e.seen.src_mac),
            "dst_mac": self.lm.model_mac(e.seen.dst_mac),
        }

    def _provider_wire(self, src: str, dst: str, seen: Sighting, network: str) -> dict:
        return {
            "src_host": src,
            "dst_host": dst,
            "network": network,
            "network_type": "flat" if seen.vlan is None else "vlan",
            "segmentation_id": seen.vlan,
            "src_mac": self.lm.model_mac(seen.src_mac),
            "dst_mac": self.lm.model_mac(seen.dst_mac),
        }


def _fold(hops: list[str]) -> list[str]:
    out: list[str] = []
    for hop in hops:
        if not out or out[-1] != hop:
            out.append(hop)
    return out


def events_of(rows: list[tuple[str, str, str, Sighting, Optional[Tunnel]]], logical: LogicalMap, request: bool):
    """One probe's events in one direction, in time order: taps, tunnels (each once, though both ends and a
    flooding underlay see it), frames on a physical network and the outside world. *rows*: (kind, host, port,
    sighting, tunnel) for every capture's sightings of the probe (a ``provider`` row's port is the physical
    network of the uplink that saw it).

    A frame on the physical network is seen on the sender's uplink, the receiver's and wherever the fabric
    floods it; its sightings (one tag, both MACs, both addresses and the TTL alike) are one ``provider`` event
    (:func:`_crossings`), from the chassis whose uplink saw it first (the sender's uplink carries it before the
    fabric delivers it anywhere) -- or from the outside world, when the outside world's own device saw it
    before -- to the chassis that acted on it next: the one whose tap saw the packet next, that tunnelled it
    next, or that sent its next frame (OVN routes a VLAN or flat network's packet where it receives it: the
    gateway chassis for a port with ``reside-on-redirect-chassis``), or to the outside world."""
    mine = sorted((r for r in rows if r[3].request == request), key=lambda r: r[3].t)
    events: list[Event] = []
    tunnels_seen: set = set()
    for kind, host, port, seen, tunnel in mine:
        if kind == "tunnel":
            assert tunnel is not None
            key = (tunnel.src_ip, tunnel.dst_ip, tunnel.datapath, seen.frame, seen.ttl)
            if key in tunnels_seen:
                continue
            tunnels_seen.add(key)
        events.append(logical.event(kind, host, seen, tunnel, port))
    return _crossings(events)


def _crossings(events: list[Event]) -> list[Event]:
    """*events* with each frame's sightings on physical-network uplinks made one ``provider`` event (its
    sender and receiver, see :func:`events_of`)."""
    groups: dict[tuple, list[Event]] = {}
    out: list[Event] = []
    for e in events:
        if e.kind != "provider":
            out.append(e)
            continue
        key = (e.port, e.seen.frame, e.seen.src, e.seen.dst, e.seen.ttl)
        if key not in groups:
            groups[key] = []
            out.append(e)
        groups[key].append(e)

    def sender(i: int) -> str:
        before = out[i - 1] if i > 0 else None
        return EXTERNAL if before is not None and before.kind == "external" else out[i].host

    def receiver(i: int, seen_on: list[str]) -> str:
        after = out[i + 1] if i + 1 < len(out) else None
        if after is None:  # nothing acted on it: the uplink it reached besides the sender's, if any
            others = [h for h in seen_on if h != sender(i)]
            return others[-1] if others else ""
        if after.kind == "external":
            return EXTERNAL
        if after.kind == "provider":
            return sender(i + 1)
        return after.host

    done = []
    for i, e in enumerate(out):
        if e.kind != "provider":
            done.append(e)
            continue
        seen_on = [x.host for x in groups[(e.port, e.seen.frame, e.seen.src, e.seen.dst, e.seen.ttl)]]
        done.append(replace(e, host=sender(i), to_host=receiver(i, seen_on)))
    return done
