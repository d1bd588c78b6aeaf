"""Time to the first allowed packet: ICMP echo polling from raw sockets opened in each port's namespace.

The substrate's scapy probe agent starts a Python process per source (about
a second of imports), far too coarse to time an apply of tens of
milliseconds. Here one raw ICMP socket per source namespace is opened once
(``setns`` in a short-lived thread: a socket keeps the namespace it was
made in), then echo requests go out every ``interval`` to every pair still
waiting; a pair is ready at the first echo reply *from the destination
itself* (the same verdict rule as the probe agent). Every round uses fresh
ICMP ids, so no conntrack entry of an earlier, dropped request is reused.
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
from typing import Hashable

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def socket_in_netns(pid: int) -> socket.socket:
    """A raw ICMP socket inside the network namespace of process *pid*."""
    box: dict = {}

    def work() -> None:
        fd = os.open(f"/proc/{int(pid)}/ns/net", os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns failed")
            box["sock"] = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
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


def parse_echo_reply(packet: bytes):
    """(source address, ICMP id) of an IPv4 echo reply, else None."""
    if len(packet) < 28:
        return None
    ihl = (packet[0] & 0x0F) * 4
    if packet[ihl] != 0:
        return None
    return socket.inet_ntoa(packet[12:16]), struct.unpack("!H", packet[ihl + 4:ihl + 6])[0]


def first_allowed(pairs: dict[Hashable, tuple[socket.socket, str]], start: float, timeout: float = 30.0,
                  interval: float = 0.002) -> dict[Hashable, float]:
    """Seconds from *start* (perf_counter) to each pair's first echo reply; pairs never answered are left out."""
    waiting = dict(pairs)
    ready: dict = {}
    sent: dict[int, Hashable] = {}
    ident = (os.getpid() * 7919) & 0xFFFF
    socks = list({id(s): s for s, _ in pairs.values()}.values())
    while waiting and time.perf_counter() - start < timeout:
        for key, (sock, dst) in waiting.items():
            ident = (ident + 1) & 0xFFFF
            sent[ident] = key
            try:
                sock.sendto(echo_request(ident, 1), (dst, 0))
            except OSError:
                pass  # no route / ARP failure yet: try again next round
        deadline = time.perf_counter() + interval
        while (left := deadline - time.perf_counter()) > 0:
            readable, _, _ = select.select(socks, [], [], left)
            now = time.perf_counter()
            for sock in readable:
                _drain(sock, sent, waiting, ready, now - start)
    return ready


def _drain(sock, sent, waiting, ready, at: float) -> None:
    while True:
        try:
            packet = sock.recv(2048)
        except BlockingIOError:
            return
        reply = parse_echo_reply(packet)
        if reply is None:
            continue
        key = sent.get(reply[1])
        if key in waiting and waiting[key][1] == reply[0]:
            ready[key] = at
            del waiting[key]
