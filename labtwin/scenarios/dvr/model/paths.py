"""The hop path of each traffic class, per router design (legacy, DVR, OVN).

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
the snat- namespace on the network node, and so is all IPv6. OVN routes
east-west in OpenFlow on the source chassis, centralizes SNAT (and FIPs unless
``enable_distributed_floating_ip``) on the gateway chassis's cr-lrp, answers
DHCP in ovn-controller, and binds a VIP's ``virtual`` port to the chassis that
sent the GARP.

This module only says where packets go; it does not evaluate security groups
(the reachability scenario does) and assumes the topology's groups admit each
class's probe.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Optional

from labtwin.description import Cloud

from ..spec import (
    CLASSES,
    DvrDesign,
    Endpoints,
    Vip,
    external_network,
    network_node,
    pick_endpoints,
    probe_of,
    the_router,
)
from . import designs as dvr_designs
from .plane import EXTERNAL, FABRIC, Leg, Plane, hops

ROUTERS = ("legacy", "dvr", "ovn")


@dataclass(frozen=True)
class ClassPath:
    """Where one traffic class goes under one design, and what happens to it."""

    traffic_class: str
    src: str
    dst: str
    protocol: str
    port: Optional[int]
    hops: tuple[str, ...]
    via_network_node: bool
    nat: str
    reachable: Optional[bool]
    note: str = ""

    def as_dict(self) -> dict:
        data = asdict(self)
        data["class"] = data.pop("traffic_class")
        data["hops"] = list(self.hops)
        return data


def crosses(cloud: Cloud, path: tuple[str, ...]) -> bool:
    """True when any hop is on a host with role ``network``."""
    return any(
        hop.split(":", 1)[0] in cloud.host and cloud.host[hop.split(":", 1)[0]].role == "network" for hop in path
    )


BUILDERS: dict[str, Callable[[Plane, Endpoints], dict[str, Leg]]] = {
    "legacy": dvr_designs.legacy,
    "dvr": dvr_designs.dvr,
    "ovn": dvr_designs.ovn,
}


def class_paths(cloud: Cloud, design: DvrDesign) -> list[ClassPath]:
    """One :class:`ClassPath` per traffic class, in :data:`CLASSES` order."""
    if design.router not in ROUTERS:
        raise ValueError(f"router must be one of {', '.join(ROUTERS)}, not {design.router!r}")
    router = the_router(cloud)
    plane = Plane(cloud, router, network_node(cloud).name, external_network(cloud, router), design)
    ends = pick_endpoints(cloud, router)
    legs = BUILDERS[design.router](plane, ends)
    out = []
    for cls in CLASSES:
        src, dst, protocol, port = probe_of(cls, ends)
        leg = legs.get(cls)
        if leg is None:
            out.append(
                ClassPath(cls, src, dst, protocol, port, (), False, "none", None, "no fitting ports in this topology")
            )
            continue
        out.append(
            ClassPath(
                cls, src, dst, protocol, port, leg.hops, crosses(cloud, leg.hops), leg.nat, leg.reachable, leg.note
            )
        )
    return out


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
