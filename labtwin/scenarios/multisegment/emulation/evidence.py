"""Reading what the kernel and the captures say, for ``multisegment`` (pure functions).

- :func:`parse_links`: ``ip -o link show`` in a host namespace -> device names
  and the bridge each is enslaved to (``master``): which segments' uplinks
  really share a bridge;
- :func:`frames`: a pcap -> one row per frame (MACs, IPs, TTL, ICMP type, and
  whether it is a labtwin broadcast probe), so a probe's verdict comes from
  what crossed a VM's ``eth0``.
"""

from __future__ import annotations

import re
from pathlib import Path

from labtwin.emulation.captures import read_pcap
from labtwin.emulation.probe_agent import BROADCAST_MARK

_MASTER = re.compile(r"\smaster\s(\S+)")


def parse_links(text: str) -> dict[str, str | None]:
    """``{device: master bridge or None}`` from ``ip -o link show`` output.

    >>> out = ("1: lo: <LOOPBACK,UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT\\\\    link/loopback\\n"
    ...        "4: bond0.2011@if5: <BROADCAST,UP> mtu 1500 qdisc noqueue master brq5f0b1c3d-aa state UP\\n"
    ...        "6: brq5f0b1c3d-aa: <BROADCAST,UP> mtu 1500 qdisc noqueue state UP mode DEFAULT\\n")
    >>> parse_links(out)
    {'lo': None, 'bond0.2011': 'brq5f0b1c3d-aa', 'brq5f0b1c3d-aa': None}
    """
    links: dict[str, str | None] = {}
    for line in text.splitlines():
        parts = line.split("\\")[0].split(":", 2)
        if len(parts) < 3 or not parts[0].strip().isdigit():
            continue
        master = _MASTER.search(parts[2])
        links[parts[1].strip().split("@")[0]] = master.group(1) if master else None
    return links


def bridge_members(links: dict[str, str | None]) -> dict[str, list[str]]:
    """``{bridge: [enslaved devices]}`` (sorted), from :func:`parse_links`.

    >>> bridge_members({"tap1": "brqA", "bond0.1": "brqA", "brqA": None, "lo": None})
    {'brqA': ['bond0.1', 'tap1']}
    """
    members: dict[str, list[str]] = {}
    for dev, master in links.items():
        if master is not None:
            members.setdefault(master, []).append(dev)
    return {bridge: sorted(devs) for bridge, devs in sorted(members.items())}


def frames(path: Path, limit: int = 2000) -> list[dict]:
    """One row per captured frame: src/dst MAC, IP src/dst, TTL, ICMP type, broadcast-probe flag."""
    from scapy.layers.inet import ICMP, IP, UDP
    from scapy.layers.l2 import Ether

    rows = []
    for pkt in read_pcap(path)[:limit]:
        if not pkt.haslayer(Ether):
            continue
        row = {"src_mac": pkt[Ether].src, "dst_mac": pkt[Ether].dst}
        if pkt.haslayer(IP):
            row.update(src=pkt[IP].src, dst=pkt[IP].dst, ttl=pkt[IP].ttl)
        if pkt.haslayer(ICMP):
            row["icmp_type"] = pkt[ICMP].type
        if pkt.haslayer(UDP) and BROADCAST_MARK in bytes(pkt[UDP].payload):
            row["broadcast_probe"] = True
        rows.append(row)
    return rows


def broadcasts_seen(rows: list[dict]) -> set[str]:
    """MACs whose broadcast probe reached this capture point.

    >>> sorted(broadcasts_seen([{"src_mac": "fa:16:3e:00:00:01", "broadcast_probe": True}, {"src_mac": "x"}]))
    ['fa:16:3e:00:00:01']
    """
    return {r["src_mac"] for r in rows if r.get("broadcast_probe")}


def echo_replies(rows: list[dict], src_ip: str, dst_ip: str) -> list[dict]:
    """Echo replies from *src_ip* to *dst_ip* as received: their TTL and the MAC that delivered them.

    >>> echo_replies([{"src": "10.0.0.3", "dst": "10.0.0.2", "icmp_type": 0, "ttl": 63, "src_mac": "m"}],
    ...              "10.0.0.3", "10.0.0.2")
    [{'ttl': 63, 'src_mac': 'm'}]
    """
    return [
        {"ttl": r["ttl"], "src_mac": r["src_mac"]}
        for r in rows
        if r.get("icmp_type") == 0 and r.get("src") == src_ip and r.get("dst") == dst_ip
    ]
