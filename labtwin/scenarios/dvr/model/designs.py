"""What the path search does not draw: DHCP, the VIP after a failover, and the PTG's proposals.

Every router's east-west and north-south classes come from the path search through what its mode builds
(:mod:`.search`, :mod:`.namespaces`); the builders here map the remaining classes to a
:class:`~labtwin.scenarios.dvr.model.plane.Leg` (hops, NAT, reachability, why):

- :func:`neutron_ovs`: DHCP (qdhcp- or the OVS agent's dhcp extension), the VIP after a VRRP failover (the
  search's way, to the holder the router's ARP entry names) and the PTG proposals, which are labtwin's own
  builders because no Neutron agent has them: ``ipv6_fast_exit`` and ``distributed_snat``;
- :func:`ovn`: an ML2/OVN router's native DHCP, and its VIP (a ``virtual`` port: the search's way to the new
  master).

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

from ..spec import Endpoints, Vip, dhcp_host
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
        # Neutron 29 already sends IPv6 out the host's fip- (create_rtr_2_fip_link); the proposal adds what it lacks:
        # an IPv6 default route in fip- (destinations beyond the external subnet) and the way back in by fg-
        legs["ns-ipv6"] = Leg(
            fast(ends.ipv6, s6), note="proposed fast-exit: out the host's fip-, with an IPv6 default route there"
        )
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


# -- OVN: native DHCP and virtual ports --------------------------------------------
def ovn(p: Plane, ends: Endpoints, found: RouterSearch) -> Legs:
    """An OVN router's classes beyond the path search's: native DHCP, and the VIP (its port is ``virtual``, bound
    to the chassis that sent the GARP: the way to the new master is the search's)."""
    legs: Legs = {}
    if ends.dhcp:
        a = ends.dhcp
        legs["dhcp"] = Leg(
            hops(p.vm_out(a), f"{p.host(a)}:br-int:ovn-controller"), note="native DHCP from NB DHCP_Options"
        )
    if ends.vip:
        note = "the VIP's port is type virtual: OVN binds it to the chassis that sent the GARP"
        legs["vip-after-failover"] = replace(
            port_to_port(found, p.mode, ends.vip.client, ends.vip.new_master), note=note
        )
    return legs


# -- shared pieces ---------------------------------------------------------------
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
    agent = dhcp_host(p.cloud, a)
    if agent is None:
        legs["dhcp"] = Leg(
            hops(p.vm_out(a)), reachable=False, note="no DHCP agent hosts the network (its DHCP port got no address)"
        )
        return
    legs["dhcp"] = Leg(
        hops(p.vm_out(a), p.l2(a.network_id, p.host(a), agent), p.qdhcp(agent, network)),
        note="dnsmasq in qdhcp- on the DHCP agent's host",  # Neutron's WeightScheduler picked it (spec.dhcp_host)
    )
