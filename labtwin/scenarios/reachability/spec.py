"""What the model and the emulation of ``reachability`` share: its design knob."""

from __future__ import annotations

from labtwin.description.flows import parse_flows
from labtwin.scenarios.base import Design, Knob

#: Why a probe touching a port on an OVN localnet conflict is not compared
#: (see :func:`labtwin.description.notes.ovn_localnet_conflicts`).
OVN_LOCALNET_CONFLICT = (
    "ML2/OVN localnet conflict on the port's host: its chassis bridges the VLANs of the network's segments "
    "and sends unicast to other hosts by one of them, drawn by OVN (the multisegment scenario models it, "
    "control=ovn; this one does not)"
)


def probe_list(text: str) -> str:
    """Check a probe list such as ``icmp,tcp:22`` (a bad entry is a knob error)."""
    return ",".join(str(flow) for flow in parse_flows(text))


KNOBS: tuple[Knob, ...] = (
    Knob(
        "probes",
        "icmp,tcp:22",
        "flows to try between every ordered pair of VM ports: icmp, tcp:PORT, udp:PORT",
        kind=probe_list,
    ),
    Knob(
        "control",
        "labtwin",
        "emulation only: who writes each host's security-group filter: labtwin (labtwin's own rendering of the "
        "hybrid driver) | neutron (Neutron 29's own SecurityGroupAgentRpc and hybrid iptables driver, with "
        "ipset) | ovn (real OVN 23.03, every host a chassis, the whole cloud created through Neutron 29's own "
        "ML2/OVN driver: its ACLs, routers and localnet ports). The model ignores it",
        choices=("labtwin", "neutron", "ovn"),
    ),
)


class ReachabilityDesign(Design):
    """The design of the reachability scenario: one typed, frozen value per knob
    (parsed and bounds-checked once, by :data:`KNOBS`)."""

    KNOBS = KNOBS

    probes: str
    control: str
