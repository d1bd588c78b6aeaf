"""Emulation of ``neighbours``: one OVS bridge per network, one namespace per port, real ICMP.

Built only from the shared engine (plan types, :class:`~labtwin.emulation.realise.Realisation`,
the probe engine), as every scenario's emulation is: nothing of the model is imported.
"""

from __future__ import annotations

from typing import Any, Mapping

from labtwin.description import Cloud
from labtwin.emulation.ledger import ROOT
from labtwin.emulation.naming import new_run_id, node_name
from labtwin.emulation.plan import Endpoint, OvsBridge, OvsPort, Plan, Veth, checked_mac, derived_mac
from labtwin.emulation.probes import ProbeSpec, probe
from labtwin.emulation.realise import Realisation
from labtwin.records import Recorder, Run

from ..spec import FLOW, NeighboursDesign, pairs


def emulate(cloud: Cloud, design: Mapping[str, Any], seed: int, topology: str = "", out_dir=None) -> Run:
    """Build the plan, probe every ordered pair with real ICMP, tear down."""
    design = NeighboursDesign.of(design)
    the_plan = plan(cloud, new_run_id())
    recorder = Recorder()
    with Realisation(the_plan) as real:
        specs = [
            ProbeSpec(
                src.name, dst.name, the_plan.endpoints[src.name].ns, str(the_plan.endpoints[dst.name].ips[0]), FLOW
            )
            for src, dst in pairs(cloud)
        ]
        for result in probe(real.runner, real.pids, specs, timeout=design.timeout):
            recorder.probe(
                result.spec.src,
                result.spec.dst,
                FLOW,
                None,
                result.verdict,
                latency_s=result.latency_s,
                answer=result.answer,
            )
    count = len(recorder.records)
    allowed = sum(p.verdict == "allowed" for p in recorder.records)
    recorder.metric("probe_count", count)
    recorder.metric("allowed", allowed)
    summary = {"probe_count": count, "allowed": allowed, "blocked": count - allowed}
    run = Run("neighbours", "emulation", dict(design), seed, topology, summary, recorder.records)
    if out_dir:
        run.save(out_dir)
    return run


def plan(cloud: Cloud, run_id: str) -> Plan:
    """One userspace OVS bridge per network; per bound port a namespace with its MAC and first fixed IP."""
    result = Plan(run_id)
    networks = sorted({p.network_id for p, _ in pairs(cloud)} | {q.network_id for _, q in pairs(cloud)})
    bridges = {net: node_name(run_id, "b", i) for i, net in enumerate(networks)}
    result.ovs_bridges += [OvsBridge(name, ROOT) for name in bridges.values()]
    ports = sorted({p.name: p for pair in pairs(cloud) for p in pair}.values(), key=lambda p: p.name)
    for j, port in enumerate(ports):
        key = f"port:{j}"
        mac = checked_mac(port.mac_address or derived_mac(port.id))
        fixed = port.fixed_ips[0]
        prefix = cloud.subnet[fixed.subnet_id].cidr.prefixlen
        cfg = result.add_ns(key, "port", port.name)
        cfg.ip_batch += [
            "link set lo up",
            f"link set eth0 address {mac}",
            f"addr add {fixed.ip_address}/{prefix} dev eth0",
            "link set eth0 up",
        ]
        dev = node_name(run_id, "t", j)
        result.veths.append(Veth(key, "eth0", ROOT, dev))
        result.ovs_ports.append(OvsPort(bridges[port.network_id], dev))
        result.endpoints[port.name] = Endpoint(port.name, key, "eth0", mac, (fixed.ip_address,))
    return result
