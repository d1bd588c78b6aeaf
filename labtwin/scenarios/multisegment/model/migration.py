"""Migration by rolling agent restart (the PTG's "only requires re-starting the agents").

Hosts start on the pre-2023 agents (L2 state keyed by network). At the
migration time the operator restarts one host's agent at a time into the
design's ``bridge_naming``. While an agent is down, ports bound to its host
wait to be wired. On start it resyncs every port; ports whose bridge (Linux
bridge: ``brq<net>`` -> ``brq<seg>``) or local VLAN (OVS: re-keyed lvid) changes
are moved, and lose their data path while the agent rewires them.

Costs (seconds) are not sourced except the 2 s polling interval and the
100-device chunk in which agents fetch device details (neutron-facts.md 4.1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

AGENT_RESTART_S = 5.0  # not sourced: process stop/start and first state report
POLLING_INTERVAL_S = 2.0  # agent rpc_loop
DEVICE_CHUNK = 100  # devices per get_devices_details_list call
DEVICE_CHUNK_S = 0.5  # not sourced
REWIRE_PORT_S = 0.02  # not sourced: move one tap / reflow one port


@dataclass(frozen=True)
class Restart:
    """One host's restart: when, how long the agent was down, what moved."""

    host: str
    start: float
    downtime_s: float
    ports: int
    ports_affected: int
    outage_s: float  # how long the moved ports had no data path


def resync_s(ports: int) -> float:
    """Agent time to come back and resync *ports* ports (fetch in chunks, one polling loop)."""
    return AGENT_RESTART_S + POLLING_INTERVAL_S + math.ceil(ports / DEVICE_CHUNK) * DEVICE_CHUNK_S


def rolling_restart(sim, hosts: list[str], start_at: float, naming: str):
    """SimPy process: restart *hosts*' agents one after another into *naming*."""
    env = sim.env
    yield env.timeout(max(0.0, start_at - env.now))
    sim.rec.event(env.now, "migration_start", subject=naming, hosts=len(hosts))
    for host in hosts:
        restart = yield from restart_host(sim, host, naming)
        sim.restarts.append(restart)
    sim.rec.event(env.now, "migration_end", subject=naming)


def restart_host(sim, host: str, naming: str):
    """Stop the agent, resync, move ports whose L2 device changed, start wiring again."""
    env, agent = sim.env, sim.agents[host]
    start = env.now
    sim.agent_down(host)
    sim.rec.event(start, "agent_restart", host=host, subject=agent.kind, phase="stop", naming=naming)
    n_ports = agent.port_count
    yield env.timeout(resync_s(n_ports))
    ops, moved = agent.rekey(naming)
    outage = moved * REWIRE_PORT_S
    for op in ops:
        sim.rec.operation(op.op, host, env.now, op.duration, subject=op.subject, migration=True, **op.detail)
    if moved:
        sim.rec.operation("port_rewire", host, env.now, outage, count=moved, subject=naming)
    yield env.timeout(outage)
    sim.agent_up(host)
    downtime = env.now - start
    sim.rec.event(
        env.now,
        "agent_restart",
        host=host,
        subject=agent.kind,
        phase="start",
        downtime_s=downtime,
        ports=n_ports,
        ports_affected=moved,
    )
    return Restart(host, start, downtime, n_ports, moved, outage)
