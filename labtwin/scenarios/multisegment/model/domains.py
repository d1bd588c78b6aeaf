"""Which segments share an L2 domain on each host: the prediction an emulation checks.

Pure data from the description and the design, no simulation: every port of
the file on the routed network that the design's IPAM admits (a host reaching
two segments under ``one`` gets HTTP 409 even for explicit ``fixed_ips``, so
such ports never exist) is plugged by the host's agent under the design's
naming, and each L2 device (Linux bridge, or OVS local VLAN on br-int) lists
the segments in it. More than one segment in a device is the leak: their
broadcast domains are merged on that host.

Only the file's ports count (the model's DHCP ports and demand are not built
by an emulation of the file).
"""

from __future__ import annotations

import random

from labtwin.description import Cloud
from labtwin.scenarios.base import ScenarioError

from ..spec import MultisegmentDesign, loop_closers, parse_localnet
from .agents import L2Agent, make_agent
from .cloud import build_ipam, file_ports, port_segment, routed_network
from .ipam import IpamError


def admitted_ports(cloud: Cloud, design: MultisegmentDesign) -> list[tuple[str, str, str]]:
    """(port, host, segment) for each bound file port the design's IPAM accepts."""
    network = routed_network(cloud)
    ipam = build_ipam(cloud, network, design.segments_per_host, random.Random(0))
    admitted = []
    for port in file_ports(cloud, network):
        segment = port_segment(cloud, port)
        if port.host is None or segment is None:
            continue
        try:
            reachable = {p.segment for p in ipam.candidate_subnets(port.host, network)}
        except IpamError:
            continue
        if segment in reachable:
            admitted.append((port.name, port.host, segment))
    return admitted


def expected_l2_domains(cloud: Cloud, design: MultisegmentDesign) -> dict[str, list[dict]]:
    """Per host: its L2 devices, each with the segments in it and whether they leak.

    ``design`` needs ``segments_per_host``, ``bridge_naming`` and ``agent``.
    Returns ``{host: [{"device": ..., "segments": [...], "leak": bool}, ...]}``
    for hosts with at least one admitted port, devices sorted by name.
    """
    return {
        host: [{"device": d, "segments": sorted(s), "leak": len(s) > 1} for d, s in sorted(agent.domains.items())]
        for host, agent in sorted(built_agents(cloud, design).items())
    }


def built_agents(cloud: Cloud, design: MultisegmentDesign) -> dict:
    """Host -> its L2 agent after plugging every admitted file port: the cloud an emulation of *cloud* builds.

    No demand, no DHCP ports, no segment the operator adds during a run: the
    twin compares this cloud (its devices, names, leaks) with the emulation's,
    not the cloud at the end of the simulated run.
    """
    network = routed_network(cloud)
    ipam = build_ipam(cloud, network, design.segments_per_host, random.Random(0))
    localnet = checked_localnet(cloud, design)
    agents: dict[str, L2Agent] = {}
    for name, host, segment in admitted_ports(cloud, design):
        h = cloud.host[host]
        agent = agents.setdefault(
            host,
            make_agent(
                design.agent, host, h.bridge_mappings, design.bridge_naming, lambda: ipam.segments.values(), localnet
            ),
        )
        agent.plug(str(cloud.port[name].id), name, ipam.segments[segment])
    return agents


def checked_localnet(cloud: Cloud, design: MultisegmentDesign) -> dict[str, str]:
    """``ovn_localnet`` as host -> segment, each a host of *cloud* and a segment on one of its physnets (else a
    ScenarioError)."""
    given = parse_localnet(design.ovn_localnet)
    for host, segment in given.items():
        if host not in cloud.host:
            raise ScenarioError(f"ovn_localnet: no host {host!r} in the topology")
        if segment not in cloud.segment:
            raise ScenarioError(f"ovn_localnet: no segment {segment!r} in the topology")
        if cloud.segment[segment].physical_network not in cloud.host[host].bridge_mappings:
            raise ScenarioError(
                f"ovn_localnet: {host} maps no bridge to segment {segment}'s physnet "
                f"{cloud.segment[segment].physical_network!r}: its chassis has no localnet port of it"
            )
    return given


def l2_loops(domains: dict[str, list[dict]]) -> int:
    """How many times host devices join segments that are already joined: each is a loop between VLANs (a
    broadcast storm; :func:`~labtwin.scenarios.multisegment.spec.loop_closers`)."""
    joins = ((host, d["device"], d["segments"]) for host, devices in sorted(domains.items()) for d in devices)
    return len(loop_closers(joins))


def l2_leaks(domains: dict[str, list[dict]]) -> int:
    """How many (host, device) pairs merge more than one segment."""
    return sum(d["leak"] for devices in domains.values() for d in devices)
