"""What the model and the emulation of ``reachability`` share: its design knob."""

from __future__ import annotations

from labtwin.description import Cloud
from labtwin.description.flows import parse_flows
from labtwin.scenarios.base import Design, Knob

#: Why a probe touching a port on an OVN localnet conflict is not compared (see :func:`ovn_localnet_conflicts`).
OVN_LOCALNET_CONFLICT = (
    "ML2/OVN localnet conflict on the port's host: ovn-controller uses one localnet port per network per "
    "chassis (OVN 23.03 controller/binding.c), the first it binds"
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


def ovn_localnet_conflicts(cloud: Cloud) -> dict[str, list[str]]:
    """Host -> the networks of which it maps two or more flat/VLAN segments to its bridges.

    Neutron maps such a host to every one of those segments (its IPAM gives ports addresses on any of
    them), and its OVN driver writes one ``localnet`` port per segment; ovn-controller then uses only
    the first it binds for the whole network on that chassis and skips the others, so the ports of the
    other segments reach the physical network on the wrong VLAN.
    """
    conflicts: dict[str, list[str]] = {}
    for host in cloud.hosts:
        for network in cloud.networks:
            plugged = [
                s
                for s in cloud.segments
                if s.network_id == network.name
                and s.network_type in ("flat", "vlan")
                and s.physical_network in host.bridge_mappings
            ]
            if len(plugged) > 1:
                conflicts.setdefault(host.name, []).append(network.name)
    return conflicts


def ports_on_localnet_conflicts(cloud: Cloud) -> set[str]:
    """The VM ports whose host has a localnet conflict on the port's network."""
    conflicts = ovn_localnet_conflicts(cloud)
    return {p.name for p in cloud.vm_ports if p.network_id in conflicts.get(p.host or "", ())}
