"""The ``multisegment`` scenario: routed networks with several segments per host.

Knobs follow the issue. Without a topology file the cloud is generated from
``racks``, ``hosts_per_rack`` and ``max_prefix`` (``needs_topology=False``);
with one, racks, hosts and segments come from the file and ``max_prefix``
sizes only the subnets the operator adds.
"""

from labtwin.description import Cloud

from ..base import Scenario, Tolerance, lazy
from ..refusals import refusing_emulation
from .spec import MultisegmentDesign


def missing(cloud: Cloud, design: MultisegmentDesign) -> list[str]:
    """What a topology file lacks for this scenario: a routed network whose physnet segments each have an
    IPv4 subnet (the model studies the first routed network, as
    :func:`~labtwin.scenarios.multisegment.model.cloud.routed_network`)."""
    routed = next(
        (n.name for n in cloud.networks if any(s.network_id == n.name and s.segment_id for s in cloud.subnets)), None
    )
    if routed is None:
        return [
            f"a routed network, one whose subnets are bound to segments (none of its {len(cloud.networks)} "
            "network(s) has a subnet with segment_id)"
        ]
    with_v4 = {s.segment_id for s in cloud.subnets if s.network_id == routed and s.ip_version == 4}
    bare = [
        s.name
        for s in cloud.segments
        if s.network_id == routed and s.physical_network is not None and s.name not in with_v4
    ]
    if bare:
        return [
            f"an IPv4 subnet on every segment of routed network {routed!r} for its DHCP port and "
            f"allocations (segment(s) {', '.join(map(repr, bare))} have none)"
        ]
    return []


def drawn(emulation, knobs) -> dict:
    """Under ``control=ovn``, the localnet port each chassis sends unicast by, which OVN took in the SB's hash
    order (the ``ovn_localnet`` knob says why no topology can tell), unless the user named them: the twin's model
    takes the same."""
    picked = emulation.summary.get("ovn_localnet")
    return {} if knobs.get("ovn_localnet") or not picked else {"ovn_localnet": picked}


SCENARIO = Scenario(
    name="multisegment",
    title="Routed networks: more than one segment per network per host",
    default_topology="multisegment.yaml",
    simulate=lazy("labtwin.scenarios.multisegment.model:simulate"),
    emulate=refusing_emulation("multisegment", lazy("labtwin.scenarios.multisegment.emulation:emulate")),
    tolerances=(
        Tolerance("l2_leaks", absolute=0, why="a merged broadcast domain is there or not"),
        Tolerance(
            "built_longest_interface_name_len",
            absolute=0,
            why="names of the cloud both build (the file's or the generated one, without the model's demand "
            "or added segments): computed by the model, read from the kernel by the emulation",
        ),
        Tolerance("probe_count", absolute=0, why="both backends ask the same questions"),
        Tolerance("arp_leaks", absolute=0, why="an ARP answered across segments is a merged domain"),
        Tolerance("broadcast_leaks", absolute=0, why="a broadcast seen in another segment is a merged domain"),
        Tolerance(
            "probes_via_gateway",
            absolute=0,
            why="hop counts: one router (TTL-1, gateway MAC), two between racks (TTL-2), or none",
        ),
    ),
    needs_topology=False,
    notebook="multisegment.ipynb",
    missing=missing,
    design_type=MultisegmentDesign,
    drawn=drawn,
)
