"""The reachability model's policy: one question per IP version, and allowed address pairs as members."""

from __future__ import annotations

import ipaddress

import yaml

from labtwin.description import load_cloud
from labtwin.description.flows import Flow
from labtwin.description.policy import evaluate

CLOUD = {
    "name": "dual",
    "hosts": [{"name": "c1", "role": "compute"}],
    "networks": [{"name": "net"}],
    "subnets": [
        {"name": "v6", "network_id": "net", "cidr": "2001:db8::/64", "ip_version": 6},
        {"name": "v4", "network_id": "net", "cidr": "10.0.0.0/24"},
    ],
    "security_groups": [
        # IPv4 from members only; IPv6 from anywhere: the two versions answer differently
        {
            "name": "web",
            "rules": [
                {
                    "direction": "ingress",
                    "ethertype": "IPv4",
                    "protocol": "tcp",
                    "port_range_min": 80,
                    "port_range_max": 80,
                    "remote_group_id": "web",
                },
                {
                    "direction": "ingress",
                    "ethertype": "IPv6",
                    "protocol": "tcp",
                    "port_range_min": 80,
                    "port_range_max": 80,
                },
            ],
        },
        {"name": "other"},
    ],
    "ports": [
        # the IPv6 address is listed first: the verdict must not depend on that order
        {
            "name": "a",
            "network_id": "net",
            "binding:host_id": "c1",
            "security_groups": ["web"],
            "fixed_ips": [{"subnet_id": "v6", "ip_address": "2001:db8::a"}, {"subnet_id": "v4"}],
            "allowed_address_pairs": [{"ip_address": "10.0.0.100"}],
        },
        {
            "name": "b",
            "network_id": "net",
            "binding:host_id": "c1",
            "security_groups": ["web"],
            "fixed_ips": [{"subnet_id": "v6", "ip_address": "2001:db8::b"}, {"subnet_id": "v4"}],
        },
        {
            "name": "c",
            "network_id": "net",
            "binding:host_id": "c1",
            "security_groups": ["other"],
            "fixed_ips": [{"subnet_id": "v6", "ip_address": "2001:db8::c"}, {"subnet_id": "v4"}],
        },
    ],
}


def cloud(tmp_path):
    (tmp_path / "dual.yaml").write_text(yaml.safe_dump(CLOUD))
    return load_cloud(tmp_path / "dual.yaml")


def test_each_ip_version_is_its_own_question(tmp_path):
    c = cloud(tmp_path)
    http = Flow("tcp", 80)
    assert evaluate(c, c.port["c"], c.port["b"], http, 6).allowed  # IPv6 from anywhere
    assert not evaluate(c, c.port["c"], c.port["b"], http, 4).allowed  # IPv4 only from web's members
    assert evaluate(c, c.port["a"], c.port["b"], http, 4).allowed
    assert evaluate(c, c.port["c"], c.port["b"], http).allowed is False  # default: IPv4, though IPv6 is listed first


def test_an_allowed_address_pair_is_a_member_and_other_addresses_are_spoofed(tmp_path):
    c = cloud(tmp_path)
    http = Flow("tcp", 80)
    pair = ipaddress.ip_address("10.0.0.100")
    assert evaluate(c, c.port["a"], c.port["b"], http, src_ip=pair).allowed
    spoofed = evaluate(c, c.port["a"], c.port["b"], http, src_ip=ipaddress.ip_address("10.0.0.99"))
    assert not spoofed.allowed and "neither a fixed IP nor an allowed address pair" in spoofed.reason


def test_only_provider_subnets_are_routed_by_the_physical_network(tmp_path):
    from labtwin.description.routing import physically_routed

    data = {
        "name": "mixed",
        "physnets": [{"name": "phys"}],
        "hosts": [{"name": "c1", "role": "compute", "bridge_mappings": {"phys": "br-phys"}}],
        "networks": [{"name": "prov1"}, {"name": "prov2"}, {"name": "tenant"}],
        "segments": [
            {"name": "s1", "network_id": "prov1", "physical_network": "phys", "segmentation_id": 11},
            {"name": "s2", "network_id": "prov2", "physical_network": "phys", "segmentation_id": 12},
            {"name": "t", "network_id": "tenant", "network_type": "vxlan", "segmentation_id": 1000},
        ],
        "subnets": [
            {"name": "p1", "network_id": "prov1", "cidr": "10.1.0.0/24"},
            {"name": "p2", "network_id": "prov2", "cidr": "10.2.0.0/24"},
            {"name": "t4", "network_id": "tenant", "cidr": "10.3.0.0/24"},
        ],
        "ports": [
            {"name": "a", "network_id": "prov1", "binding:host_id": "c1"},
            {"name": "b", "network_id": "prov2", "binding:host_id": "c1"},
            {"name": "c", "network_id": "tenant", "binding:host_id": "c1"},
        ],
    }
    (tmp_path / "mixed.yaml").write_text(yaml.safe_dump(data))
    c = load_cloud(tmp_path / "mixed.yaml")
    assert [s.name for s in physically_routed(c)] == ["p1", "p2"]  # a tunnel's gateway answers to nobody
    icmp = Flow("icmp")
    assert evaluate(c, c.port["a"], c.port["b"], icmp).allowed
    blocked = evaluate(c, c.port["a"], c.port["c"], icmp)
    assert not blocked.allowed and "no route" in blocked.reason
