"""The dvr scenario's traffic matrix: each (router, class) cell's share of the packets, and which cross the
network node. Shared by the model and the emulation, which weigh the same matrix over their own paths.
"""

from __future__ import annotations

from labtwin.description import Cloud, Router

from .knobs import DvrDesign
from .spec import routed_subnet, same_host_ratio, studied_routers

#: DHCP and traffic to the VRRP VIP are small fixed shares of the matrix (not sourced: they set scale).
DHCP_SHARE = 0.01
VIP_SHARE = 0.02


def class_weights(design: DvrDesign, same_host_ratio: float, present: set[str]) -> dict[str, float]:
    """Share of the matrix's packets per class; absent classes get none (the rest renormalize).

    >>> design = DvrDesign.of({"ew_fraction": 0.5, "ipv6_fraction": 0.2, "fip_fraction": 0.5})
    >>> w = class_weights(design, 0.5, {"ns-snat", "ns-ipv6"})
    >>> round(w["ns-snat"], 3), round(w["ns-ipv6"], 3), w["dhcp"]
    (0.667, 0.333, 0.0)
    """
    bulk = 1.0 - DHCP_SHARE - VIP_SHARE
    ew, ns = bulk * design.ew_fraction, bulk * (1.0 - design.ew_fraction)
    v6, v4 = ns * design.ipv6_fraction, ns * (1.0 - design.ipv6_fraction)
    fip = v4 * design.fip_fraction
    raw = {
        "ew-same-host": ew * same_host_ratio,
        "ew-same-network": 0.0,  # switched, never routed: the matrix is the routers' traffic
        "ew-cross-host": ew * (1.0 - same_host_ratio),
        "ns-fip-out": fip / 2,
        "ns-fip-in": fip / 2,
        "ns-snat": v4 - fip,
        "ns-ipv6": v6,
        "dhcp": DHCP_SHARE,
        "vip-after-failover": VIP_SHARE,
    }
    kept = {cls: (w if cls in present else 0.0) for cls, w in raw.items()}
    total = sum(kept.values())
    return {cls: (w / total if total else 0.0) for cls, w in kept.items()}


def router_shares(cloud: Cloud, routers: list[Router]) -> dict[str, float]:
    """Each router's share of the traffic matrix: its VMs (ports with a subnet it routes) over all routers'.

    A simplification stated here: every VM offers the same number of flows, and a VM on two routers' subnets
    counts once for each.
    """
    counts = {r.name: sum(routed_subnet(cloud, r, p) is not None for p in cloud.vm_ports) for r in routers}
    total = sum(counts.values())
    return {name: (n / total if total else 0.0) for name, n in counts.items()}


#: A traffic-matrix cell: (router name, traffic class).
Cell = tuple[str, str]


def traffic_matrix(cloud: Cloud, design: DvrDesign, paths: list[dict]) -> tuple[dict[Cell, float], dict[Cell, bool]]:
    """The matrix's share of packets per (router, class), and whether each crosses the network node.

    *paths* are the ``summary["paths"]`` entries either backend writes (``router``, ``class``, ``hops``,
    ``via_network_node``): a class is present where its path has hops. Within a router, classes are weighed
    by :func:`class_weights`; routers by :func:`router_shares`.
    """
    routers = [r for r in studied_routers(cloud) if any(p["router"] == r.name for p in paths)]
    shares = router_shares(cloud, routers)
    weights: dict[Cell, float] = {}
    for router in routers:
        present = {p["class"] for p in paths if p["router"] == router.name and p["hops"]}
        for cls, w in class_weights(design, same_host_ratio(cloud, router), present).items():
            weights[(router.name, cls)] = shares[router.name] * w
    crossing = {(p["router"], p["class"]): bool(p["via_network_node"]) for p in paths}
    return weights, crossing


def expected_share(weights: dict[Cell, float], crossing: dict[Cell, bool]) -> float:
    """The matrix's share of packets that cross the network node (exact, no sampling)."""
    return sum((w for cell, w in weights.items() if crossing.get(cell)), 0.0)


def weights_by_router(weights: dict[Cell, float]) -> dict[str, dict[str, float]]:
    """The matrix as the run summary writes it: ``{router: {class: share}}``, rounded."""
    out: dict[str, dict[str, float]] = {}
    for (router, cls), w in weights.items():
        out.setdefault(router, {})[cls] = round(w, 6)
    return out
