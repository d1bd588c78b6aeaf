"""Time to the first allowed packet: ICMP echo (or TCP SYN) polling from raw sockets in each port's namespace.

The substrate's scapy probe agent starts a Python process per source (about
a second of imports), far too coarse to time an apply of tens of
milliseconds. Here one raw ICMP socket per source namespace is opened once
(``setns`` in a short-lived thread: a socket keeps the namespace it was
made in), then echo requests go out every ``interval`` to every pair still
waiting; a pair is ready at the first echo reply *from the destination
itself* (the same verdict rule as the probe agent: an echo reply, or for
TCP a SYN-ACK or RST). Every round uses fresh ICMP ids / TCP source ports,
so no conntrack entry of an earlier, dropped request is reused.
The verdicts recorded in the run come from the substrate's probes afterwards.
"""

from __future__ import annotations

import ctypes
import os
import select
import socket
import struct
import threading
import time
from typing import Hashable, Optional

from .rules import EPort

CLONE_NEWNET = 0x40000000
#: Echoes sent per pause of *interval* while polling.
BURST = 8
_libc = ctypes.CDLL(None, use_errno=True)


def socket_in_netns(pid: int, proto: int = socket.IPPROTO_ICMP) -> socket.socket:
    """A raw socket (ICMP, or TCP for SYN probes) inside the network namespace of process *pid*."""
    box: dict = {}

    def work() -> None:
        fd = os.open(f"/proc/{int(pid)}/ns/net", os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns failed")
            box["sock"] = socket.socket(socket.AF_INET, socket.SOCK_RAW, proto)
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc
        finally:
            os.close(fd)

    thread = threading.Thread(target=work, name="labtwin-setns")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    box["sock"].setblocking(False)
    return box["sock"]


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071).

    >>> hex(checksum(bytes.fromhex("0800000012340001")))
    '0xe5ca'
    """
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int) -> bytes:
    body = struct.pack("!HH", ident, seq) + b"labtwin-sg-fanout"
    head = struct.pack("!BBH", 8, 0, 0)
    return struct.pack("!BBH", 8, 0, checksum(head + body)) + body


def tcp_syn(src: str, dst: str, sport: int, dport: int) -> bytes:
    """A TCP SYN segment (the kernel adds the IP header); the checksum covers the pseudo-header."""
    head = struct.pack("!HHIIBBHHH", sport, dport, sport * 65599 & 0xFFFFFFFF, 0, 5 << 4, 0x02, 64240, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(head))
    return head[:16] + struct.pack("!H", checksum(pseudo + head)) + head[18:]


def parse_tcp_answer(packet: bytes):
    """(source address, destination port) of a SYN-ACK or RST, else None: either means the SYN got through."""
    if len(packet) < 40:
        return None
    ihl = (packet[0] & 0x0F) * 4
    flags = packet[ihl + 13]
    if not flags & 0x04 and flags & 0x12 != 0x12:
        return None
    return socket.inet_ntoa(packet[12:16]), struct.unpack("!H", packet[ihl + 2 : ihl + 4])[0]


def parse_echo_reply(packet: bytes):
    """(source address, ICMP id) of an IPv4 echo reply, else None."""
    if len(packet) < 28:
        return None
    ihl = (packet[0] & 0x0F) * 4
    if packet[ihl] != 0:
        return None
    return socket.inet_ntoa(packet[12:16]), struct.unpack("!H", packet[ihl + 4 : ihl + 6])[0]


def first_allowed(
    pairs: dict[Hashable, tuple[socket.socket, str]],
    start: float,
    timeout: float = 30.0,
    sentinels: tuple = (),
    interval: float = 0.001,
) -> tuple[dict, Optional[float]]:
    """Each pair's first echo reply (seconds from *start*), and when the last pair was allowed (None: never).

    With *sentinels* (a few keys of *pairs*), only those are polled until all
    answer, then the rest: an echo per pair every millisecond would load two
    cores with tens of thousands of packets per second through userspace OVS
    and slow the very apply being timed. A host's filters are written in one
    atomic ``iptables-restore`` or OpenFlow bundle, so with one sentinel per
    host and direction, every other pair is allowed once its sentinels are;
    the rest are then confirmed with one echo each. The ready time is the
    last sentinel's first reply -- unless a pair did not answer its first
    confirming echo, when that pair's own first reply counts. Per-pair times
    are detection times (what the records show).
    """
    first = {k: pairs[k] for k in sentinels if k in pairs}
    times, rounds = _poll(first, start, timeout, interval) if first else ({}, {})
    if len(times) < len(first):
        return times, None
    ready_at = max(times.values(), default=0.0)
    rest = {k: v for k, v in pairs.items() if k not in times}
    more, more_rounds = _poll(rest, start, timeout, interval)
    times.update(more)
    if len(times) < len(pairs):
        return times, None
    late = [more[k] for k, r in more_rounds.items() if r > 0]
    return times, max([ready_at] + late)


def _poll(pairs, start: float, timeout: float, interval: float) -> tuple[dict, dict]:
    """Echo every waiting pair each *interval*; (first reply time, round of the echo answered) per pair."""
    waiting = dict(pairs)
    ready: dict = {}
    answered_round: dict = {}
    sent: dict[int, tuple] = {}
    ident = (os.getpid() * 7919 + int(start * 1e6)) % 30000
    socks = list({id(v[0]): v[0] for v in pairs.values()}.values())
    round_no = 0
    while waiting and time.perf_counter() - start < timeout:
        keys = list(waiting)
        for i in range(0, len(keys), BURST):  # paced: a burst of new conntrack entries would lose echoes
            for key in keys[i : i + BURST]:
                if key not in waiting:
                    continue
                sock, dst, src, dport = _pair(waiting[key])
                ident = ident % 30000 + 1
                sent[ident + (30000 if dport else 0)] = (key, round_no)
                try:
                    if dport:  # the source port is the id: the answer comes back to it
                        sock.sendto(tcp_syn(src, dst, 30000 + ident, dport), (dst, 0))
                    else:
                        sock.sendto(echo_request(ident, 1), (dst, 0))
                except OSError:
                    pass  # no route / carrier yet: try again next round
            deadline = time.perf_counter() + interval
            while (left := deadline - time.perf_counter()) > 0 and waiting:
                readable, _, _ = select.select(socks, [], [], left)
                now = time.perf_counter()
                for sock in readable:
                    _drain(sock, sent, waiting, ready, answered_round, now - start)
        round_no += 1
    return ready, answered_round


def _pair(value) -> tuple:
    """(socket, destination, source address, TCP port or None): ICMP pairs may omit the last two."""
    return (tuple(value) + (None, None))[:4]


def _drain(sock, sent, waiting, ready, answered_round, at: float) -> None:
    while True:
        try:
            packet = sock.recv(2048)
        except BlockingIOError:
            return
        reply = parse_echo_reply(packet) if sock.proto == socket.IPPROTO_ICMP else parse_tcp_answer(packet)
        if reply is None:
            continue
        key, round_no = sent.get(reply[1], (None, None))
        if key in waiting and _pair(waiting[key])[1] == reply[0]:
            ready[key] = at
            answered_round[key] = round_no
            del waiting[key]


def sentinels(new, members, back=None) -> tuple:
    """One port per host and direction: the pairs polled while the agents apply. *members*: the ports the new
    port must reach (those referencing its group); *back*: those that must reach it (default: *members*)."""
    back = members if back is None else back
    out = []
    for ports, pair in ((members, lambda m: (new.name, m.name)), (back, lambda m: (m.name, new.name))):
        first: dict = {}
        for m in ports:
            first.setdefault(m.host, m)
        out.append([pair(m) for m in first.values()])
    to, fro = out
    # interleaved per host (to, from), as one member per host polled both ways always was
    return tuple(k for i in range(max(len(to), len(fro))) for k in (to[i : i + 1] + fro[i : i + 1]))


def poll_pairs(w, new: EPort, members: list, back=None) -> dict:
    """(socket, destination, source, TCP port) per ordered pair of *w* (the run's Workload), each socket
    opened in its source's namespace: the new port to each of *members* (the ports referencing its group), and
    each of *back* (default: *members*) to the new port."""
    real = w.real
    back = members if back is None else back
    proto, _, port = w.layout.probe.partition(":")
    kind = socket.IPPROTO_TCP if proto == "tcp" else socket.IPPROTO_ICMP
    dport = int(port) if proto == "tcp" else None
    ends = {p.name: p for p in [new, *members, *back]}
    socks = {name: socket_in_netns(real.pid(real.plan.endpoints[name].ns), kind) for name in ends}
    pairs = {}
    for m in members:
        pairs[(new.name, m.name)] = (socks[new.name], m.ip, new.ip, dport)
        if m in back:
            pairs[(m.name, new.name)] = (socks[m.name], new.ip, m.ip, dport)
    for m in back:
        pairs.setdefault((m.name, new.name), (socks[m.name], new.ip, m.ip, dport))
    return pairs
