"""Model of the ``dvr`` scenario: packet paths per traffic class, network-node load, VIP and gateway failover.

Four parts, each its own module:

- :mod:`.paths`: the hop path of each class per router, in the router's own mode
  (``legacy``, ``dvr``, ``ovn``: east-west and north-south searched through
  the namespaces, rules and routes Neutron's L3 agent builds or OVN's logical
  router stages, :mod:`.search`; DHCP, the VIP and the PTG's options drawn by
  :mod:`.designs`); whether it crosses the network node; its NAT;
  and whether the VIP answers after a VRRP failover;
- :mod:`.traffic`: a SimPy DES of a traffic matrix through the network
  node (share, queueing delay, loss);
- :mod:`.failover`: a SimPy DES of the failover and the recovery time;
- :mod:`.gateway`: a SimPy DES of an OVN gateway chassis failing (BFD) and north-south recovery;
- :mod:`.ha_router`: a SimPy DES of a legacy HA router's keepalived master losing its HA link (VRRP).

``simulate`` returns one :class:`~labtwin.records.Run`: one probe per class
(src, dst, protocol, port; ``allowed`` when reachable; the path in ``detail``),
the failover's events, and metrics; the summary holds ``paths``,
``network_node_share`` and the DES figures.
"""

from __future__ import annotations

import random
from typing import Any, Mapping, Optional

from labtwin.description import Cloud
from labtwin.records import Recorder, Run

from ..gateway_cut import gateway_chassis
from ..knobs import FLOW_PPS, DvrDesign
from ..matrix import Cell, expected_share, traffic_matrix, weights_by_router
from ..spec import gateway_host, modes_said, network_node, pick_endpoints, router_mode, studied_routers
from .failover import run_failover
from .gateway import mean_gateway_failover
from .ha_router import mean_ha_failover
from .paths import CLASSES, ClassPath, class_paths
from .traffic import run_traffic

#: Simulated seconds of traffic per run.
TRAFFIC_DURATION_S = 1.0


def matrix(cloud: Cloud, design: DvrDesign, paths: list[ClassPath]) -> tuple[dict[Cell, float], dict[Cell, float]]:
    """Weights of the traffic matrix per (router, class) and the fraction of each cell's packets that crosses the
    network node (its way out and its reply: :func:`~labtwin.scenarios.dvr.matrix.crossing_fraction`)."""
    return traffic_matrix(cloud, design, [p.as_dict() for p in paths])


def simulate(
    cloud: Cloud, design: Mapping[str, Any], seed: int, topology: str = "", duration: float = TRAFFIC_DURATION_S
) -> Run:
    """Paths, the traffic DES and the failover DES for one design on *cloud*."""
    design = DvrDesign.of(design)
    rng, rec = random.Random(seed), Recorder()
    paths = class_paths(cloud, design)
    for p in paths:
        if p.hops:
            detail: dict[str, Any] = {  # "class" is a keyword: the detail goes in as a dict
                "class": p.traffic_class,
                "router": p.router,
                "mode": p.mode,
                "hops": list(p.hops),
                "via_network_node": p.via_network_node,
                "nat": p.nat,
                "note": p.note,
                "ttl": p.ttl,
                "wires": [w.as_dict() for w in p.wires],
                "reply": list(p.reply),
                "reply_ttl": p.reply_ttl,
            }
            rec.probe(p.src, p.dst, p.protocol, p.port, "allowed" if p.reachable else "blocked", **detail)
    weights, crossing = matrix(cloud, design, paths)
    stats = run_traffic(weights, crossing, design.flows, design.nn_capacity_pps, rng, duration)
    summary = {
        "router_modes": modes_said(cloud, design),
        "paths": [p.as_dict() for p in paths],
        "network_node": network_node(cloud).name,
        "network_node_share": round(expected_share(weights, crossing), 6),
        "class_weights": weights_by_router(weights),
        **{k: round(v, 6) for k, v in stats.summary(design.nn_capacity_pps).items()},
        "failover_recovery_s": _failover(cloud, design, rng, rec),
        **_gateway_failover(cloud, design, rng, rec),
        **_ha_failover(cloud, design, rng, rec),
    }
    for name in (
        "network_node_share",
        "network_node_share_sampled",
        "nn_delay_ms_mean",
        "nn_delay_ms_p95",
        "nn_loss",
        "nn_utilization",
        "offered_pps",
        "nn_pps",
    ):
        rec.metric(name, summary[name], _UNITS.get(name, ""))
    rec.metric("failover_recovery_s", summary["failover_recovery_s"], "s")
    for name in ("gateway_failover_s", "ha_failover_s"):
        if name in summary:
            rec.metric(name, summary[name], "s")
    return Run("dvr", "model", dict(design), seed, topology, summary, rec.records)


_UNITS = {"nn_delay_ms_mean": "ms", "nn_delay_ms_p95": "ms", "offered_pps": "pps", "nn_pps": "pps"}


def _failover(cloud: Cloud, design: DvrDesign, rng: random.Random, rec: Recorder) -> Optional[float]:
    """Recovery time of the first VRRP VIP a studied router routes to, after a failover (None: no VIP, or never).
    The client's router decides: its mode says whether it follows the new master's GARP."""
    for router in studied_routers(cloud):
        vip = pick_endpoints(cloud, router).vip
        if vip is not None:
            mode = router_mode(router, design)
            return run_failover(
                design, mode, vip.old_master.name, vip.new_master.name, vip.client.name, str(vip.ip), rng, rec
            )
    return None


def _gateway_failover(cloud: Cloud, design: DvrDesign, rng: random.Random, rec: Recorder) -> dict[str, Any]:
    """``gateway_failover_s`` for the first studied OVN router with a gateway on two or more gateway chassis and
    a VM that leaves through SNAT (nothing otherwise: the metric does not exist there)."""
    for router in studied_routers(cloud):
        chassis = gateway_chassis(cloud, router)
        client = pick_endpoints(cloud, router).snat
        if router_mode(router, design) == "ovn" and len(chassis) >= 2 and client is not None and client.host:
            active = gateway_host(cloud, design, "ovn")
            backup = next(h.name for h in chassis if h.name != active)
            return {"gateway_failover_s": mean_gateway_failover(active, backup, client.host, rng, rec)}
    return {}


def _ha_failover(cloud: Cloud, design: DvrDesign, rng: random.Random, rec: Recorder) -> dict[str, Any]:
    """``ha_failover_s`` for the first studied legacy router with ``ha: true``, two or more network nodes (an L3
    agent each: Neutron schedules an HA router to ``max_l3_agents_per_router`` of them) and a VM that leaves
    through SNAT: the first network node's keepalived is the master (where the paths are drawn), the second the
    backup. Nothing otherwise: the metric does not exist there."""
    nodes = [h.name for h in cloud.hosts if h.role == "network"]
    for router in studied_routers(cloud):
        client = pick_endpoints(cloud, router).snat
        if router.ha and router_mode(router, design) == "legacy" and len(nodes) >= 2 and client is not None:
            return {"ha_failover_s": mean_ha_failover(nodes[0], nodes[1], design.ha_vrrp_advert_int, rng, rec)}
    return {}


__all__ = ["CLASSES", "FLOW_PPS", "simulate"]
