"""DVR probe agent: one process that steps into each source namespace in turn and sends one probe.

``python -I probe_worker.py`` (by its path, importing no labtwin module) reads JSON on stdin::

    {"timeout": 1.0, "steps": [{"pid": 123, "kind": "icmp", "dst": "203.0.113.1", "token": 7}, ...]}

Kinds: ``icmp`` (v4 or v6 echo), ``tcp`` (a SYN to ``port``, ``src`` given),
``dhcp`` (a DHCPDISCOVER from ``iface``/``mac``), ``garp`` (a gratuitous ARP
for ``ip`` from ``iface``/``mac``), ``stream`` (pings at a steady rate around a
link cut, for a failover's recovery time). Every probe carries a marker that the
capture filter matches (:data:`MAGIC` + the token in the ICMP/TCP payload;
the DHCP xid is ``MAGIC16 << 16 | token``; a TCP answer by its destination
port, :data:`TCP_PORT_BASE` + the token), so each capture point's pcap holds
only probes and their answers, whatever NAT did to their addresses.

One process for all namespaces (``setns`` per step) keeps scapy's import cost
to once per batch. Scapy only builds and parses bytes; sockets are the
kernel's own (raw ICMP/TCP, AF_PACKET), so routing, ARP and ND are the
namespace's. Verdict rule as :mod:`.probe_agent`: allowed only when the
destination itself answers in kind (echo reply; SYN-ACK or RST; a DHCPOFFER
for our xid).
"""

from __future__ import annotations

import ctypes
import ipaddress
import json
import os
import random
import select
import socket
import struct
import sys
import time

MAGIC = b"ltdv"
MAGIC16 = 0x6C74
#: A TCP probe's source port is this base plus its token, so the answer (a SYN-ACK or RST, which carries no
#: payload to mark) is captured and told apart by its destination port.
TCP_PORT_BASE = 0x9C00
CLONE_NEWNET = 0x40000000
ETH_P_ALL = 0x0003


def capture_filter() -> str:
    """The BPF filter every capture point uses: only probe packets (tagged or not)."""
    m = int.from_bytes(MAGIC, "big")
    # A load past the end of a packet rejects it outright in BPF, so the port test on a TCP answer (no payload)
    # must come before the payload test.
    f = (
        f"(tcp and tcp[2:2] & 0xff00 = {TCP_PORT_BASE:#x}) "
        f"or (icmp and icmp[8:4] = {m:#x}) or (ip6 and ip6[6] = 58 and ip6[48:4] = {m:#x}) "
        f"or (tcp and tcp[20:4] = {m:#x}) or (udp and (port 67 or port 68) and udp[12:2] = {MAGIC16:#x})"
    )
    return f"({f}) or (vlan and ({f}))"


def enter(pid: int) -> None:
    """Move this (single-threaded) process into the network namespace of *pid*."""
    fd = os.open(f"/proc/{int(pid)}/ns/net", os.O_RDONLY)
    try:
        if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns failed")
    finally:
        os.close(fd)


def payload(token: int) -> bytes:
    return MAGIC + struct.pack("!I", token) + b"labtwin-dvr"


def icmp(step: dict, timeout: float) -> dict:
    from scapy.layers.inet import ICMP

    dst = ipaddress.ip_address(step["dst"])
    ident = random.randint(1, 0xFFFF)
    if dst.version == 4:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        msg = bytes(ICMP(type=8, id=ident, seq=1) / payload(step["token"]))
    else:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        msg = struct.pack("!BBHHH", 128, 0, 0, ident, 1) + payload(step["token"])  # kernel fills the checksum
    with sock:
        sent = time.perf_counter()
        sock.sendto(msg, (str(dst), 0))
        return _await(sock, timeout, sent, lambda data, src: _icmp_answer(data, src, dst, ident))


def _icmp_answer(data: bytes, src, dst, ident):
    if dst.version == 4:
        from scapy.layers.inet import ICMP, IP

        pkt = IP(data)
        if not pkt.haslayer(ICMP):
            return None
        if pkt[ICMP].type == 0 and pkt[ICMP].id == ident:
            return ("allowed", "echo-reply") if pkt.src == str(dst) else ("blocked", f"reply-from-{pkt.src}")
        if pkt[ICMP].type == 3 and bytes(pkt[ICMP].payload).find(MAGIC) >= 0:
            return "blocked", f"unreachable-{pkt[ICMP].code}-from-{pkt.src}"
        return None
    kind, _, _, rid = struct.unpack("!BBHH", data[:6])
    if kind == 129 and rid == ident:
        return ("allowed", "echo-reply") if ipaddress.ip_address(src) == dst else ("blocked", f"reply-from-{src}")
    if kind == 1 and data.find(MAGIC) >= 0:
        return "blocked", f"unreachable-from-{src}"
    return None


def tcp(step: dict, timeout: float) -> dict:
    from scapy.layers.inet import IP, TCP

    sport, seq = TCP_PORT_BASE | (step["token"] & 0xFF), random.randint(0, 2**31)
    pkt = (
        IP(src=step["src"], dst=step["dst"])
        / TCP(sport=sport, dport=int(step["port"]), flags="S", seq=seq)
        / payload(step["token"])
    )
    recv = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    send = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    with recv, send:
        sent = time.perf_counter()
        send.sendto(bytes(pkt), (step["dst"], 0))

        def answer(data, src):
            reply = IP(data)
            if not reply.haslayer(TCP) or reply[TCP].dport != sport or reply[TCP].sport != int(step["port"]):
                return None
            flags = str(reply[TCP].flags)
            what = "syn-ack" if "S" in flags and "A" in flags else "rst" if "R" in flags else f"tcp-{flags}"
            return ("allowed", what) if reply.src == step["dst"] else ("blocked", f"reply-from-{reply.src}")

        return _await(recv, timeout, sent, answer)


def dhcp(step: dict, timeout: float) -> dict:
    from scapy.layers.dhcp import BOOTP, DHCP
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    xid = (MAGIC16 << 16) | (step["token"] & 0xFFFF)
    mac = step["mac"]
    frame = (
        Ether(src=mac, dst="ff:ff:ff:ff:ff:ff")
        / IP(src="0.0.0.0", dst="255.255.255.255")
        / UDP(sport=68, dport=67)
        / BOOTP(chaddr=bytes.fromhex(mac.replace(":", "")), xid=xid, flags=0x8000)
        / DHCP(options=[("message-type", "discover"), "end"])
    )
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    with sock:
        sock.bind((step["iface"], 0))
        sent = time.perf_counter()
        sock.send(bytes(frame))

        def answer(data, src):
            pkt = Ether(data)
            if pkt.haslayer(BOOTP) and pkt[BOOTP].xid == xid and pkt[BOOTP].op == 2:
                return "allowed", f"offer-{pkt[BOOTP].yiaddr}-from-{pkt[IP].src}"
            return None

        return _await(sock, timeout, sent, answer)


def garp(step: dict, timeout: float) -> dict:
    from scapy.layers.l2 import ARP, Ether

    frame = Ether(src=step["mac"], dst="ff:ff:ff:ff:ff:ff") / ARP(
        op=1, hwsrc=step["mac"], psrc=step["ip"], hwdst="00:00:00:00:00:00", pdst=step["ip"]
    )
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)) as sock:
        sock.bind((step["iface"], 0))
        sock.send(bytes(frame))
    return {"verdict": "sent", "answer": "garp", "latency_s": None}


def _await(sock, timeout: float, sent: float, answer) -> dict:
    deadline = sent + timeout
    while True:
        left = deadline - time.perf_counter()
        if left <= 0:
            return {"verdict": "blocked", "answer": "none", "latency_s": None}
        ready, _, _ = select.select([sock], [], [], left)
        if not ready:
            continue
        data, addr = sock.recvfrom(65535)
        found = answer(data, addr[0])
        if found is not None:
            return {"verdict": found[0], "answer": found[1], "latency_s": time.perf_counter() - sent}


def stream(step: dict, timeout: float) -> dict:
    """IPv4 pings to ``dst`` every ``interval`` seconds from wall-clock time ``start_at`` (``time.time()``: the
    caller cuts a link at ``cut_at`` on the same clock); stops once a ping sent ``settled`` seconds after
    ``cut_at`` or later is answered, or at ``cut_at + horizon``. Each ping's send time and, when answered, its
    answer time (wall clock)."""
    from scapy.layers.inet import ICMP, IP

    ident, interval = random.randint(1, 0xFFFF), float(step["interval"])
    stop_at = float(step["cut_at"]) + float(step["horizon"])
    settled_from = float(step["cut_at"]) + float(step["settled"])
    sent: dict[int, float] = {}
    answered: dict[int, float] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
        time.sleep(max(0.0, float(step["start_at"]) - time.time()))
        next_send, seq = time.time(), 0
        while time.time() < stop_at and not any(sent[s] >= settled_from for s in answered):
            if time.time() >= next_send:
                seq += 1
                msg = bytes(ICMP(type=8, id=ident, seq=seq) / payload(step["token"]))
                sent[seq] = time.time()
                sock.sendto(msg, (step["dst"], 0))
                next_send += interval
            ready, _, _ = select.select([sock], [], [], max(0.0, min(next_send, stop_at) - time.time()))
            if ready:
                pkt = IP(sock.recv(65535))
                if pkt.haslayer(ICMP) and pkt[ICMP].type == 0 and pkt[ICMP].id == ident and pkt.src == step["dst"]:
                    answered.setdefault(pkt[ICMP].seq, time.time())
    pings = [{"sent": sent[s], "answered": answered.get(s)} for s in sorted(sent)]
    return {"verdict": "sent", "answer": "stream", "latency_s": None, "pings": pings}


def pause(step: dict, timeout: float) -> dict:
    time.sleep(float(step["seconds"]))
    return {"verdict": "sent", "answer": "pause", "latency_s": None}


KINDS = {"icmp": icmp, "tcp": tcp, "dhcp": dhcp, "garp": garp, "pause": pause, "stream": stream}


def run(request: dict) -> list[dict]:
    timeout = float(request.get("timeout", 1.0))
    out = []
    for i, step in enumerate(request["steps"]):
        enter(step["pid"])
        try:
            result = KINDS[step["kind"]](step, timeout)
        except OSError as exc:
            result = {"verdict": "blocked", "answer": f"error-{exc.errno}", "latency_s": None}
        out.append({"id": i, **result})
    return out


def main() -> int:
    request = json.load(sys.stdin)
    json.dump({"results": run(request)}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
