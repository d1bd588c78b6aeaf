"""The namespaces, devices, routes, rules and NAT each Neutron router's mode builds, as data the path search walks
(an ML2/OVN router's logical stages too: :meth:`Routers._ovn`).

Neutron 29's L3 agent (``neutron/agent/l3``), read for each piece (cited where it is built below):

- a **legacy** router (``legacy_router.py``, ``router_info.py``): one ``qrouter-`` namespace on the network node
  hosting it, a ``qr-`` port per subnet it has an interface on, the ``qg-`` gateway port holding the gateway's
  address and every floating IP (``RouterInfo.process_floating_ip_addresses``); the main table has the
  connected subnets and ``default via`` the external subnet's gateway on ``qg-``; iptables DNATs a floating IP
  to its fixed address, SNATs a fixed address with a floating IP to it (``floating_forward_rules``) and any other
  IPv4 source to the gateway address when ``enable_snat`` (``_snat_rules`` / ``external_gateway_nat_snat_rules``);
- a **DVR** router (``dvr_local_router.py``, ``dvr_edge_router.py``, ``dvr_fip_ns.py``): a ``qrouter-`` on
  every host with a DVR-serviced port (a VM's, a DHCP port) on one of its subnets and on the ``dvr_snat`` node
  (:meth:`Routers._dvr_hosts`), its ``qr-`` ports sharing
  one MAC and address per subnet; with a gateway, per subnet (IPv4 and IPv6) ``ip rule from <cidr> lookup
  <snat_idx>`` whose table holds ``default via <sg- address>`` on that ``qr-``
  (``DvrLocalRouter._snat_redirect_modify``, ``_get_snat_idx``); on the ``dvr_snat`` node a ``snat-``
  namespace with one ``sg-`` port per subnet and the ``qg-`` port (``DvrEdgeRouter._create_dvr_gateway``,
  ``internal_network_added``), which SNATs to the gateway address (``_handle_router_snat_rules``); with a
  gateway, on **every** such host, floating IP or not (``DvrLocalRouter.process_external`` ->
  ``create_dvr_external_gateway_on_agent``, ``connect_rtr_2_fip``), a ``fip-<ext net>`` namespace with the
  host's ``fg-`` port (the loader's agent gateway port; ``proxy_arp=1``: it answers ARP for the host's floating
  IPs, ``FipNamespace._create_gateway_port``), the ``rfp-``/``fpr-`` veth whose table 16 holds ``default via
  <fpr- address>`` on ``rfp-`` (``FipNamespace.create_rtr_2_fip_link``) and, for what comes in by ``fpr-``
  (``iif fpr- lookup <idx>``), ``default via`` the external gateway on ``fg-``
  (``_add_rtr_ext_route_rule_to_route_table``); on a host with a floating IP also ``ip rule from <fixed> lookup
  16`` (priority from ``FIP_PR_START`` 32768, ``_add_floating_ip_rule``), the qrouter's ``float-snat``/DNAT rules
  and ``<fip>/32 via <rfp->`` on ``fpr-`` (``floating_ip_added_dist``). Without a floating IP no rule leads to
  table 16, so a host's IPv4 leaves by ``snat-`` whether or not it has ``fip-``.

Rule priority: the main table (32766) comes before the floating-IP rules (32768...) and the SNAT redirect rules
(``snat_idx``), so a destination on a connected subnet is routed locally, a floating IP's fixed address leaves
by its ``fip-`` namespace, and any other source on a router subnet goes to its ``sg-`` port.

Addresses are symbolic (:data:`Addr`): which port or router device holds them, not the address itself, so a
path does not depend on IPAM.

IPv6 north-south from a DVR host, as Neutron 29's code and its own agent do it (not as the networking guide
says, "via the centralized router"): ``create_rtr_2_fip_link`` puts ``default via <fpr-'s link-local>`` on
``rfp-`` in the qrouter's **main** table, looked up before the IPv6 SNAT redirect rule, so IPv6 leaves by the
host's own ``fip-``; there only the external subnets are on-link (the IPv6 default route sits in the table of
an IPv4-only ``iif fpr-`` rule), so the outside world's router (the external subnet's gateway) is reached and
anything beyond it would die in ``fip-``; the outside routes the tenant prefix back to ``qg-``, so the reply
comes through ``snat-`` on the network node (asymmetric). Seen with Neutron's agent under ``control=neutron``
(/work/notes/finding-ipv6-dvr.md).

Simplifications stated: HA routers are drawn as their one active instance;
address scopes (which skip the SNAT redirect) are not modelled; the network node is the first host with role network
(``spec.network_node``), not Neutron's scheduler's pick; a VM's default gateway is the router holding its
subnet's gateway, the first in the file with an interface on it.
"""

from __future__ import annotations

import binascii
import ipaddress
from dataclasses import dataclass, field
from typing import Optional

from labtwin.description import Cloud, Port, Router, Subnet
from labtwin.description.neutron_ports import AGENT_GATEWAY_OWNER, dvr_router_hosts

from .. import neutron_names as names
from ..spec import EXTERNAL
from .plane import Plane

#: A symbolic address: (kind, owner, detail) -- ``fixed`` (port, version), ``fip`` (port, 4), ``gw`` (router,
#: version: the qg- address), ``qr``/``sg`` (router, subnet), ``rfp``/``fpr``/``fpr6`` (router, host: the veth's
#: IPv4 /31 ends, fpr-'s IPv6 link-local), ``fg`` (host, version: the agent gateway port's), ``external`` ("",
#: version: the outside world's router, the external subnet's gateway), ``beyond`` ("", version: an address
#: beyond that router, on no external subnet: the Internet).
Addr = tuple[str, str, object]
#: What a route or rule matches: ("default", version) | ("subnet", subnet name) | ("addr", Addr) | ("all", 0).
Match = tuple[str, object]

#: Linux's main-table rule priority; Neutron's floating-IP rules start after it (dvr_fip_ns.FIP_PR_START).
MAIN_PRIORITY = 32766
FIP_PR_START = 32768
FIP_RT_TBL = "16"  # dvr_fip_ns.FIP_RT_TBL
#: neutron/common/constants.py DVR_FIP_LL_CIDR: the rfp-/fpr- links' /31s come from it.
DVR_FIP_LL_CIDR = ipaddress.ip_network("169.254.64.0/18")
#: labtwin's: an OVN router's default route, drawn as a table after the distributed floating IPs' source rules
#: (OVN routes first and NATs a distributed floating IP on its own chassis, out its localnet port; the outcome
#: is the same).
OVN_DEFAULT_PRIORITY = FIP_PR_START + 40000
_MASK_30 = 0x3FFFFFFF


def snat_idx(cidr: str) -> int:
    """``DvrLocalRouter._get_snat_idx`` (Neutron 29, dvr_local_router.py), re-written because importing the
    agent costs the model 1.6 s: IPv4 the CIDR's integer value; IPv6 a crc32 xor-folded to 30 bits, moved above
    32768 (a test checks it against Neutron's)."""
    net = ipaddress.ip_network(cidr, strict=False)
    if net.version == 4:
        return int(net.network_address)
    idx = binascii.crc32(cidr.encode()) & 0xFFFFFFFF
    idx = (idx >> 30) ^ (idx & _MASK_30)
    return idx + _MASK_30 if idx < 32768 else idx


@dataclass(frozen=True)
class Iface:
    """A device that holds addresses, on an L2 domain (a network's name, or ``veth:<router>:<host>``)."""

    id: str  # unique: the hop, or ``external@<network>`` for the outside world on one network
    hop: str
    l2: str
    addresses: tuple[Addr, ...]
    mac: str
    distributed: bool = False  # one instance per host (DVR qr-, OVN lrp-): the sender's own host answers
    dvr_mac: bool = False  # a DVR qr- port: br-tun rewrites its source MAC to the host's DVR MAC
    #: Arriving here continues the same router's pipeline (OVN's gateway redirect): no second TTL decrement.
    continues: bool = False

    @property
    def host(self) -> str:
        return EXTERNAL if self.hop == EXTERNAL else self.hop.split(":", 1)[0]


@dataclass(frozen=True)
class Route:
    dst: Match
    dev: str  # an Iface id
    via: Optional[Addr] = None  # None: on-link (the packet's destination)


@dataclass(frozen=True)
class Rule:
    priority: int
    src: Match
    table: str
    iif: str = ""  # an Iface id: the rule matches packets that came in by it ("": any)
    family: int = 0  # the IP version of an ``from all`` rule (``ip rule`` keeps one list per family); 0: any


@dataclass(frozen=True)
class Snat:
    """iptables SNAT on leaving by *dev*: a source matching *src* becomes *to* (ip version 4 only)."""

    dev: str
    src: Match
    to: Addr
    says: str


@dataclass
class Namespace:
    """One namespace (a VM and the outside world are namespaces too: ``routes`` is their routing table)."""

    key: str
    router: Optional[Router]
    ifaces: list[Iface] = field(default_factory=list)
    tables: dict[str, list[Route]] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    dnat: dict[Addr, Addr] = field(default_factory=dict)  # on arrival: floating IP -> fixed address
    snat: list[Snat] = field(default_factory=list)
    endpoint: bool = False  # a VM or the outside world: it receives, it does not forward
    #: An OVN logical router's pipeline on one chassis: a stage of br-int's OpenFlow, no device of its own.
    ovn: bool = False
    #: IP versions this namespace has no default route for, and why (OVN drops a static route it cannot reach;
    #: DVR's fip- has none for IPv6).
    drops: dict[int, str] = field(default_factory=dict)

    def add(self, iface: Iface) -> Iface:
        self.ifaces.append(iface)
        return iface

    def route(self, table: str, dst: Match, dev: Iface, via: Optional[Addr] = None) -> None:
        self.tables.setdefault(table, []).append(Route(dst, dev.id, via))


def fixed(port: Port, version: int = 4) -> Addr:
    return ("fixed", port.name, version)


def version_of(cloud: Cloud, addr: Addr) -> int:
    kind, _owner, detail = addr
    if kind in ("qr", "sg"):
        return cloud.subnet[str(detail)].ip_version
    if kind in ("rfp", "fpr", "fip"):
        return 4
    if kind == "fpr6":  # fpr-'s IPv6 link-local address
        return 6
    if kind == "redirect":
        return int(str(detail))
    return int(str(detail))


def in_subnet(cloud: Cloud, addr: Addr, subnet: Subnet) -> bool:
    """Whether *addr* lies in *subnet* (a port's address of the subnet's version on it, a router port on it)."""
    kind, owner, detail = addr
    if kind in ("qr", "sg"):
        return detail == subnet.name
    if kind == "fixed" and detail == subnet.ip_version and owner in cloud.port:
        return any(f.subnet_id == subnet.name for f in cloud.port[owner].fixed_ips)
    return False


def matches(cloud: Cloud, match: Match, addr: Addr) -> bool:
    kind, value = match
    if kind == "all":
        return True
    if kind == "default":
        return version_of(cloud, addr) == value
    if kind == "subnet":
        return in_subnet(cloud, addr, cloud.subnet[str(value)])
    return addr == value


def specificity(match: Match) -> int:
    """Longest prefix first: a host address, a subnet, the default route."""
    return {"addr": 2, "subnet": 1}.get(match[0], 0)


class Routers:
    """Every namespace the cloud's legacy and DVR routers build, each in its own mode, plus its VMs and the
    outside world; who holds which address on which L2 domain."""

    def __init__(self, cloud: Cloud, planes: dict[str, Plane]):
        self.cloud, self.planes = cloud, planes
        self.namespaces: dict[str, Namespace] = {}
        self.iface_ns: dict[str, Namespace] = {}
        self.fips = self._fips()
        for name, plane in planes.items():
            {"legacy": self._legacy, "dvr": self._dvr, "ovn": self._ovn}[plane.mode](plane)
        for port in cloud.vm_ports:
            self._vm(port)
        self._outside()
        self.by_l2: dict[str, list[Iface]] = {}
        for ns in self.namespaces.values():
            for iface in ns.ifaces:
                self.iface_ns[iface.id] = ns
                self.by_l2.setdefault(iface.l2, []).append(iface)

    # -- who routes what ------------------------------------------------------------------------------------
    def owner(self, subnet: Subnet) -> Optional[Plane]:
        """The router holding *subnet*'s gateway: the first (file order) with an interface on it."""
        return next((p for p in self.planes.values() if subnet.name in p.router.interfaces), None)

    def _fips(self) -> dict[str, tuple[Plane, Port]]:
        """Floating IPs by port: the router Neutron associates (an interface on the port's IPv4 subnet and a
        gateway on the floating network: ``l3_db._get_router_for_floatingip``)."""
        out: dict[str, tuple[Plane, Port]] = {}
        for fip in self.cloud.floatingips:
            port = self.cloud.port.get(fip.port_id)
            if port is None:
                continue
            for plane in self.planes.values():
                gw = plane.router.external_gateway_info
                v4 = [self.cloud.subnet[f.subnet_id] for f in port.fixed_ips]
                if (
                    gw
                    and gw.network_id == fip.floating_network_id
                    and any(s.ip_version == 4 and s.name in plane.router.interfaces for s in v4)
                ):
                    out.setdefault(port.name, (plane, port))
                    break
        return out

    def fips_of(self, plane: Plane) -> list[Port]:
        return [port for p, port in self.fips.values() if p is plane]

    # -- builders -------------------------------------------------------------------------------------------
    def _ns(self, key: str, router: Optional[Router] = None, endpoint: bool = False) -> Namespace:
        if key not in self.namespaces:
            self.namespaces[key] = Namespace(key, router, endpoint=endpoint)
        return self.namespaces[key]

    def _qr(self, ns: Namespace, plane: Plane, host: str, subnet: Subnet, distributed: bool) -> Iface:
        port_id = names.router_port_id(plane.router.name, "qr", subnet.name)
        hop = plane.qr(host, subnet)
        addr: Addr = ("qr", plane.router.name, subnet.name)
        return ns.add(Iface(hop, hop, subnet.network_id, (addr,), names.mac_of(port_id), distributed, distributed))

    def _qg(self, ns: Namespace, plane: Plane, host: str, extra: tuple[Addr, ...] = ()) -> Iface:
        hop = plane.qg(host, ns.key.split(":", 1)[1])
        gw: tuple[Addr, ...] = (("gw", plane.router.name, 4), ("gw", plane.router.name, 6))
        mac = names.mac_of(names.router_port_id(plane.router.name, "qg"))
        return ns.add(Iface(hop, hop, plane.external().name, gw + extra, mac))

    def _subnets(self, plane: Plane) -> list[Subnet]:
        return [self.cloud.subnet[s] for s in plane.router.interfaces]

    def _outward(self, ns: Namespace, plane: Plane, qg: Iface, table: str = "main") -> None:
        """``default via`` the external subnet's gateway (the outside world's router) on *qg*, IPv4 and IPv6."""
        for version in (4, 6):
            ns.route(table, ("default", version), qg, ("external", "", version))

    def _legacy(self, plane: Plane) -> None:
        """legacy_router.py / router_info.py: one qrouter- on the network node."""
        host = plane.nn
        ns = self._ns(f"{host}:{names.qrouter_ns(plane.router.id)}", plane.router)
        for subnet in self._subnets(plane):
            ns.route("main", ("subnet", subnet.name), self._qr(ns, plane, host, subnet, False))
        if plane.ext is None:
            return
        fips = self.fips_of(plane)
        qg = self._qg(ns, plane, host, tuple(("fip", p.name, 4) for p in fips))
        self._outward(ns, plane, qg)
        for port in fips:  # floating_forward_rules: DNAT in, SNAT out (before the router's own SNAT)
            ns.dnat[("fip", port.name, 4)] = fixed(port)
            ns.snat.append(Snat(qg.id, ("addr", fixed(port)), ("fip", port.name, 4), "snat fixed->fip"))
        if plane.snat_enabled:
            ns.snat.append(Snat(qg.id, ("default", 4), ("gw", plane.router.name, 4), "snat fixed->qg"))

    def _bound_hosts(self, plane: Plane) -> list[str]:
        """Each host with a bound port on a router subnet, then the gateway host (an OVN router's chassis)."""
        subnets = set(plane.router.interfaces)
        bound = [p.host for p in self.cloud.ports if p.host and any(f.subnet_id in subnets for f in p.fixed_ips)]
        return list(dict.fromkeys([*bound, plane.nn]))

    def _dvr_hosts(self, plane: Plane) -> list[str]:
        """Hosts whose L3 agent hosts a DVR router (a qrouter- each): the loader's
        :func:`~labtwin.description.neutron_ports.dvr_router_hosts` (Neutron 29 ``l3_dvrscheduler_db.
        _get_dvr_router_ids_for_host``: a DVR-serviced port bound there on one of its subnets -- compute ports, and
        the DHCP ports Neutron's scheduler placed, ``host_dvr_for_dhcp`` -- and the dvr_snat node), the same hosts
        that took an ``fg-`` port; plus the dvr_snat node for a router without a gateway. Ordered as the bound ports
        come, then the dvr_snat node, then the DHCP hosts."""
        listed = [
            h.name for h in dvr_router_hosts(self.cloud, plane.router, self.cloud.ports, self.cloud.network_ports)
        ]
        return [h for h in dict.fromkeys([*self._bound_hosts(plane), *listed]) if h in listed or h == plane.nn]

    def _dvr(self, plane: Plane) -> None:
        router, subnets = plane.router, self._subnets(plane)
        fips = self.fips_of(plane)
        for host in self._dvr_hosts(plane):
            ns = self._ns(f"{host}:{names.qrouter_ns(router.id)}", router)
            qrs = {s.name: self._qr(ns, plane, host, s, True) for s in subnets}
            for subnet in subnets:
                ns.route("main", ("subnet", subnet.name), qrs[subnet.name])
            if plane.ext is None:
                continue
            for subnet in subnets:  # _snat_redirect_modify: from <cidr> lookup <snat_idx>, default via sg-
                idx = snat_idx(str(subnet.cidr))
                ns.rules.append(Rule(idx, ("subnet", subnet.name), str(idx)))
                ns.route(str(idx), ("default", subnet.ip_version), qrs[subnet.name], ("sg", router.name, subnet.name))
            # DvrLocalRouter.process_external: on every host with the router, floating IP or not
            self._fip_link(ns, plane, host, [p for p in fips if p.host == host])
        if plane.ext is not None:
            self._snat_ns(plane, subnets)

    def _fip_link(self, ns: Namespace, plane: Plane, host: str, fips: list[Port]) -> None:
        """The host's ``fip-`` namespace with its ``fg-`` port, the rfp-/fpr- veth to it, and the floating IPs'
        rules, NAT and routes (none on a host without one).

        Neutron 29 (and Train: the same code), on every ``dvr``/``dvr_snat`` agent hosting a distributed router
        with a gateway, floating IP or not: ``DvrLocalRouter.process_external`` ->
        ``create_dvr_external_gateway_on_agent`` (``FipNamespace.create_or_update_gateway_port``: ``fip-`` and
        ``fg-``) -> ``connect_rtr_2_fip`` (``FipNamespace.create_rtr_2_fip_link``: the veth, table 16's IPv4
        default route via ``fpr-``, and ``iif fpr- lookup <idx>`` in ``fip-``); the ``fg-`` port is the one
        the loader made for the host (:meth:`_agent_gateway_addresses`)."""
        router, ext = plane.router, plane.external()
        link = f"veth:{router.name}:{host}"
        rfp_hop, fpr_hop, fg_hop = plane.fip_leg(host)
        rfp = ns.add(Iface(rfp_hop, rfp_hop, link, (("rfp", router.name, host),), f"rfp:{router.name}:{host}"))
        ns.route(FIP_RT_TBL, ("default", 4), rfp, ("fpr", router.name, host))
        # create_rtr_2_fip_link's last line: 'default via <fpr-'s IPv6 link-local> dev rfp-' with no table, so in
        # the MAIN table, looked up (32766) before the IPv6 SNAT redirect rule (snat_idx > 32768): a DVR host
        # sends all its IPv6 north-south into its own fip-, never to snat- (seen with Neutron's own agent,
        # /work/notes/finding-ipv6-dvr.md)
        ns.route("main", ("default", 6), rfp, ("fpr6", router.name, host))
        fip_ns = self._ns(f"{host}:{names.fip_ns(ext.id)}")
        held: tuple[Addr, ...] = (("fpr", router.name, host), ("fpr6", router.name, host))
        fpr = fip_ns.add(Iface(fpr_hop, fpr_hop, link, held, f"fpr:{router.name}:{host}"))
        fg = next((i for i in fip_ns.ifaces if i.hop == fg_hop), None)
        if fg is None:
            fg_mac = names.mac_of(names.fip_gateway_port_id(host, ext.name))
            fg = fip_ns.add(Iface(fg_hop, fg_hop, ext.name, self._agent_gateway_addresses(host, ext.name), fg_mac))
            # fip-'s main table: fg-'s connected subnets (and, for a gateway outside its subnet, _update_gateway_route's
            # 'route add <gw> scope link'): the external subnets' gateways are on-link; no default route of its own
            # (_add_default_gateway_for_fip adds one only to tables an existing rule of its family names)
            for version in sorted({int(str(a[2])) for a in fg.addresses if a[0] == "fg"}):
                fip_ns.route("main", ("addr", ("external", "", version)), fg)
            fip_ns.drops[6] = (
                "no IPv6 route in fip- but fg-'s own subnets: an IPv6 default route goes only into the table of "
                "the IPv4-only 'iif fpr-' rule (Neutron 29 dvr_fip_ns._add_rtr_ext_route_rule_to_route_table)"
            )
        # _add_rtr_ext_route_rule_to_route_table: 'from all iif fpr- lookup <idx>', an IPv4 rule (add_ip_rule's
        # family is that of fpr-'s 169.254 address), whose table holds the default routes via the external
        # gateways on fg- (_update_gateway_route: IPv6's too, which no rule reaches); idx is the fpr- address's
        # integer value, from the link-local /31 the agent allocated (not known here: a stand-in)
        table = f"fpr:{router.name}"
        fip_ns.rules.append(Rule(snat_idx(str(DVR_FIP_LL_CIDR)), ("all", 0), table, fpr.id, family=4))
        for version in (4, 6):
            fip_ns.route(table, ("default", version), fg, ("external", "", version))
        proxied = tuple(("fip", p.name, 4) for p in fips)  # proxy_arp on fg-: it answers for these
        fip_ns.ifaces[fip_ns.ifaces.index(fg)] = Iface(fg.id, fg.hop, fg.l2, fg.addresses + proxied, fg.mac)
        for at, port in enumerate(fips):
            ns.rules.append(Rule(FIP_PR_START + at, ("addr", fixed(port)), FIP_RT_TBL))
            ns.dnat[("fip", port.name, 4)] = fixed(port)
            ns.snat.append(Snat(rfp.id, ("addr", fixed(port)), ("fip", port.name, 4), "snat fixed->fip"))
            fip_ns.route("main", ("addr", ("fip", port.name, 4)), fpr, ("rfp", router.name, host))

    def _agent_gateway_addresses(self, host: str, network: str) -> tuple[Addr, ...]:
        """The ``fg-`` port's own addresses, ``("fg", host, version)``: one per IP version of the fixed IPs the
        loader gave *host*'s agent gateway port on *network* (``neutron_ports.agent_gateway_ports``). A router
        the file does not make distributed (a design knob makes it DVR) has none there: one per version of the
        external network's subnets, as Neutron's server would give it."""
        port = next(
            (
                p
                for p in self.cloud.network_ports
                if p.device_owner == AGENT_GATEWAY_OWNER and p.host == host and p.network_id == network
            ),
            None,
        )
        subnets = [f.subnet_id for f in port.fixed_ips] if port is not None else []
        subnets = subnets or [s.name for s in self.cloud.subnets if s.network_id == network]
        return tuple(("fg", host, v) for v in sorted({self.cloud.subnet[s].ip_version for s in subnets}))

    def _snat_ns(self, plane: Plane, subnets: list[Subnet]) -> None:
        """dvr_edge_router.py: snat- on the dvr_snat node, an sg- port per subnet and the qg- port."""
        router, host = plane.router, plane.nn
        ns = self._ns(f"{host}:{names.snat_ns(router.id)}", router)
        for subnet in subnets:
            port_id = names.router_port_id(router.name, "sg", subnet.name)
            hop = plane.sg(host, subnet)
            sg = ns.add(Iface(hop, hop, subnet.network_id, (("sg", router.name, subnet.name),), names.mac_of(port_id)))
            ns.route("main", ("subnet", subnet.name), sg)
        qg = self._qg(ns, plane, host)
        self._outward(ns, plane, qg)
        if plane.snat_enabled:
            ns.snat.append(Snat(qg.id, ("default", 4), ("gw", router.name, 4), "snat fixed->qg"))

    def _ovn(self, plane: Plane) -> None:
        """ML2/OVN (Neutron 29 ``ovn_client.py``, ovn-northd): a logical router is OpenFlow stages on br-int, run
        on the chassis the packet enters on (``lrp-`` per router port, on every chassis; a VLAN or flat network's
        port resides on the gateway chassis instead: ``Plane.resides_on_gateway``); the gateway port is a
        chassis-redirect port (``cr-lrp-``) on the active gateway chassis, where SNAT and centralized floating
        IPs are applied: a packet routed elsewhere continues there through a Geneve tunnel on the router's
        datapath (one router, one TTL decrement). With ``enable_distributed_floating_ip`` a floating IP is
        NATed on its VM's chassis and leaves by that chassis's provider bridge. The router's default route is a
        static route via the external subnet's gateway, dropped by ovn-northd when that gateway lies outside
        the subnet ("No path for static route")."""
        router, gw = plane.router, plane.nn
        subnets = self._subnets(plane)
        resident = any(plane.resides_on_gateway(s) for s in subnets)
        hosts = [gw] if resident else self._bound_hosts(plane)
        distributed = plane.design.ovn_distributed_fip
        fips = self.fips_of(plane)
        drops = self._ovn_drops(plane)
        qg_mac = names.mac_of(names.router_port_id(router.name, "qg"))
        stage = self._ns(f"{gw}:br-int:{router.name}:gateway", router) if plane.ext and not resident else None
        for host in hosts:
            ns = self._ns(f"{host}:br-int:{router.name}", router)
            ns.ovn, ns.drops = True, drops
            for subnet in subnets:
                hop = plane.lrp(host, subnet)
                port_id = names.router_port_id(router.name, "qr", subnet.name)
                addr: Addr = ("qr", router.name, subnet.name)
                lrp = ns.add(Iface(hop, hop, subnet.network_id, (addr,), names.mac_of(port_id), not resident))
                ns.route("main", ("subnet", subnet.name), lrp)
            if plane.ext is None:
                continue
            if resident:
                self._ovn_gateway(ns, plane, fips)
                continue
            redirect = ns.add(
                Iface(f"{host}:br-int@{router.name}", f"{host}:br-int", f"router:{router.name}", (), qg_mac)
            )
            ns.rules.append(Rule(OVN_DEFAULT_PRIORITY, ("all", 0), "gateway"))  # after a distributed FIP's
            for version in (4, 6):
                if version not in drops:
                    ns.route("gateway", ("default", version), redirect, ("redirect", router.name, version))
            for at, port in enumerate(p for p in fips if distributed and p.host == host):
                self._ovn_fip(ns, plane, port, at, drops)
        if stage is not None:
            stage.ovn, stage.drops = True, drops
            redirected = tuple(("redirect", router.name, v) for v in (4, 6))
            hop = plane.cr_lrp(gw)
            stage.add(Iface(f"{hop}@router", hop, f"router:{router.name}", redirected, EXTERNAL, continues=True))
            for subnet in subnets:
                hop = plane.lrp(gw, subnet)
                mac = names.mac_of(names.router_port_id(router.name, "qr", subnet.name))
                stage.route(
                    "main", ("subnet", subnet.name), stage.add(Iface(f"{hop}@gateway", hop, subnet.network_id, (), mac))
                )
            self._ovn_gateway(stage, plane, [] if distributed else fips)

    def _ovn_gateway(self, ns: Namespace, plane: Plane, fips: list[Port]) -> None:
        """The gateway port's stage on the gateway chassis: SNAT, centralized floating IPs, the default route."""
        router, hop = plane.router, plane.cr_lrp(plane.nn)
        mac = names.mac_of(names.router_port_id(router.name, "qg"))
        held = tuple(("gw", router.name, v) for v in (4, 6)) + tuple(("fip", p.name, 4) for p in fips)
        out = ns.add(Iface(f"{hop}@{plane.external().name}", hop, plane.external().name, held, mac))
        for version in (4, 6):
            if version not in ns.drops:
                ns.route("main", ("default", version), out, ("external", "", version))
        for port in fips:
            ns.dnat[("fip", port.name, 4)] = fixed(port)
            ns.snat.append(Snat(out.id, ("addr", fixed(port)), ("fip", port.name, 4), "snat fixed->fip"))
        if plane.snat_enabled:
            ns.snat.append(Snat(out.id, ("default", 4), ("gw", router.name, 4), "snat fixed->qg"))

    def _ovn_fip(self, ns: Namespace, plane: Plane, port: Port, at: int, drops: dict[int, str]) -> None:
        """A distributed floating IP: NAT on the VM's chassis, out its gateway router port, whose MAC on the wire
        is the NAT row's ``external_mac``: the floating IP port's (``_create_or_update_floatingip``)."""
        hop = plane.gw_lrp(str(port.host))
        mac = names.mac_of(names.floatingip_port_id(port.name))
        out = ns.add(Iface(f"{hop}@{port.name}", hop, plane.external().name, (("fip", port.name, 4),), mac))
        table = f"fip:{port.name}"
        ns.rules.append(Rule(FIP_PR_START + at, ("addr", fixed(port)), table))
        if 4 not in drops:
            ns.route(table, ("default", 4), out, ("external", "", 4))
        ns.dnat[("fip", port.name, 4)] = fixed(port)
        ns.snat.append(Snat(out.id, ("addr", fixed(port)), ("fip", port.name, 4), "snat fixed->fip"))

    def _ovn_drops(self, plane: Plane) -> dict[int, str]:
        """ML2/OVN adds the default route as a static route to the external subnet's gateway with no output port
        (``OVNClient._add_router_ext_gw``, Neutron 29) and ovn-northd drops one whose next hop is in none of the
        router's networks (``build_static_route_flow``): a gateway outside its subnet leaves that IP version
        without a default route. (Neutron's L3 agent adds an on-link route instead: legacy and DVR reach it.)"""
        gateway = plane.router.external_gateway_info
        out: dict[int, str] = {}
        for fixed_ip in gateway.external_fixed_ips if gateway is not None else ():
            subnet = self.cloud.subnet[fixed_ip.subnet_id]
            if subnet.gateway_off_subnet:
                out.setdefault(
                    subnet.ip_version,
                    f"no default route: OVN drops the static route to {subnet.gateway_ip}, outside {subnet.cidr} "
                    "(ovn-northd: 'No path for static route')",
                )
        return out

    def _vm(self, port: Port) -> None:
        """A VM: its own subnets on-link, ``default via`` each IP version's first subnet's gateway."""
        assert port.host is not None  # vm_ports are bound
        hop = f"{port.host}:{names.tap_device(port.id)}"
        subnets = [self.cloud.subnet[f.subnet_id] for f in port.fixed_ips]
        versions = sorted({s.ip_version for s in subnets})
        ns = self._ns(hop, endpoint=True)
        mac = port.mac_address or names.mac_of(port.id)
        tap = ns.add(Iface(hop, hop, port.network_id, tuple(fixed(port, v) for v in versions), mac))
        for subnet in subnets:
            ns.route("main", ("subnet", subnet.name), tap)
        for version in versions:
            first = next(s for s in subnets if s.ip_version == version)
            gateway = self.owner(first)
            if gateway is not None:
                ns.route("main", ("default", version), tap, ("qr", gateway.router.name, first.name))

    def _outside(self) -> None:
        """The outside world: on each external network, the router's gateway addresses and floating IPs on-link,
        and each router's IPv6 subnets via its gateway (IPv6 is routed, not NATed; tenant IPv4 is not routed). It
        holds the external subnets' gateways and what lies beyond them (``beyond``: reached only by a default
        route)."""
        ns = self._ns(EXTERNAL, endpoint=True)
        for plane in self.planes.values():
            if plane.ext is None:
                continue
            ext = plane.ext.name
            iface = next((i for i in ns.ifaces if i.l2 == ext), None)
            if iface is None:
                held = tuple((kind, "", v) for kind in ("external", "beyond") for v in (4, 6))
                iface = ns.add(Iface(f"{EXTERNAL}@{ext}", EXTERNAL, ext, held, EXTERNAL))
            for version in (4, 6):
                ns.route("main", ("addr", ("gw", plane.router.name, version)), iface)
            for port in self.fips_of(plane):
                ns.route("main", ("addr", ("fip", port.name, 4)), iface)
            for subnet in self._subnets(plane):
                if subnet.ip_version == 6:
                    ns.route("main", ("subnet", subnet.name), iface, ("gw", plane.router.name, 6))
