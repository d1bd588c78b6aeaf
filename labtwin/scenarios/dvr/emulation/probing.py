"""What both controls' dvr emulations share: capture points started side by side, the probe agent, the VIP's
failover by hand."""

from __future__ import annotations

import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from labtwin.description import Cloud
from labtwin.emulation import captures as cap
from labtwin.emulation.ledger import ROOT, Item
from labtwin.emulation.realise import Realisation
from labtwin.emulation.runner import Step, in_netns
from labtwin.records import Recorder

from .. import spec as classes
from ..knobs import DvrDesign
from ..matrix import crosses_network_node as crosses_network_node  # both controls' via_network_node: the model's rule
from ..matrix import expected_share, traffic_matrix
from .plan import CapturePoint
from .probe_worker import capture_filter

PROBE_TIMEOUT = 1.0
#: Programs run by file path with ``python -I``: they import only the standard library and scapy, so neither
#: labtwin nor its scenarios load in them (a second and more per start), and their directory is not on sys.path.
PROBE_WORKER = Path(__file__).with_name("probe_worker.py")


def start_captures(real: Realisation, points: list[CapturePoint], out: Path) -> list[tuple[str, cap.Capture]]:
    """One tcpdump per capture point, nanosecond timestamps, probe packets only (or the point's own filter);
    started side by side."""

    def start(i_point):
        i, point = i_point
        pid = os.getpid() if point.ns == ROOT else real.pid(point.ns)
        path = out / "pcap" / f"{i:03d}-{point.dev}.pcap"
        argv = in_netns(
            pid,
            [
                "tcpdump",
                "-i",
                point.dev,
                "-n",
                "-U",
                "--immediate-mode",
                "-s",
                "256",
                "--time-stamp-precision=nano",
                "-Z",
                "root",
                "-w",
                str(path),
                point.bpf or capture_filter(),
            ],
        )
        item = Item(
            f"capture:{point.ns}:{point.dev}", "process", f"tcpdump {point.dev}", where=point.ns, match=tuple(argv[3:])
        )
        proc = real.runner.spawn(Step(argv, what=f"capture {point.dev}", creates=(item,)))
        c = cap.Capture(point.ns, point.label, point.dev, path, proc)
        cap._wait_listening(proc, 10.0)
        return point.label, c

    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(start, enumerate(points)))


def run_agent(real: Realisation, steps: list[dict]) -> list[dict]:
    """Run the agent on *steps* (one process, one step after another); its result per step."""
    if not steps:
        return []
    request = {"timeout": PROBE_TIMEOUT, "steps": steps}
    done = real.runner.run(
        Step(
            (sys.executable, "-I", str(PROBE_WORKER)),
            what=f"{len(steps)} dvr probe steps",
            stdin=json.dumps(request),
            timeout=60 + 2 * PROBE_TIMEOUT * len(steps),
        )
    )
    return json.loads(done.stdout)["results"]


def failover(real: Realisation, vm_ns: dict[str, str], v: classes.Vip) -> None:
    """keepalived's failover, by hand: the VIP leaves the old master and appears on the new one (*vm_ns*: VM
    port name -> its namespace key)."""
    prefix = v.subnet.cidr.prefixlen
    for port, verb in ((v.old_master, "del"), (v.new_master, "add")):
        real.runner.run(
            Step(
                in_netns(real.pid(vm_ns[port.name]), ["ip", "addr", verb, f"{v.ip}/{prefix}", "dev", "eth0"]),
                what=f"VIP {verb} on {port.name}",
            )
        )


#: What a path record holds, in the model's order (the summary's ``paths``).
PATH_KEYS = (
    "class",
    "router",
    "mode",
    "src",
    "dst",
    "protocol",
    "port",
    "hops",
    "via_network_node",
    "nat",
    "reachable",
    "ttl",
    "wires",
    "reply",
    "reply_ttl",
)


def record_paths(rec: Recorder, paths: list[dict]) -> None:
    """One probe record per observed path: its verdict and latency, every path key as a detail (and whatever
    else the control observed, such as OVN's tunnel keys); ``latency_s`` and ``answer`` leave the path."""
    for p in paths:
        latency = p.pop("latency_s")
        extra = {k: v for k, v in p.items() if k not in PATH_KEYS}
        rec.probe(
            p["src"],
            p["dst"],
            p["protocol"],
            p["port"],
            "allowed" if p["reachable"] else "blocked",
            latency_s=latency,
            **{k: p[k] for k in PATH_KEYS if k not in ("src", "dst", "protocol", "port", "reachable")},
            **extra,
        )
        p.pop("answer", None)


def summarise_run(
    cloud: Cloud, design: DvrDesign, paths: list[dict], real: Realisation, bringup: float, points: int
) -> dict:
    """``paths`` and ``network_node_share`` as the model writes them, plus bring-up and teardown times."""
    weights, crossing = traffic_matrix(cloud, design, paths)
    return {
        "router_modes": classes.modes_said(cloud, design),
        "paths": [{k: p[k] for k in PATH_KEYS} for p in paths],
        "network_node": classes.network_node(cloud).name,
        "network_node_share": round(expected_share(weights, crossing), 6),
        "bringup_s": round(bringup, 3),
        "bringup_phases_s": {k: round(v, 3) for k, v in real.timings.items() if k != "teardown"},
        "teardown_s": round(real.timings.get("teardown", 0.0), 3),
        "namespaces": len(real.plan.namespaces),
        "capture_points": points,
    }
