"""Emulation refusals: what an emulation cannot build is refused before it creates anything.

An emulation builds less than its model studies (no vxlan segments, no OVN,
no router without a host to put it on ...). Each limit is either checked here
up front (``missing``, like :meth:`~labtwin.scenarios.base.Scenario.refuse_unfit`
for the model) or found while the emulation plans -- plans are pure data, made
before the realisation creates anything -- and raised as its ``PlanError`` or
the dvr emulation's ``NotEmulated``. Either way the user gets one line naming the
file and what it lacks (:class:`TopologyUnfit`, exit 2), not a traceback.
"""

from __future__ import annotations

import functools
from typing import Callable, Optional

from ..description import Cloud
from ..emulation.dvr import NotEmulated
from ..emulation.plan import PlanError
from .base import TopologyUnfit


def refusing_emulation(name: str, emulate: Callable, missing: Optional[Callable[[Cloud, dict], list[str]]] = None):
    """*emulate*, refusing up front what *missing* names and turning plan-time refusals into :class:`TopologyUnfit`."""

    @functools.wraps(emulate)
    def guarded(cloud: Optional[Cloud], design: dict, seed: int, topology: str = "", **kwargs):
        where = topology or "the generated cloud"
        lacks = missing(cloud, design) if missing is not None and cloud is not None else []
        if lacks:
            raise TopologyUnfit(f"{where}: the {name} emulation cannot build cloud {cloud.name!r}: it needs "
                                + "; and ".join(lacks))
        try:
            return emulate(cloud, design, seed, topology, **kwargs)
        except (PlanError, NotEmulated) as exc:
            raise TopologyUnfit(f"{where}: the {name} emulation cannot build this: {exc}") from None

    return guarded


def routers_have_a_host(cloud: Cloud, design: dict) -> list[str]:
    """The reachability emulation puts each router on the first network node, else the first host."""
    if cloud.routers and not cloud.hosts:
        return [f"a host to put router {cloud.routers[0].name!r} on (it has no hosts)"]
    return []


def interfaces_have_gateways(cloud: Cloud, design: dict) -> list[str]:
    """The dvr emulation gives the studied router a qr- device at each interface subnet's gateway_ip."""
    router = next((r for r in cloud.routers if r.external_gateway_info is not None and r.interfaces), None)
    bare = [s for s in (router.interfaces if router else ()) if cloud.subnet[s].gateway_ip is None]
    if bare:
        return [f"a gateway_ip on every interface subnet of router {router.name!r}, as Neutron requires for a "
                f"router interface (subnet(s) {', '.join(map(repr, bare))} have gateway_ip: null)"]
    return []


def group_admits_icmp_or_tcp(cloud: Cloud, design: dict) -> list[str]:
    """The sg-fanout emulation times a join's readiness with ICMP or TCP through the group's own rule."""
    from ..description.sg_fanout import probe_of, self_referencing_group

    group = self_referencing_group(cloud)  # present: Scenario.refuse_unfit ran first
    flow = probe_of(group)
    if not flow.startswith(("icmp", "tcp")):
        return [f"a self-referencing ingress rule for icmp, tcp or any protocol in group {group.name!r} "
                f"to time readiness with (it admits {flow} only)"]
    return []
