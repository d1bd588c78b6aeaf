"""The dvr scenario's traffic matrix: each (router, class) cell's share of the packets, and the fraction of them
that crosses the network node. Shared by the model and the emulation, which weigh the same matrix over their own
paths.

A cell's weight stands for its flows' packets both ways: each flow's packets out and its reply's packets back
(``ns-fip-out`` and ``ns-fip-in`` are flows started from each side, each with its reply). A class's path out and
its reply may cross the network node differently: under Neutron 29's DVR, IPv6 leaves by the VM host's own
``fip-`` (``dvr_fip_ns.FipNamespace.create_rtr_2_fip_link``) and its reply comes back by ``snat-`` on the network
node. So a cell's load on the network node is the fraction of its packets that cross there
(:func:`crossing_fraction`).
"""

from __future__ import annotations

from typing import Iterable

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


def crosses_network_node(cloud: Cloud, hops: Iterable[str]) -> bool:
    """True when a hop (``host:namespace:device``) is on a host whose role is ``network``. Every network node
    counts, by the cloud's roles (an HA router's two L3 agents' hosts, say), not only the first that
    :func:`~labtwin.scenarios.dvr.spec.network_node` names. The one rule for ``via_network_node`` in the model
    (:mod:`.model.paths`) and in every emulation (:mod:`.emulation.probing`), and for a reply here.

    >>> from labtwin.description import load_cloud
    >>> from labtwin.scenarios import topologies_dir
    >>> cloud = load_cloud(topologies_dir() / "dvr.yaml")
    >>> crosses_network_node(cloud, ["compute-1:br-int", "network-1:snat-x:sg-y"])
    True
    >>> crosses_network_node(cloud, ["compute-1:br-int", "fabric", "external"])
    False
    """
    for hop in hops:
        host = cloud.host.get(hop.split(":", 1)[0])
        if host is not None and host.role == "network":
            return True
    return False


def crossing_fraction(cloud: Cloud, path: dict) -> float:
    """The fraction of a class's packets that cross the network node, from its ``summary["paths"]`` entry.

    With a reply path: (out crosses + reply crosses) / 2, the way out as the backend decided
    ``via_network_node``, the reply's ``reply`` hops by :func:`crosses_network_node`, the same rule. Without one
    (the class is unreachable, or its answer never comes), all its packets go out: the way out alone decides.

    Simplification stated here (symmetric volume): a flow sends as many packets back as out. Request-response
    traffic does; a bulk transfer acknowledged by delayed ACKs sends about half as many back, not modelled.

    >>> from labtwin.description import load_cloud
    >>> from labtwin.scenarios import topologies_dir
    >>> cloud = load_cloud(topologies_dir() / "dvr.yaml")
    >>> out, back = ["compute-1:qrouter-r:rfp-1", "compute-1:fip-n:fg-1"], ["network-1:snat-r:qg-1", "compute-1:br-int"]
    >>> crossing_fraction(cloud, {"via_network_node": False, "hops": out, "reply": back})
    0.5
    >>> crossing_fraction(cloud, {"via_network_node": True, "hops": back, "reply": []})
    1.0
    """
    if "reply" not in path:
        raise ValueError(
            f"router {path.get('router')!r} class {path.get('class')!r}: the path has no 'reply' (both backends "
            "write one since 4593588; re-record a run from before it)"
        )
    out = 1.0 if path["via_network_node"] else 0.0
    reply = path["reply"] or ()
    if not reply:
        return out
    return (out + (1.0 if crosses_network_node(cloud, reply) else 0.0)) / 2


def traffic_matrix(cloud: Cloud, design: DvrDesign, paths: list[dict]) -> tuple[dict[Cell, float], dict[Cell, float]]:
    """The matrix's share of packets per (router, class), and the fraction of each cell's packets that crosses the
    network node (:func:`crossing_fraction`: out and reply).

    *paths* are the ``summary["paths"]`` entries either backend writes (``router``, ``class``, ``hops``,
    ``via_network_node``, ``reply``): a class is present where its path has hops. Within a router, classes are
    weighed by :func:`class_weights`; routers by :func:`router_shares`.
    """
    routers = [r for r in studied_routers(cloud) if any(p["router"] == r.name for p in paths)]
    shares = router_shares(cloud, routers)
    weights: dict[Cell, float] = {}
    for router in routers:
        present = {p["class"] for p in paths if p["router"] == router.name and p["hops"]}
        for cls, w in class_weights(design, same_host_ratio(cloud, router), present).items():
            weights[(router.name, cls)] = shares[router.name] * w
    crossing = {(p["router"], p["class"]): crossing_fraction(cloud, p) for p in paths}
    return weights, crossing


def expected_share(weights: dict[Cell, float], crossing: dict[Cell, float]) -> float:
    """The matrix's share of packets that cross the network node: each cell's weight times its crossing fraction
    (exact, no sampling; a cell without a path crosses nowhere)."""
    return sum((w * crossing.get(cell, 0.0) for cell, w in weights.items()), 0.0)


def weights_by_router(weights: dict[Cell, float]) -> dict[str, dict[str, float]]:
    """The matrix as the run summary writes it: ``{router: {class: share}}``, rounded."""
    out: dict[str, dict[str, float]] = {}
    for (router, cls), w in weights.items():
        out.setdefault(router, {})[cls] = round(w, 6)
    return out
