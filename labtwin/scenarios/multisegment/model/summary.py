"""The headline numbers of a ``multisegment`` model run (its ``Run.summary``)."""

from __future__ import annotations

from typing import Optional

from labtwin.description.names import DEVICE_NAME_MAX_LEN

from .agents import OvnController, OvsAgent, longest_name
from .domains import built_agents, expected_l2_domains, l2_leaks, l2_loops
from .ipam import REASONS
from .probes import predicted_probes, probe_metrics


def summarize(sim, probe_cloud=None, probes: Optional[list[dict]] = None) -> dict:
    """Allocation, segment, bridge and migration results of a finished :class:`Simulation`.

    The expected L2 domains and probe predictions are for *probe_cloud* (default:
    the simulated cloud): the ports an emulation of the same inputs boots.
    """
    summary = {"network": sim.network, "requests": sim.ok + sum(sim.failed.values())}
    summary.update(allocations(sim))
    summary.update(segments(sim))
    summary.update(bridges(sim))
    summary.update(migration(sim))
    probe_cloud = probe_cloud or sim.cloud
    domains = expected_l2_domains(probe_cloud, sim.design)
    summary.update(expected_l2_domains=domains, l2_leaks=l2_leaks(domains), l2_loops=l2_loops(domains))
    summary.update(built_names(probe_cloud, sim.design))
    if sim.design.agent == "ovn":
        summary["ovn_localnet"] = built_localnets(probe_cloud, sim.design)
    # *probes*: the predictions the caller already made for *probe_cloud* (all pairs of a rack: not made twice)
    summary.update(probe_metrics(probes if probes is not None else predicted_probes(probe_cloud, sim.design)))
    return summary


def allocations(sim) -> dict:
    failed = {reason: sim.failed.get(reason, 0) for reason in REASONS}
    return {
        "allocations_ok": sim.ok,
        "allocations_failed": failed,
        "allocations_failed_total": sum(failed.values()),
        "time_to_first_failure_s": sim.first_failure,
    }


def segments(sim) -> dict:
    ipam = sim.ipam
    per_rack = {r.name: [s.name for s in ipam.segments.values() if s.physnet == r.physnet] for r in sim.racks}
    per_host = {h: len(ipam.segments_of(h)) for h in sim.agents}
    return {
        "segments_needed": len(ipam.segments),
        "segments_added": sum(1 for s in ipam.segments.values() if s.name not in sim.cloud.segment),
        "segments_per_rack": per_rack,
        "segments_per_host_max": max(per_host.values(), default=0),
        "dhcp_ports": dict(sorted(sim.dhcp.items())),
        "dhcp_unserved": sorted(s for s in ipam.segments if s not in sim.dhcp),
        "free_addresses": {p.name: len(p.free) for p in ipam.subnets},
    }


def bridges(sim) -> dict:
    collisions = [c for agent in sim.agents.values() for c in agent.collisions()]
    names = set().union(*(agent.names for agent in sim.agents.values()))
    longest = longest_name(names)
    out = {
        "bridge_names": {h: agent.bridge_names() for h, agent in sim.agents.items()},
        "l2_domains": {h: {d: list(s) for d, s in sorted(a.domains.items())} for h, a in sim.agents.items()},
        "bridge_collisions": collisions,
        "bridge_collision_count": len(collisions),
        "bridge_collisions_seen": len(sim.seen_collisions),
        "longest_interface_name": longest,
        "longest_interface_name_len": len(longest) if longest else 0,
        "names_fit": all(len(n) <= DEVICE_NAME_MAX_LEN for n in names),
    }
    if any(isinstance(a, OvsAgent) for a in sim.agents.values()):
        out["local_vlans"] = {h: a.local_vlans() for h, a in sim.agents.items() if isinstance(a, OvsAgent)}
    return out


def built_names(cloud, design) -> dict:
    """The longest interface name on the hosts of the cloud an emulation builds (the twin's names).

    ``longest_interface_name`` is over the whole simulated run (demand ports,
    segments the operator added); an emulation builds only the file's (or the
    generated) cloud, so the twin compares this one.
    """
    names = set().union(*(agent.names for agent in built_agents(cloud, design).values()))
    longest = longest_name(names)
    return {"built_longest_interface_name": longest, "built_longest_interface_name_len": len(longest) if longest else 0}


def built_localnets(cloud, design) -> str:
    """Under ``agent=ovn``: the localnet port each chassis of the built cloud sends unicast by, as the
    ``ovn_localnet`` knob writes it (host=segment), for hosts holding a port of the network."""
    agents = built_agents(cloud, design)
    return ",".join(
        f"{host}={agent.bound(network)}"
        for host, agent in sorted(agents.items())
        if isinstance(agent, OvnController)
        for network in sorted({seg.network_id for _, seg in agent.ports.values()})
    )


def migration(sim) -> dict:
    if sim.design.migration == "none":
        return {}
    restarts = sim.restarts
    return {
        "downtime_s": {r.host: round(r.downtime_s, 6) for r in restarts},
        "port_outage_s": {r.host: round(r.outage_s, 6) for r in restarts},
        "ports_affected": sum(r.ports_affected for r in restarts),
        "ports_delayed": sim.delayed,
        "migration_window_s": round(restarts[-1].start + restarts[-1].downtime_s - restarts[0].start, 6)
        if restarts
        else 0.0,
    }
