"""The hybrid iptables filter the emulation writes, as Neutron's IptablesFirewallDriver writes it (no root)."""

from pathlib import Path

from labtwin.description import load_cloud
from labtwin.emulation import firewall

ROOT = Path(__file__).resolve().parents[2]


def test_icmp_type_and_code_are_written_as_neutrons_driver_writes_them():
    """``_protocol_arg`` + ``_port_arg`` in neutron/agent/linux/iptables_firewall.py: ``-p icmp -m icmp
    --icmp-type 8`` for a type, ``8/0``-style for a type and code; no type: plain ``-p icmp``."""
    cloud = load_cloud(ROOT / "tests" / "oracle" / "icmp-types.yaml")
    ports = [firewall.FilteredPort(p, f"tap{i}", p.mac_address, p.ips) for i, p in enumerate(cloud.ports)]
    rules = firewall.host_rules(cloud, ports).iptables
    assert "-s 0.0.0.0/0" not in rules  # a /0 prefix is no match at all
    assert "-p icmp -m icmp --icmp-type 8 -j RETURN" in rules
    assert "-p icmp -m icmp --icmp-type 0/0 -j RETURN" in rules


def test_a_protocol_by_name_or_number_is_written_by_number_and_tcp_stays_tcp():
    cloud = load_cloud(ROOT / "tests" / "oracle" / "protocols.yaml")
    ports = [firewall.FilteredPort(p, f"tap{i}", p.mac_address, p.ips) for i, p in enumerate(cloud.ports)]
    rules = firewall.host_rules(cloud, ports).iptables
    assert rules.count("-p 112 -j RETURN") == 2  # vrrp and 112 are one rule (per port: two ports here)
    assert "-p tcp -m tcp --dport 22 -j RETURN" in rules  # protocol "6"
