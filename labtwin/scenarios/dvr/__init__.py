"""The ``dvr`` scenario: which traffic still crosses the network node, per router design.

Knobs and their defaults (today's DVR) are :data:`~labtwin.scenarios.dvr.spec.KNOBS`.
``router=ovn`` and ``ovn_distributed_fip`` exist in the model only.
"""

from __future__ import annotations

from labtwin.description import Cloud

from ..base import Scenario, on_default_topology
from ..refusals import refusing_emulation
from . import emulation, model
from .spec import DvrDesign

#: What the network node hosts under each router design (why the scenario needs one).
NETWORK_NODE_ROLE = {
    "legacy": "the qrouter- namespace",
    "dvr": "the snat- namespace of the dvr_snat L3 agent",
    "ovn": "the gateway chassis of cr-lrp ports",
}


def missing(cloud: Cloud, design: DvrDesign) -> list[str]:
    """What *cloud* lacks for this scenario: the studied router (:func:`~labtwin.scenarios.dvr.spec.the_router`)
    and the network node (:func:`~labtwin.scenarios.dvr.spec.network_node`)."""
    lacks = []
    if not any(r.external_gateway_info is not None and r.interfaces for r in cloud.routers):
        lacks.append(_router_lack(cloud))
    if not any(h.role == "network" for h in cloud.hosts):
        lacks.append(
            f"a host with role: network for {NETWORK_NODE_ROLE[design.router]} "
            f"(its {len(cloud.hosts)} host(s) are all compute)"
        )
    return lacks


def _router_lack(cloud: Cloud) -> str:
    """Why no router qualifies (a floating IP no router can NAT never loads: the loader refuses it as Neutron
    does, ExternalGatewayForFloatingIPNotFound)."""
    why = f"none of its {len(cloud.routers)} router(s) has both" if cloud.routers else "it has no router"
    return f"a router with external_gateway_info and at least one interface ({why})"


SCENARIO = Scenario(
    name="dvr",
    title="DVR packet paths: what still crosses the network node",
    default_topology="dvr.yaml",
    simulate=on_default_topology("dvr.yaml", model.simulate),
    emulate=refusing_emulation("dvr", on_default_topology("dvr.yaml", emulation.emulate)),
    probe_details=("hops", "via_network_node", "nat"),
    # No metric tolerances: network_node_share is computed by both backends with the same function
    # (expected_share) from the same matrix and the per-class crossing, so it could only disagree where a
    # probe's via_network_node already does; it stays in both summaries, not in the twin.
    tolerances=(),
    needs_topology=True,
    notebook="dvr.ipynb",
    missing=missing,
    design_type=DvrDesign,
)
