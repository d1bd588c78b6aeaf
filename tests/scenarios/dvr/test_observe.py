"""Paths and NAT from capture points (pure), and reading probe packets back from a pcap."""

import shutil
import subprocess

import pytest

from labtwin.scenarios.dvr.emulation.observe import Sighting, crossings, far_end, nat, path, reply_path, sightings
from labtwin.scenarios.dvr.emulation.probe_worker import MAGIC, MAGIC16, TCP_PORT_BASE, capture_filter


def seen(label, t, request=True, src="10.10.0.2", dst="203.0.113.1", token=1):
    return label, Sighting(t, token, request, src, dst)


def test_path_orders_by_time_and_folds_repeats():
    rows = [
        seen("c1:br-int", 2.0),
        seen("c1:tap", 1.0),
        seen("fabric", 4.0),
        seen("c1:br-tun", 3.0),
        seen("fabric", 4.1),
        seen("c1:br-tun", 3.05),
        seen("external", 5.0),
        seen("c1:tap", 9.0, request=False),
    ]
    assert path(rows) == ["c1:tap", "c1:br-int", "c1:br-tun", "fabric", "external"]


def test_broadcast_path_is_the_answer_read_backwards_and_stages_follow_their_host():
    rows = [
        seen("c1:tap", 1.0),
        seen("c2:tap", 1.1),
        seen("nn:qdhcp:tap", 1.2),  # the flood
        seen("nn:qdhcp:tap", 2.0, False),
        seen("nn:br-int", 2.1, False),
        seen("fabric", 2.2, False),
        seen("c1:br-int", 2.3, False),
        seen("c1:tap", 2.4, False),
    ]
    assert path(rows, broadcast=True) == ["c1:tap", "c1:br-int", "fabric", "nn:br-int", "nn:qdhcp:tap"]
    local = [seen("c1:br-int", 2.3, False), seen("c1:tap", 2.4, False)]
    assert path(local, broadcast=True, stages=["c1:br-int:table77"]) == ["c1:tap", "c1:br-int", "c1:br-int:table77"]


def test_nat_from_what_the_far_end_saw():
    roles = {"203.0.113.2": "fip", "203.0.113.4": "qg", "203.0.113.5": "fg", "10.10.0.2": "fixed"}
    out = lambda src: nat("10.10.0.2", "203.0.113.1", Sighting(0, 1, True, src, "203.0.113.1"), roles)  # noqa: E731
    assert [out(a) for a in ("203.0.113.2", "203.0.113.4", "203.0.113.5", "10.10.0.2")] == [
        "snat fixed->fip",
        "snat fixed->qg",
        "snat fixed->fg",
        "none",
    ]
    assert (
        nat("203.0.113.1", "203.0.113.2", Sighting(0, 1, True, "203.0.113.1", "10.10.0.2"), roles) == "dnat fip->fixed"
    )
    assert nat("10.10.0.2", "203.0.113.1", None, roles) == "none"
    rows = [seen("external", 3.0, src="203.0.113.9"), seen("external", 2.0, src="203.0.113.4")]
    assert far_end(rows, "external").src == "203.0.113.4"


def test_sightings_read_probes_tagged_or_not(tmp_path):
    from scapy.layers.dhcp import BOOTP, DHCP
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
    from scapy.layers.l2 import Dot1Q, Ether
    from scapy.utils import wrpcap

    token = MAGIC + (5).to_bytes(4, "big")
    frames = [
        Ether() / IP(src="10.10.0.2", dst="203.0.113.1") / ICMP(type=8) / token,
        Ether() / Dot1Q(vlan=1001) / IP(src="203.0.113.1", dst="10.10.0.2") / TCP(flags="S") / (MAGIC + b"\0\0\0\6"),
        Ether() / IPv6(src="2001:db8:a::3", dst="2001:db8:ffff::1") / ICMPv6EchoRequest(data=MAGIC + b"\0\0\0\7"),
        Ether()
        / IP(src="10.10.0.4", dst="10.10.0.2")
        / UDP(sport=67, dport=68)
        / BOOTP(op=2, xid=MAGIC16 << 16 | 8)
        / DHCP(options=[("message-type", "offer"), "end"]),
        Ether() / IP(src="10.10.0.2", dst="203.0.113.1") / ICMP(type=0) / token,
        Ether() / IP() / ICMP(type=8) / b"not a probe",
    ]
    wrpcap(str(tmp_path / "p.pcap"), frames)
    got = [(s.token, s.request, s.src) for s in sightings(tmp_path / "p.pcap")]
    assert got == [
        (5, True, "10.10.0.2"),
        (6, True, "203.0.113.1"),
        (7, True, "2001:db8:a::3"),
        (8, False, "10.10.0.4"),
        (5, False, "10.10.0.2"),
    ]
    assert "vlan and" in capture_filter() and f"{int.from_bytes(MAGIC, 'big'):#x}" in capture_filter()


def test_sightings_keep_ttl_macs_and_tag_and_read_a_tcp_answer_by_its_port(tmp_path):
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Dot1Q, Ether
    from scapy.utils import wrpcap

    frames = [
        Ether(src="fa:16:3f:00:00:01", dst="fa:16:3e:00:00:02")
        / Dot1Q(vlan=1002)
        / IP(src="10.10.0.2", dst="10.20.0.2", ttl=63)
        / TCP(sport=TCP_PORT_BASE + 3, dport=22, flags="S")
        / (MAGIC + (3).to_bytes(4, "big")),
        Ether() / IP(src="10.20.0.2", dst="10.10.0.2", ttl=62) / TCP(sport=22, dport=TCP_PORT_BASE + 3, flags="RA"),
    ]
    wrpcap(str(tmp_path / "p.pcap"), frames)
    request, answer = sightings(tmp_path / "p.pcap")
    assert (request.token, request.request, request.ttl, request.vlan) == (3, True, 63, 1002)
    assert (request.src_mac, request.dst_mac) == ("fa:16:3f:00:00:01", "fa:16:3e:00:00:02")
    assert (answer.token, answer.request, answer.ttl, answer.vlan) == (3, False, 62, None)


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump is not installed (make setup installs it)")
def test_the_capture_filter_keeps_a_tcp_answer_that_has_no_payload(tmp_path):
    """BPF rejects a packet outright on a load past its end: a payload test placed first would drop the answer."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    frames = [
        Ether() / IP(src="10.20.0.2", dst="10.10.0.2") / TCP(sport=22, dport=TCP_PORT_BASE + 3, flags="RA"),
        Ether() / IP(src="10.20.0.2", dst="10.10.0.2") / TCP(sport=22, dport=33000, flags="RA"),  # not a probe's
    ]
    wrpcap(str(tmp_path / "p.pcap"), frames)
    done = subprocess.run(
        ["tcpdump", "-nr", str(tmp_path / "p.pcap"), capture_filter()], capture_output=True, text=True, check=True
    )
    assert done.stdout.count("\n") == 1 and f".{TCP_PORT_BASE + 3}:" in done.stdout


def frame(label, t, vlan, src_mac, dst_mac, request=True):
    return label, Sighting(t, 1, request, "10.10.0.2", "10.20.0.2", 64, src_mac, dst_mac, vlan)


def test_crossings_are_the_distinct_frames_on_the_fabric_in_order():
    rows = [
        frame("fabric", 2.0, 1002, "m-nn-qr", "m-vm"),  # second crossing, seen on the receiver's uplink
        frame("fabric", 1.0, 1001, "m-vm1", "m-nn-qr"),  # first crossing: sender's uplink ...
        frame("fabric", 1.1, 1001, "m-vm1", "m-nn-qr"),  # ... and the receiver's
        frame("fabric", 1.9, 1002, "m-nn-qr", "m-vm"),
        frame("c1:br-tun", 0.9, 1001, "m-vm1", "m-nn-qr"),  # not on the fabric
        frame("fabric", 3.0, 1002, "m-vm", "m-nn-qr", request=False),  # the answer
    ]
    got = [(s.vlan, s.src_mac) for s in crossings(rows, "fabric")]
    assert got == [(1001, "m-vm1"), (1002, "m-nn-qr")]
    assert [(s.vlan, s.src_mac) for s in crossings(rows, "fabric", request=False)] == [(1002, "m-vm")]


def test_reply_path_follows_the_answer_in_time_order():
    rows = [seen("c2:tap", 2.0, False), seen("c2:br-int", 2.1, False), seen("c1:tap", 2.5, False), seen("c1:tap", 1.0)]
    assert reply_path(rows) == ["c2:tap", "c2:br-int", "c1:tap"]
