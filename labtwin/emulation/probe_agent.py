"""Probe agent: run inside one source namespace, send a batch of probes, report.

``python -m labtwin.emulation.probe_agent`` reads JSON on stdin::

    {"timeout": 0.5, "iface": "eth0",
     "probes": [{"id": 0, "protocol": "tcp", "dst": "10.0.0.3", "port": 22}, ...]}

and writes one JSON list of results on stdout. All probes of a batch are in
flight together (one ``sr`` per IP version, ARP/ND with ``srp``), so a batch
takes about one timeout however many probes it holds.

Verdict rule: a probe is **allowed** when the destination address itself
answers in kind — ICMP echo reply; TCP SYN-ACK *or RST* (a RST from the
destination means the SYN crossed every firewall on the way and the reply
came back through the stateful rules); for UDP a UDP reply or an ICMP
port-unreachable sent by the destination (the project's namespaces run no UDP
listeners, so an open path always answers this way); for ARP/ND a reply. No
answer within the timeout, or an ICMP error from anyone else (a router
saying "no route"), is **blocked**.

Silence is only trusted on the second try: probes unanswered after one
timeout are sent once more (``retry=1``). The first packet to a new neighbour
waits for ARP/ND, and when that first solicitation is lost (a port that has
only just started forwarding) the kernel asks again only after one second:
one silent attempt is not evidence of a firewall. Open paths still answer in
milliseconds; a blocked probe costs two timeouts (per batch, not per probe).
"""

from __future__ import annotations

import ipaddress
import json
import random
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

PROTOCOLS = ("icmp", "tcp", "udp", "arp", "broadcast")

#: The payload of a ``broadcast`` probe: captures find it by this text.
BROADCAST_MARK = b"labtwin-broadcast"


def build(probe: dict):
    """The scapy packet for one probe (IPv4 or IPv6 by the destination)."""
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.inet6 import ICMPv6EchoRequest, ICMPv6ND_NS, IPv6
    from scapy.layers.l2 import ARP, Ether

    dst = ipaddress.ip_address(probe["dst"])
    proto = probe["protocol"]
    sport = random.randint(33000, 60000)
    if proto == "broadcast":  # one Ethernet broadcast, UDP to *dst* (255.255.255.255): nobody answers
        return (
            Ether(dst="ff:ff:ff:ff:ff:ff")
            / IP(dst=str(dst))
            / UDP(sport=sport, dport=int(probe.get("port") or 9))
            / BROADCAST_MARK
        )
    if proto == "arp":
        if dst.version == 4:
            return Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst=str(dst))
        solicited = ipaddress.IPv6Address("ff02::1:ff00:0") + (int(dst) & 0xFFFFFF)
        mcast = "33:33:" + ":".join(f"{b:02x}" for b in solicited.packed[-4:])
        return Ether(dst=mcast) / IPv6(dst=str(solicited)) / ICMPv6ND_NS(tgt=str(dst))
    source = probe.get("src") or kernel_source(dst)
    src = {"src": source} if source else {}
    ip = IP(dst=str(dst), **src) if dst.version == 4 else IPv6(dst=str(dst), **src)
    if proto == "icmp":
        return ip / (ICMP(id=sport) if dst.version == 4 else ICMPv6EchoRequest(id=sport))
    if proto == "tcp":
        return ip / TCP(sport=sport, dport=int(probe["port"]), flags="S", seq=random.randint(0, 2**31))
    if proto == "udp":
        return ip / UDP(sport=sport, dport=int(probe["port"])) / b"labtwin-probe"
    raise ValueError(f"unknown protocol {proto!r}")


def kernel_source(dst) -> Optional[str]:
    """The source address this namespace's kernel picks for *dst* (a UDP socket's ``connect`` sends nothing),
    or None where it has no route. Scapy's own route table takes the preferred source of the route it finds,
    and a route without one (an on-link route to a gateway outside the subnet, as a guest adds for
    ``Subnet.gateway_off_subnet``) gives it 0.0.0.0: the probe would leave with no address to answer."""
    family = socket.AF_INET if dst.version == 4 else socket.AF_INET6
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((str(dst), 9))
        except OSError:
            return None
        return str(sock.getsockname()[0])


def classify(probe: dict, reply) -> tuple[str, str]:
    """(verdict, what answered) for a probe and its reply (None: no reply)."""
    from scapy.layers.inet import ICMP, TCP, UDP
    from scapy.layers.inet6 import ICMPv6DestUnreach, ICMPv6EchoReply, ICMPv6ND_NA
    from scapy.layers.l2 import ARP

    proto = probe["protocol"]
    if proto == "broadcast":  # who saw it is for captures to say
        return "blocked", "sent"
    if reply is None:
        return "blocked", "none"
    if proto == "arp":
        return ("allowed", "arp-reply") if reply.haslayer(ARP) or reply.haslayer(ICMPv6ND_NA) else ("blocked", "other")
    src = _source(reply)
    from_dst = src is not None and ipaddress.ip_address(src) == ipaddress.ip_address(probe["dst"])
    if reply.haslayer(ICMP) and reply[ICMP].type == 3 or reply.haslayer(ICMPv6DestUnreach):
        code = reply[ICMP].code if reply.haslayer(ICMP) else reply[ICMPv6DestUnreach].code
        port_unreachable = code == (3 if reply.haslayer(ICMP) else 4)
        if proto == "udp" and port_unreachable and from_dst:
            return "allowed", "port-unreachable"
        return "blocked", f"unreachable-{code}-from-{src}"
    if not from_dst:
        return "blocked", f"reply-from-{src}"
    if proto == "icmp" and (reply.haslayer(ICMPv6EchoReply) or reply.haslayer(ICMP) and reply[ICMP].type == 0):
        return "allowed", "echo-reply"
    if proto == "tcp" and reply.haslayer(TCP):
        flags = str(reply[TCP].flags)
        return "allowed", "syn-ack" if "S" in flags and "A" in flags else "rst" if "R" in flags else f"tcp-{flags}"
    if proto == "udp" and reply.haslayer(UDP):
        return "allowed", "udp"
    return "blocked", "other"


def _source(reply):
    for layer in ("IP", "IPv6"):
        if reply.haslayer(layer):
            return reply[layer].src
    return None


def _hops(reply):
    for layer, field in (("IP", "ttl"), ("IPv6", "hlim")):
        if reply is not None and reply.haslayer(layer):
            return getattr(reply[layer], field)
    return None


def run(request: dict) -> list[dict]:
    """Send every probe of *request*; one result per probe, in input order."""
    from scapy.config import conf
    from scapy.layers.inet6 import L3RawSocket6
    from scapy.sendrecv import sr, srp
    from scapy.supersocket import L3RawSocket

    conf.L3socket, conf.L3socket6 = L3RawSocket, L3RawSocket6  # kernel does ARP/ND and routing
    timeout = float(request.get("timeout", 0.5))
    iface = request.get("iface", "eth0")
    probes = request["probes"]
    packets = [build(p) for p in probes]
    groups = {"v4": [], "v6": [], "l2": []}
    for i, p in enumerate(probes):
        kind = "l2" if p["protocol"] in ("arp", "broadcast") else f"v{ipaddress.ip_address(p['dst']).version}"
        groups[kind].append(i)

    def send(kind):
        if not groups[kind]:
            return []
        batch = [packets[i] for i in groups[kind]]
        if kind == "l2":
            answered, _ = srp(batch, iface=iface, timeout=timeout, retry=1, verbose=0)
        else:
            answered, _ = sr(batch, timeout=timeout, retry=1, verbose=0)
        return list(answered)

    with ThreadPoolExecutor(max_workers=3) as pool:
        pairs = [pair for answered in pool.map(send, groups) for pair in answered]
    replies = {id(sent_original(packets, s)): (s, r) for s, r in pairs}
    results = []
    for p, pkt in zip(probes, packets):
        sent, reply = replies.get(id(pkt), (None, None))
        verdict, answer = classify(p, reply)
        latency = (float(reply.time) - float(sent.sent_time)) if reply is not None and sent.sent_time else None
        results.append(
            {
                "id": p["id"],
                "verdict": verdict,
                "answer": answer,
                "latency_s": latency,
                "reply_hops": _hops(reply),
                "reply_src_mac": _mac(reply),
            }
        )
    return results


def sent_original(packets, sent):
    """The packet of *packets* that scapy's *sent* copy stands for (same bytes)."""
    raw = bytes(sent)
    return next((p for p in packets if bytes(p) == raw), sent)


def _mac(reply):
    return reply.src if reply is not None and reply.haslayer("Ether") else None


def main() -> int:
    request = json.load(sys.stdin)
    started = time.perf_counter()
    results = run(request)
    json.dump({"results": results, "elapsed_s": time.perf_counter() - started}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
