"""The ``reachability`` scenario, emulated: real packets between every pair of VM ports.

Realise the cloud (:mod:`.lb_plan`, :mod:`.realise`), capture on each host's
physnet uplinks, probe every ordered pair of VM ports with the design's flows,
tear down, and return a :class:`~labtwin.records.Run` with ``backend:
emulation``. Probe records carry the same ``src``/``dst``/``protocol``/
``port``/``verdict`` fields as the model's, so the twin joins them.
"""

from __future__ import annotations

import tempfile
import time
from itertools import permutations
from pathlib import Path
from typing import Any, Mapping

from labtwin.description import Cloud
from labtwin.description.flows import parse_flows
from labtwin.emulation import captures as cap
from labtwin.emulation import ovn_cloud as ovn_control
from labtwin.emulation.naming import new_run_id
from labtwin.emulation.probes import ProbeSpec, probe
from labtwin.emulation.realise import Realisation
from labtwin.records import Recorder, Run

from ..spec import OVN_LOCALNET_CONFLICT, ReachabilityDesign
from .neutron_agent import program_hosts
from .plan import plan


def emulate(
    cloud: Cloud, design: Mapping[str, Any], seed: int, topology: str = "", out_dir=None, timeout: float = 1.0
) -> Run:
    """Realise *cloud*, probe every ordered VM pair with ``design.probes``, tear down.

    *timeout* is how long silence must last before a probe counts as blocked.
    Each source sends its whole batch at once, so it costs about one timeout
    per run; 1 s keeps a loaded machine (CI, two cores) from turning a slow
    answer into a false "blocked".
    """
    design = ReachabilityDesign.of(design)
    flows = parse_flows(design.probes)
    recorder = Recorder()
    t0 = time.perf_counter()
    out = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="labtwin-"))
    (out / "pcap").mkdir(parents=True, exist_ok=True)
    if design.control == "ovn":
        the_plan = ovn_control.plan_ovn(cloud, new_run_id())
    else:
        the_plan = plan(cloud, new_run_id(), filters=design.control == "labtwin")
    calls: dict = {}
    with Realisation(the_plan) as real:
        _record_bringup(recorder, the_plan, real, t0)
        if design.control == "neutron":
            calls = program_hosts(real, cloud, the_plan, recorder, t0)
        ovn = ovn_control.bring_up(real, cloud, recorder, t0) if design.control == "ovn" else None
        points = _start_captures(real, out, the_plan)
        specs = _specs(cloud, the_plan, flows)
        start = time.perf_counter() - t0
        results = probe(real.runner, real.pids, specs, timeout=timeout)
        recorder.operation("probes", "", start, time.perf_counter() - t0 - start, count=len(specs))
        for point in points:
            cap.stop(point)
        skips = ovn_control.localnet_skips(ovn.chassis) if ovn else {}
        nb_rows = ovn_control.save_nb(real, ovn, out / "ovn-nb.json") if ovn else {}
        unobserved = {p.name for p in cloud.vm_ports if p.host in skips}
        for r in results:
            s = r.spec
            not_compared = {"not_compared": OVN_LOCALNET_CONFLICT} if {s.src, s.dst} & unobserved else {}
            recorder.probe(
                s.src, s.dst, s.protocol, s.port, r.verdict, t=start, latency_s=r.latency_s, **r.detail, **not_compared
            )
        for point in points:
            recorder.event(
                time.perf_counter() - t0,
                "capture",
                host=point.subject,
                subject=point.dev,
                pcap=str(point.path.relative_to(out)),
                seen=cap.summarise(point.path, limit=50),
            )
    real.record_teardown(recorder, t0)
    summary = {**_summary(recorder, real, the_plan), "control": design.control}
    if design.control == "ovn":  # each (host, skipped localnet port) OVN logged: one network on one host
        summary["ovn_localnet_conflicts"] = sum(len(ports) for ports in skips.values())
        summary["ovn_nb_rows"] = nb_rows  # rows per NB table Neutron wrote; every row in ovn-nb.json beside the run
        summary["ovn_localnet_skipped"] = skips
        summary["not_compared"] = sum("not_compared" in p.detail for p in _probes(recorder))
    if calls:
        summary["neutron_calls"] = calls
    run = Run("reachability", "emulation", dict(design), seed, topology, summary, recorder.records)
    if out_dir:
        run.save(out)
    return run


def _record_bringup(recorder: Recorder, the_plan, real: Realisation, t0: float) -> None:
    at = 0.0
    for phase in ("namespaces", "veths", "ovs", "sysctls", "links", "filters"):
        recorder.operation(f"bringup.{phase}", "", at, real.timings.get(phase, 0.0))
        at += real.timings.get(phase, 0.0)
    for ns in the_plan.namespaces:
        rules = the_plan.config[ns.key].rules
        if rules is not None:
            recorder.operation(
                "rules.applied",
                ns.subject,
                at,
                real.timings.get("filters", 0.0),
                count=rules.rules_v4 + rules.rules_v6,
                ipsets=rules.sets,
            )


def _start_captures(real: Realisation, out: Path, the_plan) -> list:
    """One capture per host on each physnet uplink (what crosses the fabric)."""
    points = []
    for veth in the_plan.veths:
        ns = the_plan.ns(veth.a)
        if ns.role == "host" and veth.b == "root":
            path = out / "pcap" / f"{ns.subject}-{veth.a_dev}.pcap"
            points.append(cap.start(real.runner, real.pid(ns.key), cap.Capture(ns.key, ns.subject, veth.a_dev, path)))
    return points


def _specs(cloud: Cloud, the_plan, flows) -> list[ProbeSpec]:
    specs = []
    for src, dst in permutations(cloud.vm_ports, 2):
        ends = the_plan.endpoints[src.name], the_plan.endpoints[dst.name]
        for flow in flows:
            ip = next((i for i in ends[1].ips if i.version == 4), ends[1].ips[0])
            specs.append(ProbeSpec(src.name, dst.name, ends[0].ns, str(ip), flow.protocol, flow.port))
    return specs


def _probes(recorder: Recorder) -> list:
    return [r for r in recorder.records if type(r).__name__ == "Probe"]


def _summary(recorder: Recorder, real: Realisation, the_plan) -> dict:
    """*allowed* counts the compared probes (a probe marked ``not_compared`` is neither side's claim)."""
    probes = _probes(recorder)
    allowed = [p for p in probes if p.verdict == "allowed"]
    compared = [p for p in allowed if "not_compared" not in p.detail]
    matrix: dict = {}
    for p in allowed:
        matrix.setdefault(p.src, {}).setdefault(p.dst, []).append(
            p.protocol if p.port is None else f"{p.protocol}:{p.port}"
        )
    latencies = sorted(p.latency_s for p in allowed if p.latency_s is not None)
    bringup = sum(v for k, v in real.timings.items() if k != "teardown")
    ports = sum(n.role == "port" for n in the_plan.namespaces)
    return {
        "probe_count": len(probes),
        "allowed": len(compared),
        "blocked": len(probes) - len(allowed),
        "matrix": matrix,
        "bringup_s": round(bringup, 4),
        "teardown_s": round(real.timings.get("teardown", 0.0), 4),
        "ports": ports,
        "namespaces": len(the_plan.namespaces),
        "probe_latency_max_s": round(latencies[-1], 6) if latencies else None,
    }
