"""Verdicts from real packets after a join or a leave of sg-fanout (scapy probes, and the poller's replies)."""

from __future__ import annotations

from typing import Optional

from labtwin.emulation.probes import ProbeResult, ProbeSpec, probe
from labtwin.records import Recorder

from ..spec import vip_source
from .rules import EPort
from .workload import Workload


def probe_join(w: Workload, new: EPort, members: list, first: dict, rec: Recorder, t_api: float, back=None) -> None:
    """Verdicts from real packets: the new port to every port referencing its group (*members*) allowed, and
    from each of *back* (default: *members*: a self-referencing group) to it; the non-member blocked both ways.

    Sources new port and non-member: the substrate's scapy probe agent (one
    process each). Member -> new port: the poller's echo replies (the same
    rule: allowed only if the destination itself answered), because one scapy
    process per member costs about a second each on two cores.
    """
    real, layout, ports = w.real, w.layout, w.ports
    proto, _, port = layout.probe.partition(":")
    dport = int(port) if port else None
    ends = real.plan.endpoints
    specs = [ProbeSpec(new.name, m.name, ends[new.name].ns, m.ip, proto, dport) for m in members]
    vip = vip_source(new.name, new.pairs)
    if vip is not None:  # from the new port's VIP: a member address under ML2/OVS, not under ML2/OVN
        specs += [ProbeSpec(vip[0], m.name, ends[new.name].ns, m.ip, proto, dport, src_ip=vip[1]) for m in members]
    if layout.outsider is not None:
        out = ports[layout.outsider.name]
        specs += [
            ProbeSpec(new.name, out.name, ends[new.name].ns, out.ip, proto, dport),
            ProbeSpec(out.name, new.name, ends[out.name].ns, new.ip, proto, dport),
        ]
    for r in probe(real.runner, real.pids, specs, timeout=0.5):
        latency = first.get((r.spec.src, r.spec.dst))
        _record(rec, r, t_api + (latency or 0.0), latency, join=new.name)
    for m in members if back is None else back:
        latency = first.get((m.name, new.name))
        rec.probe(
            m.name,
            new.name,
            proto,
            dport,
            "allowed" if latency is not None else "blocked",
            t_api + (latency or 0.0),
            latency,
            join=new.name,
            answer="answered" if latency else "none",
            engine="poll",
        )


def probe_left(w: Workload, gone: EPort, remaining: list, rec: Recorder, at: float) -> None:
    """The departed address -> every remaining port referencing the group that was there before the run (members
    of a self-referencing group, ports of groups referencing it): must be blocked.

    The model records the same pairs (a joined port was probed with the
    departed one at its join, and a run probes each pair once).
    """
    proto, _, port = w.layout.probe.partition(":")
    dport = int(port) if port else None
    joined = {m.name for m in w.layout.joins}
    src_ns = w.real.plan.endpoints[gone.name].ns
    specs = [
        ProbeSpec(gone.name, m.name, src_ns, m.ip, proto, dport)
        for m in (*remaining, *referrers(w))
        if m.name not in joined and m.watches
    ]
    for r in probe(w.real.runner, w.real.pids, specs, timeout=0.5):
        _record(rec, r, at, r.latency_s, leave=gone.name)


def referrers(w: Workload) -> list:
    """The ports outside the group whose rules reference it (refreshed on each change, never joining or leaving)."""
    return [w.ports[m.name] for m in w.layout.referrers]


def _record(rec: Recorder, r: ProbeResult, at: float, latency: Optional[float], **which: str) -> None:
    """One scapy probe's result as a probe record (*which*: ``join=`` or ``leave=`` the port)."""
    s = r.spec
    rec.probe(s.src, s.dst, s.protocol, s.port, r.verdict, at, latency, **which, answer=r.answer, engine="scapy")
