"""The ``multisegment`` scenario, emulated: real design-named bridges, VLAN fabric, rack routers, packets.

:func:`emulate` plans (:mod:`.plan`), realises, reads the host
bridges back from the kernel, captures on every VM's ``eth0``, and sends from
every VM to every other VM of its rack (scapy, :mod:`.probe_agent`):

- ``arp``: the destination answers an ARP request: the two are in one
  broadcast domain (same segment, or segments merged by a host bridge);
- ``icmp``: an echo gets its reply (at L2 or through the rack router);
- ``icmp-via-gateway``: the reply crossed exactly one router, the source's
  segment gateway: it arrived with TTL 63 (sent with 64) from the gateway's
  MAC (seen in the source's capture). ``blocked`` means it did not: either no
  reply, or a direct one (TTL 64 from the destination's own MAC);
- ``broadcast``: the source's Ethernet broadcast is in the destination's capture.

Port names, protocols and verdicts match the model's probe records, so the
twin joins them. The summary counts leaks as the kernel shows them (bridges
enslaving more than one segment's uplink) and as packets show them.

Under ``control=ovn`` the hosts are OVN chassis and Neutron 29's ML2/OVN
creates the cloud (:mod:`.ovn`); the probes and captures are the same, the
leaks are read from OVN (each chassis's patched localnet ports and the ports it
claimed), and an ARP probe's answer may come from OVN's ARP responder rather
than the destination.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from itertools import permutations
from pathlib import Path
from typing import Any, Mapping

from labtwin.description import Cloud
from labtwin.description.generate import routed_cloud
from labtwin.emulation import captures as cap
from labtwin.emulation import ovn_cloud
from labtwin.emulation.naming import new_run_id
from labtwin.emulation.probes import ProbeSpec, probe
from labtwin.emulation.realise import Realisation
from labtwin.emulation.runner import Step, in_netns
from labtwin.records import Recorder, Run

from ..spec import INTER_RACK_HOPS, MultisegmentDesign, inter_rack_pairs
from . import ovn
from .evidence import bridge_members, broadcasts_seen, echo_replies, frames, parse_links
from .plan import SegmentPlan, Vm, plan_multisegment

SENT_TTL = 64  # Linux's default TTL in the VM namespaces
PHASES = ("namespaces", "veths", "ovs", "sysctls", "links", "filters")


def emulate(
    cloud: Cloud | None, design: Mapping[str, Any], seed: int, topology: str = "", out_dir=None, timeout: float = 1.0
) -> Run:
    """Realise *cloud* under *design*, probe every VM pair of each rack, tear down.

    Without a cloud, build the one the model generates from ``racks``,
    ``hosts_per_rack`` and ``max_prefix``, with one VM per host.
    """
    design = MultisegmentDesign.of(design)
    if cloud is None:
        cloud = routed_cloud(
            int(design.racks),
            int(design.hosts_per_rack),
            int(design.max_prefix),
            design.agent,
            vms_per_host=1,
        )
    recorder, t0 = Recorder(), time.perf_counter()
    out = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="labtwin-"))
    (out / "pcap").mkdir(parents=True, exist_ok=True)
    run_id = new_run_id()
    sp = ovn.plan_ovn(cloud, run_id) if design.control == "ovn" else plan_multisegment(cloud, design, run_id)
    for refused in sp.refused:
        recorder.event(0.0, "allocation_failed", refused["host"], refused["port"], reason=refused["reason"], status=409)
    with Realisation(sp.plan) as real:
        _record_bringup(recorder, real)
        chassis = ovn_cloud.bring_up(real, cloud, recorder, t0) if design.control == "ovn" else None
        kernel = {
            host: parse_links(_run_in(real, key, ["ip", "-o", "link", "show"])) for host, key in sp.host_ns.items()
        }
        unicast = _unicast_localnets(real, cloud, chassis) if chassis else {}
        points = _start_captures(real, sp, out)
        start = time.perf_counter() - t0
        results = probe_twice(real, _specs(sp), timeout)
        time.sleep(0.2)  # frames still in flight reach the captures
        for point in points.values():
            cap.stop(point)
        recorder.operation("probes", "", start, time.perf_counter() - t0 - start, count=len(results))
        seen = {vm: frames(point.path) for vm, point in points.items()}
        _record_probes(recorder, sp, results, seen, start)
        observed = _ovn_observed(real, cloud, sp, chassis, out, unicast) if chassis else {}
    real.record_teardown(recorder, t0)
    summary = {**summarize(recorder, sp, kernel, real.timings), **observed, "control": design.control}
    run = Run("multisegment", "emulation", dict(design), seed, topology, summary, recorder.records)
    if out_dir:
        run.save(out)
    return run


def _unicast_localnets(real: Realisation, cloud: Cloud, chassis) -> dict:
    """(host, network) -> the segment whose localnet port the host's chassis sends unicast by, now
    (:func:`.ovn.unicast_localnets`)."""
    sb = chassis.central.sb_rows(real.runner, ("Port_Binding", "Chassis", "Datapath_Binding"))
    hosts = set(ovn.claimed_by(sb, chassis.neutron["ports"]).values())
    return ovn.unicast_localnets(real, chassis, cloud, sb, ovn.localnet_segments(cloud, sb), hosts)


def _ovn_observed(real: Realisation, cloud: Cloud, sp: SegmentPlan, chassis, out: Path, unicast: dict) -> dict:
    """Under ``control=ovn``: the localnet port each chassis sent unicast by (*unicast*, read before the probes;
    read again now, and a change is an error: the probes would straddle two states), the L2 domains its patched
    localnet ports make with the ports it claimed (its OVS, the SB), and the NB Neutron wrote (``ovn-nb.json``
    beside the run)."""
    after = _unicast_localnets(real, cloud, chassis)
    if after != unicast:
        raise RuntimeError(f"OVN changed the localnet ports unicast leaves by during the probes: {unicast} -> {after}")
    sb = chassis.central.sb_rows(real.runner, ("Port_Binding", "Chassis"))
    carried = ovn.localnet_segments(cloud, sb)
    claimed = ovn.claimed_by(sb, chassis.neutron["ports"])
    domains = ovn.measured_domains(cloud, sp, claimed, ovn.patched_localnets(real, chassis), carried)
    return {
        "l2_domains_measured": domains,
        "l2_leaks": sum(d["leak"] for rows in domains.values() for d in rows),
        "ovn_localnet": ovn.localnet_knob(unicast),
        "ovn_localnet_skipped": ovn_cloud.localnet_skips(chassis.chassis),
        "ovn_nb_rows": ovn_cloud.save_nb(real, chassis, out / "ovn-nb.json"),
    }


def probe_twice(real: Realisation, specs: list[ProbeSpec], timeout: float) -> list:
    """Probe; then once more, with twice the timeout, whatever was blocked (and every broadcast).

    A first packet through a busy userspace OVS can take longer than the
    timeout; a verdict of "blocked" is only kept when a second try agrees.
    """
    first = probe(real.runner, real.pids, specs, timeout=timeout)
    again = [r.spec for r in first if r.verdict == "blocked"]
    if not again:
        return first
    second = {r.spec: r for r in probe(real.runner, real.pids, again, timeout=2 * timeout)}
    return [second.get(r.spec, r) if r.verdict == "blocked" else r for r in first]


def _run_in(real: Realisation, key: str, argv: list[str]) -> str:
    return real.runner.run(Step(in_netns(real.pid(key), argv), what=f"{argv[0]} in {key}")).stdout


def _record_bringup(recorder: Recorder, real: Realisation) -> None:
    at = 0.0
    for phase in PHASES:
        recorder.operation(f"bringup.{phase}", "", at, real.timings.get(phase, 0.0))
        at += real.timings.get(phase, 0.0)


def _start_captures(real: Realisation, sp: SegmentPlan, out: Path) -> dict[str, cap.Capture]:
    """One capture per VM on its ``eth0``: what reached the VM (started side by side)."""

    def start(vm: Vm):
        path = out / "pcap" / f"{vm.port}.pcap"
        return vm.port, cap.start(real.runner, real.pid(vm.ns), cap.Capture(vm.ns, vm.port, "eth0", path))

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(pool.map(start, sp.vms))


def rack_pairs(vms: list[Vm]) -> list[tuple[Vm, Vm]]:
    """Ordered pairs of VMs in the same rack."""
    return [(a, b) for a, b in permutations(vms, 2) if a.rack == b.rack]


def cross_rack_pairs(vms: list[Vm]) -> list[tuple[Vm, Vm]]:
    """The first VM of each rack to the first of every other (:func:`~..spec.inter_rack_pairs`), via the spine."""
    by_port = {vm.port: vm for vm in vms}
    return [(by_port[a], by_port[b]) for a, b in inter_rack_pairs([(vm.port, vm.rack) for vm in vms])]


def _specs(sp: SegmentPlan) -> list[ProbeSpec]:
    specs = []
    for a, b in rack_pairs(sp.vms):
        specs += [ProbeSpec(a.port, b.port, a.ns, b.ip, "arp"), ProbeSpec(a.port, b.port, a.ns, b.ip, "icmp")]
    specs += [ProbeSpec(vm.port, "*", vm.ns, "255.255.255.255", "broadcast", 9) for vm in sp.vms]
    specs += [ProbeSpec(a.port, b.port, a.ns, b.ip, "icmp") for a, b in cross_rack_pairs(sp.vms)]
    return specs


def _record_probes(recorder: Recorder, sp: SegmentPlan, results, seen: dict[str, list], t: float) -> None:
    """Per pair: arp, icmp (agent verdicts), icmp-via-gateway (TTL + MAC in the capture), broadcast (capture)."""
    by_key = {(r.spec.src, r.spec.dst, r.spec.protocol): r for r in results}
    vms = {vm.port: vm for vm in sp.vms}
    for a, b in rack_pairs(sp.vms):
        arp, icmp = by_key[(a.port, b.port, "arp")], by_key[(a.port, b.port, "icmp")]
        recorder.probe(
            a.port,
            b.port,
            "arp",
            None,
            arp.verdict,
            t=t,
            latency_s=arp.latency_s,
            answer=arp.answer,
            segments=[a.segment, b.segment],
        )
        _record_ping(recorder, sp, icmp, a, b, seen, t, 1, dst_mac=vms[b.port].mac)
        heard = a.mac in broadcasts_seen(seen.get(b.port, []))
        recorder.probe(
            a.port, b.port, "broadcast", None, "allowed" if heard else "blocked", t=t, segments=[a.segment, b.segment]
        )
    for a, b in cross_rack_pairs(sp.vms):  # through both racks' routers and the spine
        icmp = by_key[(a.port, b.port, "icmp")]
        _record_ping(recorder, sp, icmp, a, b, seen, t, INTER_RACK_HOPS, segments=[a.segment, b.segment])


def _record_ping(recorder: Recorder, sp: SegmentPlan, icmp, a: Vm, b: Vm, seen, t: float, routers: int, **detail):
    """A ping's verdict and hops (from the reply's TTL), and ``icmp-via-gateway``: whether a reply came back
    from the source's gateway (its MAC) routed by *routers* routers (TTL 64 - routers); *detail* goes on it."""
    ttl = icmp.detail.get("reply_hops")
    hops = SENT_TTL - ttl if icmp.verdict == "allowed" and ttl is not None else None
    recorder.probe(
        a.port,
        b.port,
        "icmp",
        None,
        icmp.verdict,
        t=t,
        latency_s=icmp.latency_s,
        hops=hops,
        reply_ttl=ttl,
        segments=[a.segment, b.segment],
    )
    replies = echo_replies(seen.get(a.port, []), b.ip, a.ip)
    gateway = sp.gateway_macs.get(a.segment)
    via = any(r["ttl"] == SENT_TTL - routers and r["src_mac"] == gateway for r in replies)
    recorder.probe(
        a.port,
        b.port,
        "icmp-via-gateway",
        None,
        "allowed" if via else "blocked",
        t=t,
        hops=hops,
        reply_src_macs=sorted({r["src_mac"] for r in replies}),
        gateway_mac=gateway,
        **detail,
    )


def measured_domains(sp: SegmentPlan, kernel: dict[str, dict]) -> dict[str, list[dict]]:
    """Per host, each bridge the kernel has with the segments whose uplinks it enslaves (model's shape)."""
    out = {}
    for host, links in sorted(kernel.items()):
        segment_of = {dev: seg for seg, dev in sp.uplinks.get(host, {}).items()}
        rows = []
        for bridge, devs in bridge_members(links).items():
            segs = sorted(segment_of[d] for d in devs if d in segment_of)
            rows.append({"device": bridge, "segments": segs, "leak": len(segs) > 1})
        out[host] = rows
    return out


def summarize(recorder: Recorder, sp: SegmentPlan, kernel: dict[str, dict], timings: dict) -> dict:
    """Leaks as the kernel and as packets show them, names as the kernel has them, times."""
    probes = [r for r in recorder.records if type(r).__name__ == "Probe"]
    verdict = Counter((p.protocol, p.verdict) for p in probes)
    cross = [p for p in probes if p.detail.get("segments") and len(set(p.detail["segments"])) > 1]
    names = sorted({n for links in kernel.values() for n in links if n != "lo"})
    longest = max(names, key=len, default=None)
    domains = measured_domains(sp, kernel)
    return {
        "vms": len(sp.vms),
        "ports_refused": sp.refused,
        "allocations_failed": dict(Counter(r["reason"] for r in sp.refused)),
        "l2_domains_measured": domains,
        "l2_leaks": sum(d["leak"] for rows in domains.values() for d in rows),
        "bridge_names": {host: sorted(bridge_members(links)) for host, links in sorted(kernel.items())},
        "probe_count": len(probes),
        "arp_leaks": sum(p.protocol == "arp" and p.verdict == "allowed" for p in cross),
        "broadcast_leaks": sum(p.protocol == "broadcast" and p.verdict == "allowed" for p in cross),
        "probes_via_gateway": verdict[("icmp-via-gateway", "allowed")],
        "icmp_reached": verdict[("icmp", "allowed")],
        "longest_interface_name": longest,
        "longest_interface_name_len": len(longest) if longest else 0,
        # what was built is all there is here; the model's run-wide names include its demand and added segments
        "built_longest_interface_name": longest,
        "built_longest_interface_name_len": len(longest) if longest else 0,
        "namespaces": len(sp.plan.namespaces),
        "bringup_s": round(sum(timings.get(p, 0.0) for p in PHASES), 4),
        "teardown_s": round(timings.get("teardown", 0.0), 4),
    }
