"""Capture points: tcpdump on a device in a namespace, saved as pcap, summarised.

A capture is a long-lived process, so it is ledgered (by its exact argv)
before it starts and ended by teardown or ``labtwin clean``. :func:`summarise`
reads the pcap back with scapy and says what the capture point saw: per
packet the MACs, addresses (after any NAT), protocol and TTL/hop limit.
"""

from __future__ import annotations

import select
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .ledger import Item
from .runner import Runner, Step, in_netns


@dataclass
class Capture:
    ns: str  # namespace key
    subject: str  # what it stands for (host name): records only
    dev: str
    path: Path
    proc: Optional[object] = None


def start(runner: Runner, pid: int, capture: Capture, ready_timeout: float = 5.0) -> Capture:
    """Start tcpdump for *capture* and wait until it listens."""
    argv = in_netns(pid, ["tcpdump", "-i", capture.dev, "-n", "-U", "-s", "256", "-Z", "root", "-w", str(capture.path)])
    item = Item(
        f"capture:{capture.ns}:{capture.dev}",
        "process",
        f"tcpdump {capture.dev}",
        where=capture.ns,
        match=tuple(argv[3:]),
    )
    capture.proc = runner.spawn(Step(argv, what=f"capture {capture.dev} in {capture.ns}", creates=(item,)))
    if capture.proc is not None:
        _wait_listening(capture.proc, ready_timeout)
    return capture


def _wait_listening(proc, timeout: float) -> None:
    """Until tcpdump says it listens (or *timeout*); a tcpdump that exits instead is an error with its words."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], max(0.0, deadline - time.monotonic()))
        line = proc.stderr.readline() if ready else ""
        if "listening on" in line:
            return
        if proc.poll() is not None:
            raise RuntimeError(
                f"tcpdump exited (status {proc.returncode}) instead of capturing: {(line + proc.stderr.read()).strip()}"
            )
        if not ready:
            return


def read_pcap(path: Path):
    """The packets of a capture this run made; a missing or empty file is an error (tcpdump writes its
    header as soon as it runs), never "no packets": a count must not come from a capture that failed."""
    from scapy.utils import rdpcap

    if not Path(path).exists() or Path(path).stat().st_size == 0:
        raise RuntimeError(f"capture {path} is missing or empty: tcpdump did not write it")
    return rdpcap(str(path))


def stop(capture: Capture) -> None:
    """Stop tcpdump (SIGTERM flushes the pcap)."""
    if capture.proc is not None and capture.proc.poll() is None:
        capture.proc.terminate()
        try:
            capture.proc.wait(timeout=5)
        except Exception:
            capture.proc.kill()
            capture.proc.wait(timeout=5)


def summarise(path: Path, limit: int = 200) -> list[dict]:
    """What a pcap holds, one dict per packet (first *limit*): MACs, addresses, protocol, TTL."""
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import ARP, Ether

    rows = []
    for pkt in read_pcap(path)[:limit]:
        row = {"src_mac": pkt[Ether].src, "dst_mac": pkt[Ether].dst} if pkt.haslayer(Ether) else {}
        if pkt.haslayer(IP):
            row.update(src=pkt[IP].src, dst=pkt[IP].dst, proto=pkt[IP].proto, ttl=pkt[IP].ttl)
        elif pkt.haslayer(IPv6):
            row.update(src=pkt[IPv6].src, dst=pkt[IPv6].dst, proto=pkt[IPv6].nh, ttl=pkt[IPv6].hlim)
        elif pkt.haslayer(ARP):
            row.update(src=pkt[ARP].psrc, dst=pkt[ARP].pdst, proto="arp", ttl=None)
        rows.append(row)
    return rows
