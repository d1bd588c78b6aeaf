"""What the capture points saw, turned into a path and a NAT verdict per probe (pure functions).

Each capture point (a device and the hop label it stands for) writes a pcap
holding only probe packets (:func:`~labtwin.scenarios.dvr.emulation.probe_worker.capture_filter`).
:func:`sightings` reads one into rows ``(time, token, direction, src, dst)``;
:func:`path` orders every point that saw a probe's request by time and folds
repeats (a veth seen at both ends, a bridge entered and left) into one hop,
as the model writes paths. A broadcast request (DHCP) floods everywhere, so
its path is the unicast answer's path read backwards. OpenFlow stages with no
device (table 77) are seen by their flow's packet counter and follow the last
hop on their host.

NAT comes from the far end: the source address the outside world saw
(``snat fixed->fip|qg|fg``), or the destination address the VM saw after a
probe sent to its floating IP (``dnat fip->fixed``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

from labtwin.emulation.captures import read_pcap

from .probe_worker import MAGIC, MAGIC16, TCP_PORT_BASE


@dataclass(frozen=True)
class Sighting:
    t: float
    token: int
    request: bool
    src: str
    dst: str
    ttl: int = 0  # IPv4 TTL or IPv6 hop limit as seen there
    src_mac: str = ""
    dst_mac: str = ""
    vlan: Optional[int] = None  # the 802.1Q tag on a trunk

    @property
    def frame(self) -> tuple[Optional[int], str, str]:
        """What tells one wire crossing from another: the tag and both MACs."""
        return self.vlan, self.src_mac, self.dst_mac


def sightings(pcap: Path) -> list[Sighting]:
    """Every probe packet in *pcap*: when, which probe, request or answer, addresses as seen there."""
    from scapy.layers import dhcp, inet, inet6, l2  # noqa: F401 -- the link and IP layers, before the first read

    return [s for pkt in read_pcap(pcap) if (s := sighting(pkt, float(pkt.time))) is not None]


def sighting(pkt, t: float) -> Optional[Sighting]:
    """*pkt* (a scapy frame) seen at *t* as a :class:`Sighting`, or None when it is not a probe packet."""
    from scapy.layers.dhcp import BOOTP
    from scapy.layers.inet import ICMP, IP, TCP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Dot1Q, Ether

    ip = pkt[IP] if pkt.haslayer(IP) else pkt[IPv6] if pkt.haslayer(IPv6) else None
    if ip is None:
        return None
    raw = bytes(ip.payload)
    if pkt.haslayer(BOOTP) and pkt[BOOTP].xid >> 16 == MAGIC16:
        token, request = pkt[BOOTP].xid & 0xFFFF, pkt[BOOTP].op == 1
    elif (at := raw.find(MAGIC)) >= 0:
        token = int.from_bytes(raw[at + 4 : at + 8], "big")
        request = (
            (pkt.haslayer(ICMP) and pkt[ICMP].type == 8)
            or (pkt.haslayer(TCP) and pkt[TCP].flags == "S")
            or (not pkt.haslayer(IP) and raw[:1] == b"\x80")
        )
    elif pkt.haslayer(TCP) and pkt[TCP].dport & 0xFF00 == TCP_PORT_BASE:
        token, request = pkt[TCP].dport & 0xFF, False  # the answer to a TCP probe
    else:
        return None
    ttl = ip.ttl if pkt.haslayer(IP) else ip.hlim
    macs = (pkt[Ether].src, pkt[Ether].dst) if pkt.haslayer(Ether) else ("", "")
    vlan = pkt[Dot1Q].vlan if pkt.haslayer(Dot1Q) else None
    return Sighting(t, token, bool(request), ip.src, ip.dst, ttl, *macs, vlan)


def crossings(seen: Iterable[tuple[str, Sighting]], fabric: str, request: bool = True) -> list[Sighting]:
    """The probe's frames on the fabric, one per crossing, in the order they first appeared.

    A frame is seen on the sender's uplink, the receiver's, and wherever the fabric floods it; every
    sighting of one crossing carries the same tag and MACs, and two crossings of one probe never do (each
    is on another network, or between other MACs), so distinct frames are the crossings.
    """
    rows = sorted((s for label, s in seen if label == fabric and s.request == request), key=lambda s: s.t)
    firsts: dict[tuple, Sighting] = {}
    for s in rows:
        firsts.setdefault(s.frame, s)
    return list(firsts.values())


def path(seen: Iterable[tuple[str, Sighting]], broadcast: bool = False, stages: Iterable[str] = ()) -> list[str]:
    """Hop labels in the order the probe met them, repeats folded (see module doc)."""
    rows = sorted(((s.t, label) for label, s in seen if s.request != broadcast), key=lambda r: r[0])
    hops: list[str] = []
    for _, label in rows[::-1] if broadcast else rows:
        if not hops or hops[-1] != label:
            hops.append(label)
    for stage in stages:
        host = stage.split(":", 1)[0]
        at = max((i for i, h in enumerate(hops) if h.split(":", 1)[0] == host), default=len(hops) - 1)
        hops.insert(at + 1, stage)
    return hops


def reply_path(seen: Iterable[tuple[str, Sighting]]) -> list[str]:
    """Hop labels in the order the probe's answer met them, repeats folded."""
    rows = sorted(((s.t, label) for label, s in seen if not s.request), key=lambda r: r[0])
    hops: list[str] = []
    for _, label in rows:
        if not hops or hops[-1] != label:
            hops.append(label)
    return hops


def far_end(seen: Iterable[tuple[str, Sighting]], label: str) -> Optional[Sighting]:
    """The request as the capture point *label* (the destination's) saw it first."""
    rows = sorted((s for lab, s in seen if lab == label and s.request), key=lambda s: s.t)
    return rows[0] if rows else None


def nat(sent_src: str, sent_dst: str, seen: Optional[Sighting], roles: dict[str, str]) -> str:
    """The NAT string for a request sent as (*sent_src*, *sent_dst*) and seen at the far end.

    *roles* names addresses: ``fip``/``qg``/``fg``/``fixed``.

    >>> nat("10.10.0.2", "203.0.113.1", Sighting(0, 1, True, "203.0.113.2", "203.0.113.1"), {"203.0.113.2": "fip"})
    'snat fixed->fip'
    >>> nat("203.0.113.1", "203.0.113.2", Sighting(0, 1, True, "203.0.113.1", "10.10.0.2"), {"10.10.0.2": "fixed"})
    'dnat fip->fixed'
    """
    if seen is None:
        return "none"
    if _same(seen.src, sent_src) is False and sent_src != "0.0.0.0":
        return f"snat fixed->{roles.get(str(ipaddress.ip_address(seen.src)), 'other')}"
    if _same(seen.dst, sent_dst) is False and seen.dst != "255.255.255.255":
        return "dnat fip->fixed" if roles.get(str(ipaddress.ip_address(seen.dst))) == "fixed" else "dnat other"
    return "none"


def _same(a: str, b: str) -> Optional[bool]:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return None
