"""The ``dvr`` scenario: which traffic still crosses the network node, per router design.

Knobs and their defaults are :data:`~labtwin.scenarios.dvr.knobs.KNOBS`: by default each router runs in the
mode its own ``distributed`` field says (Neutron's default: legacy); ``--set router=...`` overrides them all.
``router=ovn`` and ``ovn_distributed_fip`` exist in the model only.
"""

from __future__ import annotations

from labtwin.description import Cloud

from ..base import Scenario, Tolerance, lazy, on_default_topology
from ..refusals import refusing_emulation
from .knobs import DvrDesign
from .spec import design_conflicts, router_mode, studied_routers

#: What the network node hosts under each router design (why the scenario needs one).
NETWORK_NODE_ROLE = {
    "legacy": "the qrouter- namespace",
    "dvr": "the snat- namespace of the dvr_snat L3 agent",
    "ovn": "the gateway chassis of cr-lrp ports",
}


def missing(cloud: Cloud, design: DvrDesign) -> list[str]:
    """What *cloud* lacks for this scenario: a router to study (:func:`~labtwin.scenarios.dvr.spec.studied_routers`)
    and the network node (:func:`~labtwin.scenarios.dvr.spec.network_node`)."""
    lacks = design_conflicts(cloud, design)
    routers = studied_routers(cloud)
    if not routers:
        why = f"none of its {len(cloud.routers)} router(s) has one" if cloud.routers else "it has no router"
        lacks.append(f"a router with at least one interface ({why})")
    if not any(h.role == "network" for h in cloud.hosts):
        roles = sorted({NETWORK_NODE_ROLE[router_mode(r, design)] for r in routers} or {NETWORK_NODE_ROLE["legacy"]})
        lacks.append(
            f"a host with role: network for {' and '.join(roles)} (its {len(cloud.hosts)} host(s) are all compute)"
        )
    return lacks


#: One emulated cut against the model's mean: BFD's random phases spread a single cut over about 1 s (2.1-3.1 s
#: with Open vSwitch's defaults), so a model off by a BFD interval or more (mult 4 or 2, min_rx 2 s or 0.5 s,
#: no BFD at all) disagrees.
GATEWAY_FAILOVER = Tolerance(
    "gateway_failover_s",
    absolute=0.9,
    why="one cut's BFD phases against the model's mean over many cuts",
)

#: One emulated cut against the model's mean: the phase of the last advert the backup heard spreads a single cut
#: over one advert interval (2.8-3.9 s with ha_vrrp_advert_int=1), so a model off by an advert interval (Neutron's
#: default 2 s against the run's 1 s: a mean near 5.9 s) disagrees.
HA_FAILOVER = Tolerance(
    "ha_failover_s",
    absolute=0.6,
    relative=0.2,
    why="one cut's VRRP advert phase against the model's mean over many cuts",
)


def drawn(emulation, knobs) -> dict:
    """Which gateway chassis Neutron made active, when the user named none and it is not the first network node
    (the ``ovn_gateway`` knob says why no topology can tell): the twin's model takes the same."""
    picked = emulation.summary.get("gateway_chassis")
    if knobs.get("ovn_gateway") or not picked or picked == emulation.summary.get("network_node"):
        return {}
    return {"ovn_gateway": picked}


SCENARIO = Scenario(
    name="dvr",
    title="DVR packet paths: what still crosses the network node",
    default_topology="dvr.yaml",
    simulate=on_default_topology("dvr.yaml", lazy("labtwin.scenarios.dvr.model:simulate")),
    emulate=refusing_emulation("dvr", on_default_topology("dvr.yaml", lazy("labtwin.scenarios.dvr.emulation:emulate"))),
    probe_details=("hops", "via_network_node", "nat", "ttl", "wires", "reply", "reply_ttl"),
    # network_node_share is not compared: both backends compute it with the same function (expected_share)
    # from the same matrix and each class's crossing out and back, so it could only disagree where a probe's
    # via_network_node or reply already does; it stays in both summaries, not in the twin.
    tolerances=(GATEWAY_FAILOVER, HA_FAILOVER),
    needs_topology=True,
    notebook="dvr.ipynb",
    missing=missing,
    design_type=DvrDesign,
    drawn=drawn,
)
