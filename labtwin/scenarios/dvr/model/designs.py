"""What the path search does not draw: OVN's routers, and for ML2/OVS routers DHCP, the VIP and the PTG's proposals.

A legacy or DVR router's east-west and north-south classes come from the path search through the namespaces its
mode builds (:mod:`.search`, :mod:`.namespaces`); the builders here map the remaining classes to a
:class:`~labtwin.scenarios.dvr.model.plane.Leg` (hops, NAT, reachability, why):

- :func:`neutron_ovs`: DHCP (qdhcp- or the OVS agent's dhcp extension), the VIP after a VRRP failover (the
  search's way, to the holder the router's ARP entry names) and the PTG proposals, which are labtwin's own
  builders because no Neutron agent has them: ``ipv6_fast_exit`` and ``distributed_snat``;
- :func:`ovn`: every class of an ML2/OVN logical router (OpenFlow stages, no namespaces).

Classes whose ports the topology lacks are left out. NAT strings say which address the far end sees:
``snat fixed->fip``, ``dnat fip->fixed``, ``snat fixed->qg`` (the router's
gateway address: under OVN the same address, on the gateway port's ``cr-lrp``),
``snat fixed->fg`` (the host's FIP gateway address), or ``none``.

Knobs that do not apply to a design are ignored there and say so in the note:
``ipv6_fast_exit`` and ``distributed_snat`` need DVR's fip- namespace;
``vip_arp`` is about DVR's permanent ARP entries; OVN always answers DHCP
natively and has no fast-exit for IPv6 (ml2ovs-ovn-convergence spec).
"""

from __future__ import annotations

from dataclasses import replace

from ..spec import Endpoints, Vip
from .plane import Leg, Plane, hops
from .search import RouterSearch, port_to_port

Legs = dict[str, Leg]


# -- ML2/OVS routers (legacy and DVR): what the path search does not give -----------------------------------
def neutron_ovs(p: Plane, ends: Endpoints, found: RouterSearch) -> Legs:
    """A legacy or DVR router's classes beyond the path search's east-west and north-south ones
    (:func:`~labtwin.scenarios.dvr.model.search.router_legs`): DHCP, the VIP after a VRRP failover, and under
    DVR the PTG's proposals, which no Neutron agent builds and labtwin draws itself: ``ipv6_fast_exit`` (IPv6
    out the host's fip- namespace) and ``distributed_snat`` (SNAT to the host's fg- address). The VIP's way is
    the search's; which holder it reaches is the ARP decision drawn here."""
    legs: Legs = {}
    d = p.design

    def fast(a, subnet):  # out through the host's own fip- namespace
        return hops(p.vm_out(a), p.qr(p.host(a), subnet), p.fip_leg(p.host(a)), p.egress(p.host(a)))

    if p.mode == "dvr" and ends.snat and d.distributed_snat:
        legs["ns-snat"] = _snat_leg(
            p,
            fast(ends.snat, p.subnet(ends.snat)),
            "snat fixed->fg",
            ("proposed distributed SNAT: sourced from the host's FIP gateway (fg-) address"),
        )
    if p.mode == "dvr" and ends.ipv6 and d.ipv6_fast_exit:
        s6 = p.subnet(ends.ipv6, 6)
        legs["ns-ipv6"] = Leg(fast(ends.ipv6, s6), note="proposed fast-exit: routed out the host's fip- namespace")
    _dhcp(legs, p, ends)
    if ends.vip:
        legs["vip-after-failover"] = _vip(p, ends.vip, found)
    return legs


def _vip(p: Plane, v: Vip, found: RouterSearch) -> Leg:
    """A legacy qrouter's neighbour entry is dynamic (the new master's GARP updates it); a DVR router's is the
    permanent entry the server wrote (bug 1774459), unless ARP is learned."""
    if p.mode == "legacy" or p.design.vip_arp == "learned":
        note = (
            "the legacy qrouter's neighbour entry for the VIP is dynamic: the new master's GARP updates it"
            if p.mode == "legacy"
            else "learned ARP: the new master's GARP reaches the qrouter (br-int table 0 prio 99, tables 3/4)"
        )
        return replace(port_to_port(found, p.mode, v.client, v.new_master), note=note)
    return replace(
        port_to_port(found, p.mode, v.client, v.old_master),
        reachable=False,
        note=(
            f"bug 1774459: permanent ARP entry {v.ip} -> {v.old_master.mac_address} ({v.old_master.name}) "
            "survives the failover; no API event updates it"
        ),
    )


# -- OVN: logical routers in OpenFlow, gateway chassis for SNAT ------------------
def ovn(p: Plane, ends: Endpoints) -> Legs:
    legs: Legs = {}
    gw = p.nn
    distributed_fip = p.design.ovn_distributed_fip

    def route(a, b, sb):
        sa = p.subnet(a)
        if p.resides_on_gateway(sa):  # switched to the gateway chassis on a's network, routed there
            return hops(
                p.vm_out(a),
                p.l2(a.network_id, p.host(a), gw),
                p.lrp(gw, sa),
                p.lrp(gw, sb),
                p.l2(b.network_id, gw, p.host(b)),
                p.vm_in(b),
            )
        return hops(
            p.vm_out(a),
            p.lrp(p.host(a), sa),
            p.lrp(p.host(a), sb),
            p.l2(b.network_id, p.host(a), p.host(b)),
            p.vm_in(b),
        )

    def central(a, subnet):
        if p.resides_on_gateway(subnet):  # switched to the gateway chassis, routed and NATed there
            return hops(p.vm_out(a), p.l2(a.network_id, p.host(a), gw), p.lrp(gw, subnet), p.cr_lrp(gw), p.egress(gw))
        return hops(
            p.vm_out(a), p.lrp(p.host(a), subnet), p.l2(a.network_id, p.host(a), gw), p.cr_lrp(gw), p.egress(gw)
        )

    def central_reply(a, subnet):  # routed on the gateway chassis, then switched to the VM's chassis
        return hops(p.ingress(gw), p.cr_lrp(gw), p.lrp(gw, subnet), p.l2(a.network_id, gw, p.host(a)), p.vm_in(a))

    _east_west(
        legs, ends, lambda a, b: Leg(route(a, b, p.subnet(b)), note="distributed in OpenFlow on the source chassis")
    )
    _same_network(legs, p, ends)
    if ends.fip:
        a, s = ends.fip, p.subnet(ends.fip)
        if distributed_fip:
            legs["ns-fip-out"] = Leg(
                hops(p.vm_out(a), p.lrp(p.host(a), s), p.gw_lrp(p.host(a)), p.egress(p.host(a))),
                "snat fixed->fip",
                note="enable_distributed_floating_ip: NAT on the VM's chassis",
            )
            legs["ns-fip-in"] = Leg(
                hops(p.ingress(p.host(a)), p.gw_lrp(p.host(a)), p.lrp(p.host(a), s), p.vm_in(a)), "dnat fip->fixed"
            )
        else:
            legs["ns-fip-out"] = Leg(
                central(a, s), "snat fixed->fip", note="FIPs are centralized by default", reply=central_reply(a, s)
            )
            legs["ns-fip-in"] = Leg(
                hops(p.ingress(gw), p.cr_lrp(gw), p.lrp(gw, s), p.l2(a.network_id, gw, p.host(a)), p.vm_in(a)),
                "dnat fip->fixed",
                note=(
                    "FIPs are centralized by default; the VM's answer is routed on its own chassis and redirected "
                    "to the gateway chassis (seen in real OVN: Geneve on the router's datapath to cr-lrp)"
                ),
                reply=central(a, s),
            )
    if ends.snat:
        legs["ns-snat"] = _snat_leg(
            p,
            central(ends.snat, p.subnet(ends.snat)),
            "snat fixed->qg",
            "SNAT to the router's gateway address, on its active gateway chassis (cr-lrp)",
            central_reply(ends.snat, p.subnet(ends.snat)),
        )
    if ends.ipv6:
        s6 = p.subnet(ends.ipv6, 6)
        legs["ns-ipv6"] = Leg(
            central(ends.ipv6, s6),
            note="through the gateway chassis; no fast-exit",
            reply=central_reply(ends.ipv6, s6),
        )
    if ends.dhcp:
        a = ends.dhcp
        legs["dhcp"] = Leg(
            hops(p.vm_out(a), f"{p.host(a)}:br-int:ovn-controller"), note="native DHCP from NB DHCP_Options"
        )
    if ends.vip:
        v = ends.vip
        legs["vip-after-failover"] = Leg(
            route(v.client, v.new_master, v.subnet),
            reply=route(v.new_master, v.client, p.subnet(v.client)),
            note=("the VIP's port is type virtual: OVN binds it to the chassis that sent the GARP"),
        )
    return _without_default_route(legs, p)


#: The north-south classes per IP version: what the router's default route carries (out, or the reply).
NORTH_SOUTH_BY_VERSION = {4: ("ns-fip-out", "ns-fip-in", "ns-snat"), 6: ("ns-ipv6",)}


def _without_default_route(legs: Legs, p: Plane) -> Legs:
    """ML2/OVN adds the router's default route as a static route with the external subnet's gateway as next hop
    and no output port (``OVNClient._add_router_ext_gw``, Neutron 29; the output port only with BFD), and
    ovn-northd drops a static route whose next hop is in none of the router's port networks ("No path for
    static route", ``build_static_route_flow``). An external subnet whose gateway lies outside it
    (``Subnet.gateway_off_subnet``, which Neutron accepts) so leaves the OVN router without a default route
    for that IP version: its north-south classes go out or come in, and their packets or replies are dropped
    at the router. (Neutron's L3 agent adds an on-link route instead, so legacy and DVR routers reach it.)"""
    gateway = p.router.external_gateway_info
    if gateway is None:
        return legs
    for fixed in gateway.external_fixed_ips:
        subnet = p.cloud.subnet[fixed.subnet_id]
        if not subnet.gateway_off_subnet:
            continue
        why = (
            f"no default route: OVN drops the static route to {subnet.gateway_ip}, outside {subnet.cidr} "
            "(ovn-northd: 'No path for static route')"
        )
        for cls in NORTH_SOUTH_BY_VERSION[subnet.ip_version]:
            if cls in legs:
                legs[cls] = _dropped_at_router(cls, legs[cls], why)
    return legs


def _dropped_at_router(cls: str, leg: Leg, why: str) -> Leg:
    """*leg* with no route out: a packet leaving is dropped by the router's first stage on its own chassis
    (its path ends on br-int, no NAT); a packet coming in (``ns-fip-in``) arrives, its reply is dropped."""
    if cls != "ns-fip-in":
        first_stage = next(i for i, hop in enumerate(leg.hops) if ":br-int:" in hop)
        leg = replace(leg, hops=leg.hops[:first_stage], nat="none")
    return replace(leg, reachable=False, note=why)


# -- shared pieces ---------------------------------------------------------------
def _east_west(legs: Legs, ends: Endpoints, leg) -> None:
    """East-west both ways: the reply is the same design's path from the destination back (under DVR and OVN
    it is routed on the destination's host, so it differs from the request's hops read backwards)."""
    for cls, pair in (("ew-same-host", ends.ew_same_host), ("ew-cross-host", ends.ew_cross_host)):
        if pair:
            a, b = pair
            legs[cls] = replace(leg(a, b), reply=leg(b, a).hops)


def _same_network(legs: Legs, p: Plane, ends: Endpoints) -> None:
    """Two VMs on one subnet: switched between their hosts on the network's segment, no router (the same in
    every design: the networking guide's east-west scenario 1)."""
    if ends.ew_same_network:
        a, b = ends.ew_same_network
        path = hops(p.vm_out(a), p.l2(a.network_id, p.host(a), p.host(b)), p.vm_in(b))
        legs["ew-same-network"] = Leg(path, note="switched on the network's segment: no router, no NAT")


def _snat_leg(p: Plane, path, nat: str, note: str = "", reply=None) -> Leg:
    if not p.snat_enabled:
        return Leg(path, "none", False, "enable_snat is false: fixed addresses leave unNATed, replies do not return")
    return Leg(path, nat, True, note, reply)


def _dhcp(legs: Legs, p: Plane, ends: Endpoints) -> None:
    """ML2/OVS DHCP: qdhcp- on the DHCP agent's host, or the OVS agent's dhcp extension (table 77)."""
    a = ends.dhcp
    if a is None:
        return
    if p.design.distributed_dhcp:
        legs["dhcp"] = Leg(
            hops(p.vm_out(a), f"{p.host(a)}:br-int:table77"),
            note=("OVS agent dhcp extension: br-int table 60 -> 77, packet-in, reply out in_port"),
        )
        return
    network = p.cloud.network[a.network_id]
    legs["dhcp"] = Leg(
        hops(p.vm_out(a), p.l2(a.network_id, p.host(a), p.nn), p.qdhcp(p.nn, network)),
        note="dnsmasq in qdhcp- on the DHCP agent's host",
    )
