"""What the model and the emulation of ``multisegment`` share: its design knobs and their bounds."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from labtwin.scenarios.base import ERAS, Design, Knob, ScenarioError, bounded

KNOBS: tuple[Knob, ...] = (
    Knob(
        "era",
        "train-2019",
        "which Neutron: train-2019 (the PTG's: IPAM answers 409 HostConnectedToMultipleSegments on a host's second "
        "segment, Linux bridge agents; segments_per_host=many is the proposal) or neutron-29 (it implemented many "
        "in 2023.1 and removed the Linux bridge agent in 2025.1: implies segments_per_host=many and agent=ovs "
        "unless agent=ovn)",
        choices=ERAS,
    ),
    Knob(
        "segments_per_host",
        "one",
        "IPAM rule: one (Train: 409 on a second segment) or many (Neutron since 2023.1; the PTG's proposal)",
        choices=("one", "many"),
    ),
    Knob(
        "bridge_naming",
        "network",
        "agents key L2 state by network id (brq+net[:11]) or segment id",
        choices=("network", "segment"),
    ),
    Knob(
        "agent",
        "linuxbridge",
        "L2 agent: linuxbridge, ovs, or ovn (ML2/OVN: no L2 agent, each host's ovn-controller patches every "
        "localnet port of its physnets; implies control=ovn)",
        choices=("linuxbridge", "ovs", "ovn"),
    ),
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
    Knob(
        "control",
        "labtwin",
        "who builds each host's L2 in the emulation: labtwin (its own Linux bridge agent: brq bridges, VLAN "
        "subinterfaces) or ovn (Neutron 29's ML2/OVN server creates the cloud in a real OVN 23.03, every host a "
        "chassis; agent=ovn, implied by it, and era=neutron-29)",
        choices=("labtwin", "ovn"),
    ),
    Knob(
        "ovn_localnet",
        "",
        "agent=ovn: the segment whose localnet port each host's chassis sends unicast to other hosts by, as "
        "host=segment,...; empty: the first segment of the file on the host's physnets. ovn-controller uses the "
        "first it meets in the SB (a hash order), so no topology says which: a twin gives the model the "
        "emulation's",
    ),
)


class MultisegmentDesign(Design):
    """The design of the multisegment scenario: one typed, frozen value per knob
    (parsed and bounds-checked once, by :data:`KNOBS`)."""

    KNOBS = KNOBS

    era: str
    segments_per_host: str
    bridge_naming: str
    agent: str
    max_prefix: int
    racks: int
    hosts_per_rack: int
    demand: int
    days: float
    add_segment_at: int
    lead_time_h: float
    operator: str
    migration: str
    migrate_at: float
    control: str
    ovn_localnet: str

    @classmethod
    def implied(cls, values: dict, given: set) -> dict:
        """``agent=ovn`` is what real OVN runs (``control=ovn``) and the other way round; ``control=ovn`` runs
        Neutron 29 (``era=neutron-29``). Neutron 29's IPAM binds a port on a host reaching several segments
        (``segments_per_host=many``, since 2023.1: ``Subnet.find_candidate_subnets``) and it has no Linux bridge
        agent (removed in 2025.1, commit 25d0273588), so its L2 agent is ovs unless it is ovn."""
        values = cls.imply_each_other(
            values,
            given,
            ("agent", "ovn"),
            ("control", "ovn"),
            "agent=ovn is ML2/OVN, built by real OVN (control=ovn); control={value} builds Linux bridges",
            "control=ovn is ML2/OVN (agent=ovn), not agent={value}",
        )
        if values["control"] == "ovn":
            values = cls.imply(values, given, "era", "neutron-29", "control=ovn runs Neutron 29 (era=neutron-29)")
        if values["era"] == "neutron-29":
            why = "era=neutron-29 binds ports on a host with several segments (segments_per_host=many)"
            values = cls.imply(values, given, "segments_per_host", "many", why)
            if values["agent"] == "linuxbridge":
                why = "era=neutron-29 has no Linux bridge agent (removed in 2025.1): agent=ovs or agent=ovn"
                values = cls.imply(values, given, "agent", "ovs", why)
        return values


def parse_localnet(text: str) -> dict[str, str]:
    """``ovn_localnet``'s value as host -> segment (``r2-c1=r2-s1,r2-c2=r2-s2``); empty: none given.

    >>> parse_localnet("r2-c1=r2-s1, r2-c2=r2-s2")
    {'r2-c1': 'r2-s1', 'r2-c2': 'r2-s2'}
    >>> parse_localnet("r2-c1")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    labtwin.scenarios.base.ScenarioError: ovn_localnet: 'r2-c1' is not host=segment ...
    """
    out: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        host, _, segment = item.partition("=")
        if not host.strip() or not segment.strip():
            raise ScenarioError(f"ovn_localnet: {item!r} is not host=segment (e.g. r2-c1=r2-s1)")
        out[host.strip()] = segment.strip()
    return out


#: The hops an inter-rack probe is routed by: the source rack's router, then the destination rack's (the
#: spine between them is one link: the physical network's own routing protocol is not modelled).
INTER_RACK_HOPS = 2


def inter_rack_pairs(vms: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """For every ordered pair of racks, the first VM of each, from ``(port, rack)`` in admission order: the
    inter-rack probes both backends send (one pair per pair of racks keeps the emulation small)."""
    first: dict[str, str] = {}
    for port, rack in vms:
        first.setdefault(rack, port)
    return [(first[a], first[b]) for a in sorted(first) for b in sorted(first) if a != b]


def loop_closers(joins: Iterable[tuple[str, str, Sequence[str]]]) -> list[tuple[str, str, tuple[str, ...]]]:
    """The joins that close an L2 loop, in the order given. Each join is ``(host, device, segments)``: a
    bridge or localnet set on one host joining those segments. Segments and devices form a graph; a join
    that finds a device and a segment already connected makes a second path between two VLANs, which is a
    broadcast storm. One device merging two segments is only a leak. A second device, on another host,
    merging the same two closes a loop. The model counts the closers (``l2_loops``); the emulation refuses
    the first (``check_loops``).

    >>> loop_closers([("a", "brq1", ["s1", "s2"]), ("b", "brq1", ["s1"])])
    []
    >>> loop_closers([("a", "brq1", ["s1", "s2"]), ("b", "brq1", ["s1", "s2"])])
    [('b', 'brq1', ('s1', 's2'))]
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    closers = []
    for host, device, segments in joins:
        node = f"{host}/{device}"
        for segment in segments:
            a, b = find(node), find(f"segment/{segment}")
            if a == b:
                closers.append((host, device, tuple(segments)))
            else:
                parent[a] = b
    return closers
