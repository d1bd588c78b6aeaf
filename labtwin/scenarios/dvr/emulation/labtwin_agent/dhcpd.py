"""A minimal DHCPv4 responder (stand-in for dnsmasq in qdhcp-, or for the OVS agent's dhcp extension).

``python -I dhcpd.py IFACE SERVER_IP LEASES_JSON RUN_ID`` (run
inside a namespace; RUN_ID only marks whose responder it is: the ledger ends
processes by their argv, and two runs of one topology must not share one):
answers each DHCPDISCOVER whose client MAC has a lease
(Neutron's DHCP serves only known ports, each its fixed IP) with a DHCPOFFER
sent straight to that MAC. Prints ``listening`` once its socket is open.
Simplification: DISCOVER/OFFER only; no REQUEST/ACK, no options but the server id.
"""

from __future__ import annotations

import json
import socket
import sys

ETH_P_IP = 0x0800


def offer(request, server_ip: str, server_mac: str, leases: dict):
    """The DHCPOFFER for *request* (a parsed Ether frame), or None when it is not a DISCOVER we serve."""
    from scapy.layers.dhcp import BOOTP, DHCP
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    if not (request.haslayer(BOOTP) and request.haslayer(DHCP) and request[BOOTP].op == 1):
        return None
    options = dict(o for o in request[DHCP].options if isinstance(o, tuple) and len(o) == 2)
    mac = ":".join(f"{b:02x}" for b in bytes(request[BOOTP].chaddr)[:6])
    if options.get("message-type") != 1 or mac not in leases:
        return None
    return (
        Ether(src=server_mac, dst=mac)
        / IP(src=server_ip, dst=leases[mac])
        / UDP(sport=67, dport=68)
        / BOOTP(op=2, xid=request[BOOTP].xid, yiaddr=leases[mac], siaddr=server_ip, chaddr=request[BOOTP].chaddr)
        / DHCP(options=[("message-type", "offer"), ("server_id", server_ip), "end"])
    )


def serve(iface: str, server_ip: str, leases: dict) -> None:
    from scapy.layers import dhcp, inet  # noqa: F401  (bind IP/UDP/BOOTP/DHCP before the first frame is parsed)
    from scapy.layers.l2 import Ether

    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
    sock.bind((iface, 0))
    server_mac = ":".join(f"{b:02x}" for b in sock.getsockname()[4][:6])
    print("listening on", iface, file=sys.stderr, flush=True)
    while True:
        data = sock.recv(65535)
        try:
            reply = offer(Ether(data), server_ip, server_mac, leases)
        except Exception as exc:  # a malformed frame must not end the server; say what it was
            print(f"skipped a frame: {exc!r}", file=sys.stderr, flush=True)
            continue
        if reply is not None:
            sock.send(bytes(reply))
            print(f"offered {reply['BOOTP'].yiaddr} to {reply.dst}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        print("usage: python -I dhcpd.py IFACE SERVER_IP LEASES_JSON RUN_ID", file=sys.stderr)
        return 2
    iface, server_ip, leases = argv[1], argv[2], json.loads(argv[3])
    serve(iface, server_ip, leases)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
