"""Probe engine: batches of scapy probes, one agent process per source namespace.

:func:`probe` groups :class:`ProbeSpec` s by source namespace and runs
``python -m labtwin.emulation.probe_agent`` inside each (``nsenter``, argv
list, JSON on stdin), all sources in parallel. The verdict rule is the
agent's (see :mod:`labtwin.emulation.probe_agent`): allowed only when the
destination itself answered.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Optional

from .runner import Runner, Step, in_netns


@dataclass(frozen=True)
class ProbeSpec:
    """Ask: from namespace ``src_ns`` may ``protocol``/``port`` reach ``dst_ip``?"""

    src: str  # port name (records)
    dst: str  # port name (records)
    src_ns: str
    dst_ip: str
    protocol: str
    port: Optional[int] = None
    #: the source address the probe is sent from (None: the interface's own); e.g. a VIP the port holds
    src_ip: Optional[str] = None


class ProbeAgentSilent(RuntimeError):
    """A probe agent ended without answering for its probes: no verdict can be read, so none is made up."""


@dataclass(frozen=True)
class ProbeResult:
    spec: ProbeSpec
    verdict: str
    answer: str
    latency_s: Optional[float]
    detail: dict = field(default_factory=dict)


def agent_step(pid: int, specs: list[ProbeSpec], timeout: float, iface: str = "eth0") -> Step:
    """The step that runs one agent in the namespace of *pid* for *specs*."""
    request = {
        "timeout": timeout,
        "iface": iface,
        "probes": [
            {
                "id": i,
                "protocol": s.protocol,
                "dst": s.dst_ip,
                "port": s.port,
                **({"src": s.src_ip} if s.src_ip else {}),
            }
            for i, s in enumerate(specs)
        ],
    }
    return Step(
        in_netns(pid, [sys.executable, "-m", "labtwin.emulation.probe_agent"]),
        what=f"{len(specs)} probes",
        stdin=json.dumps(request),
        timeout=30 + 3 * timeout,
    )


def probe(
    runner: Runner, pids: dict[str, int], specs: list[ProbeSpec], timeout: float = 0.5, parallel: int = 16
) -> list[ProbeResult]:
    """Run every spec (grouped per source namespace, sources in parallel); results in spec order."""
    by_source: dict[str, list[ProbeSpec]] = {}
    for spec in specs:
        by_source.setdefault(spec.src_ns, []).append(spec)
    steps = [agent_step(pids[ns], batch, timeout) for ns, batch in by_source.items()]
    results = runner.run_all(steps, parallel=parallel)
    out: dict[ProbeSpec, ProbeResult] = {}
    for (ns, batch), result in zip(by_source.items(), results):
        try:
            out.update(zip(batch, parse_agent_output(batch, result.stdout)))
        except ProbeAgentSilent as exc:
            stderr = " ".join((result.stderr or "").split())[-300:]
            raise ProbeAgentSilent(f"probe agent in namespace {ns}: {exc}; its stderr: {stderr or '(empty)'}") from None
    return [out[s] for s in specs]


def parse_agent_output(specs: list[ProbeSpec], text: str) -> list[ProbeResult]:
    """The agent's JSON as results (pure: tested on recorded output); output that is missing, unreadable or
    short of a probe raises :class:`ProbeAgentSilent` (a verdict is read from packets or not at all).

    >>> spec = ProbeSpec("a", "b", "port:0", "10.0.0.3", "tcp", 22)
    >>> parse_agent_output([spec], '{"results": [{"id": 0, "verdict": "allowed", "answer": "rst", '
    ...     '"latency_s": 0.001, "reply_hops": 64, "reply_src_mac": null}]}')[0].verdict
    'allowed'
    """
    if not text.strip():
        raise ProbeAgentSilent(f"no output for {len(specs)} probe(s) (first: {specs[0].src} -> {specs[0].dst_ip})")
    try:
        rows = {r["id"]: r for r in json.loads(text)["results"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise ProbeAgentSilent(f"unreadable output ({type(exc).__name__}: {exc}): {text[:200]!r}") from None
    missing = [i for i in range(len(specs)) if i not in rows]
    if missing:
        raise ProbeAgentSilent(
            f"no result for {len(missing)} of {len(specs)} probe(s), first {specs[missing[0]].dst_ip}"
        )
    results = []
    for i, spec in enumerate(specs):
        row = rows[i]
        detail = {
            "answer": row["answer"],
            "reply_hops": row.get("reply_hops"),
            "reply_src_mac": row.get("reply_src_mac"),
            "dst_ip": spec.dst_ip,
        }
        results.append(ProbeResult(spec, row["verdict"], row["answer"], row.get("latency_s"), detail))
    return results
