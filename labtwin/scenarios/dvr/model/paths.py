"""The hop path of each traffic class, per router mode (legacy, DVR, OVN): the east-west and north-south classes
found by the path search through the cloud's routers (:mod:`.search`), DHCP, the VIP and the PTG's proposals
drawn by :mod:`.designs`.

A hop is one of

- ``host:device`` -- a device in the host's root namespace: a VM's ``tap``,
  or an OVS bridge (``br-int``, ``br-tun``, ``br-ex`` / the physnet's bridge);
- ``host:namespace:device`` -- a device inside a namespace (``qrouter-``,
  ``snat-``, ``fip-``, ``qdhcp-``);
- ``host:br-int:stage`` -- a stage of an OpenFlow pipeline with no Linux device:
  OVN's logical router ports (``lrp-<id>``, ``cr-lrp-<id>``), OVN's native DHCP
  (``ovn-controller``), the OVS agent's distributed DHCP (``table77``);
- ``fabric`` (the physical network between hosts) and ``external`` (the outside world).

Facts (neutron-facts.md section 2): legacy routes everything in the network
node's qrouter-. DVR routes east-west in the source host's qrouter- (then DVR
MAC rewriting on br-tun, restored by br-int on the far side) and floating IPs
through rfp-/fpr- and the host's fip- namespace (fg-, proxy ARP); IPv4 without
a FIP is redirected (per-subnet rule and table, ``default via`` the sg- IP) to
the snat- namespace on the network node; IPv6 leaves by the VM host's own fip-
(Neutron 29 ``create_rtr_2_fip_link``: a main-table IPv6 default via fpr-,
looked up before the redirect; not the guide's "via the centralized router"),
reaches only the external subnet there, and its reply comes back by snat-. OVN routes
east-west in OpenFlow on the source chassis, centralizes SNAT (and FIPs unless
``enable_distributed_floating_ip``) on the gateway chassis's cr-lrp, answers
DHCP in ovn-controller, and binds a VIP's ``virtual`` port to the chassis that
sent the GARP.

Security groups filter every class (:mod:`labtwin.scenarios.dvr.groups`, the
reachability scenario's verdicts): a probe a group drops ends where the filter sits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Optional

from labtwin.description import Cloud
from labtwin.description.policy import Verdict
from labtwin.scenarios.base import ScenarioError

from .. import groups
from ..knobs import DvrDesign
from ..matrix import crosses_network_node
from ..spec import (
    CLASSES,
    Endpoints,
    Vip,
    design_conflicts,
    external_network,
    gateway_host,
    pick_endpoints,
    probe_of,
    router_mode,
    studied_routers,
)
from . import designs as dvr_designs
from .plane import EXTERNAL, FABRIC, Leg, Plane, hops
from .search import RouterSearch, router_legs
from .wire import Wire, ttl_at_arrival, wires

ROUTERS = ("legacy", "dvr", "ovn")


@dataclass(frozen=True)
class ClassPath:
    """Where one traffic class goes under one design, and what happens to it."""

    traffic_class: str
    router: str
    mode: str  # the router's mode: legacy | dvr | ovn
    src: str
    dst: str
    protocol: str
    port: Optional[int]
    hops: tuple[str, ...]
    via_network_node: bool
    nat: str
    reachable: Optional[bool]
    note: str = ""
    #: What the packet walk adds (:mod:`.wire`): the fabric crossings, the TTL at arrival (None: it never
    #: arrives), and the same for the reply.
    wires: tuple[Wire, ...] = ()
    ttl: Optional[int] = None
    reply: tuple[str, ...] = ()
    reply_wires: tuple[Wire, ...] = ()
    reply_ttl: Optional[int] = None

    def as_dict(self) -> dict:
        data = asdict(self)
        data["class"] = data.pop("traffic_class")
        data["hops"] = list(self.hops)
        data["reply"] = list(self.reply)
        data["wires"] = [w.as_dict() for w in self.wires]
        data["reply_wires"] = [w.as_dict() for w in self.reply_wires]
        return data


#: True when any hop is on a host with role ``network``: the one rule both backends and the matrix share.
crosses = crosses_network_node


NORTH_SOUTH = ("ns-fip-out", "ns-fip-in", "ns-snat", "ns-ipv6")


def class_paths(cloud: Cloud, design: DvrDesign) -> list[ClassPath]:
    """One :class:`ClassPath` per studied router and traffic class: routers in file order, each in the mode
    :func:`~labtwin.scenarios.dvr.spec.router_mode` gives it, classes in :data:`CLASSES` order.

    Every router's east-west and north-south classes come from the path search through the cloud's routers
    (:func:`~labtwin.scenarios.dvr.model.search.router_legs`, all routers in one search, each in its own mode);
    DHCP, the VIP's ARP decision and the PTG's proposals from :func:`.designs.neutron_ovs` (legacy, DVR) and
    :func:`.designs.ovn`.

    A probe an earlier router already has (a DHCP port on two routers' subnets) is kept once, with the first.
    """
    conflicts = design_conflicts(cloud, design)
    if conflicts:
        raise ScenarioError("; ".join(conflicts))
    out: list[ClassPath] = []
    probed: dict[tuple, str] = {}  # probe -> the router it is studied under
    planes = {}
    for router in studied_routers(cloud):
        mode = router_mode(router, design)
        if mode not in ROUTERS:
            raise ValueError(f"router must be one of {', '.join(ROUTERS)}, not {mode!r}")
        gateway = gateway_host(cloud, design, mode)
        planes[router.name] = Plane(cloud, router, mode, gateway, external_network(cloud, router), design)
    found = RouterSearch(cloud, planes, design)
    for router in studied_routers(cloud):
        plane, ends = planes[router.name], pick_endpoints(cloud, router)
        mode = plane.mode
        beyond = dvr_designs.ovn if mode == "ovn" else dvr_designs.neutron_ovs
        legs = {**router_legs(found, plane, ends), **beyond(plane, ends, found)}
        for cls in CLASSES:
            src, dst, protocol, port = probe_of(cls, ends)
            leg = legs.get(cls)
            if leg is None or (src, dst, protocol, port) in probed:
                why = _why_absent(router, cls, probed.get((src, dst, protocol, port)))
                out.append(ClassPath(cls, router.name, mode, src, dst, protocol, port, (), False, "none", None, why))
                continue
            probed[(src, dst, protocol, port)] = router.name
            leg = filtered(leg, groups.verdict(cloud, plane.ext, cls, ends))
            walk = _walk(plane, leg, cls, ends)
            out.append(
                ClassPath(
                    cls,
                    router.name,
                    mode,
                    src,
                    dst,
                    protocol,
                    port,
                    leg.hops,
                    crosses(cloud, leg.hops),
                    leg.nat,
                    leg.reachable,
                    leg.note,
                    **walk,
                )
            )
    return out


def _walk(plane: Plane, leg: Leg, cls: str, ends: Endpoints) -> dict:
    """The wires, TTL and reply of one class (:mod:`.wire`); an unreachable class has no arrival and no reply."""
    reply = leg.reply_hops
    crossed = leg.hops.count(FABRIC)
    if leg.found is not None:  # the path search's own walk
        return {
            "wires": tuple(leg.found.wires[:crossed]),
            "ttl": leg.found.ttl if leg.reachable else None,
            "reply": reply,
            "reply_wires": tuple(leg.found.reply_wires) if reply else (),
            "reply_ttl": leg.found.reply_ttl if reply else None,
        }
    fip = ends.fip if cls in ("ns-fip-out", "ns-fip-in") else None
    dhcp = cls == "dhcp"
    return {
        "wires": tuple(wires(plane, leg.routed or leg.hops, broadcast=dhcp, fip_port=fip)[:crossed]),
        "ttl": ttl_at_arrival(leg.hops) if leg.reachable else None,
        "reply": reply,
        "reply_wires": tuple(wires(plane, reply, fip_port=fip)),
        "reply_ttl": ttl_at_arrival(reply) if reply else None,
    }


def filtered(leg: Leg, found: Optional[Verdict]) -> Leg:
    """*leg* as the security groups leave it: unchanged when they let it through; else it ends where the filter
    sits, the sender's first bridge (``qbr`` with the iptables hybrid driver, ``br-int`` with the OVS firewall
    and under OVN, the Linux bridge agent's ``brq``) for egress, the receiver's last bridge before its tap for
    ingress. Nothing arrives, so no NAT is seen and no reply comes back."""
    if found is None or found.allowed or not found.dropped_by or not leg.reachable:
        return leg
    hops = leg.hops[:2] if found.dropped_by == "egress" else leg.hops[:-1]
    why = f"security groups: {found.reason}"
    return replace(leg, hops=hops, nat="none", reachable=False, note=why, routed=leg.routed or leg.hops)


def _why_absent(router, cls: str, studied_under: Optional[str]) -> str:
    if studied_under is not None:
        return f"the same probe as router {studied_under!r}'s"
    if cls in NORTH_SOUTH and router.external_gateway_info is None:
        return f"router {router.name!r} has no external gateway"
    return "no fitting ports in this topology"


__all__ = [
    "CLASSES",
    "ClassPath",
    "EXTERNAL",
    "FABRIC",
    "Leg",
    "Plane",
    "ROUTERS",
    "Vip",
    "class_paths",
    "crosses",
    "hops",
    "probe_of",
]
