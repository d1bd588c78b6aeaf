"""The ``multisegment`` scenario: routed networks with several segments per host.

Knobs follow the issue. Without a topology file the cloud is generated from
``racks``, ``hosts_per_rack`` and ``max_prefix`` (``needs_topology=False``);
with one, racks, hosts and segments come from the file and ``max_prefix``
sizes only the subnets the operator adds.
"""

from labtwin.description import Cloud

from ..base import Knob, Scenario, Tolerance, bounded
from ..refusals import refusing_emulation
from . import emulation, model
from .spec import MultisegmentDesign


def missing(cloud: Cloud, design: dict) -> list[str]:
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


SCENARIO = Scenario(
    name="multisegment",
    title="Routed networks: more than one segment per network per host",
    default_topology="multisegment.yaml",
    knobs=(
        Knob(
            "segments_per_host",
            "one",
            "IPAM rule: one (pre-2023, 409 on a second segment) or many (2023.1)",
            choices=("one", "many"),
        ),
        Knob(
            "bridge_naming",
            "network",
            "agents key L2 state by network id (brq+net[:11]) or segment id",
            choices=("network", "segment"),
        ),
        Knob("agent", "linuxbridge", "L2 agent", choices=("linuxbridge", "ovs")),
        Knob(
            "max_prefix",
            22,
            "prefix length of the subnets the operator adds (/22 consensus cap)",
            kind=bounded(int, 16, 29),
        ),
        Knob("racks", 2, "racks to generate when no topology file is given", kind=bounded(int, 1)),
        Knob("hosts_per_rack", 4, "compute hosts per generated rack", kind=bounded(int, 1)),
        Knob("demand", 1500, "ports requested per rack over the run (Poisson arrivals)", kind=bounded(int, 0)),
        Knob(
            "days",
            90.0,
            "length of the run: demand arrives over this many days",
            kind=bounded(float, 0.001, unit="days"),
        ),
        Knob(
            "add_segment_at",
            0,
            "free addresses on a rack physnet at which the operator adds a segment",
            kind=bounded(int, 0),
        ),
        Knob(
            "lead_time_h",
            0.0,
            "hours from the operator's decision to the new segment existing",
            kind=bounded(float, 0.0, unit="hours"),
        ),
        Knob(
            "operator",
            "cautious",
            "under `one`: cautious never maps a 2nd segment to a host; always does (409s)",
            choices=("cautious", "always"),
        ),
        Knob(
            "migration",
            "none",
            "rolling-restart: agents start keyed by network, restart into bridge_naming",
            choices=("none", "rolling-restart"),
        ),
        Knob(
            "migrate_at",
            0.5,
            "when the rolling restart starts, as a fraction of the run",
            kind=bounded(float, 0.0, 1.0),
        ),
    ),
    simulate=model.simulate,
    emulate=refusing_emulation("multisegment", emulation.emulate),
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
        Tolerance("probes_via_gateway", absolute=0, why="hop counts: one router (TTL-1, gateway MAC) or none"),
    ),
    needs_topology=False,
    notebook="multisegment.ipynb",
    missing=missing,
    design_type=MultisegmentDesign,
)
