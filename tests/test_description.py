"""The description layer: valid files load into frozen objects; each kind of
mistake is reported at its file, line and field."""

import ipaddress
import textwrap

import pytest
from pydantic import ValidationError

from labtwin.description import CloudError, load_cloud, parse_cloud
from labtwin.description.schema import derived_id


def problems_of(text: str) -> list[str]:
    with pytest.raises(CloudError) as info:
        parse_cloud(textwrap.dedent(text), "t.yaml")
    return [str(p) for p in info.value.problems]


BASE = """\
name: t
physnets: [{name: physnet1}]
hosts:
  - {name: c1, role: compute, bridge_mappings: {physnet1: br-vlan}}
networks:
  - {name: n1}
segments:
  - {name: s1, network_id: n1, physical_network: physnet1, segmentation_id: 100}
subnets:
  - {name: sub1, network_id: n1, cidr: 10.0.0.0/24}
security_groups:
  - name: default
    rules: [{direction: ingress, remote_group_id: default}]
ports:
  - {name: p1, network_id: n1, binding:host_id: c1}
"""


def test_every_shipped_topology_is_valid(topologies):
    files = sorted(topologies.glob("*.yaml"))
    assert any(f.name == "minimal.yaml" for f in files)
    for path in files:
        load_cloud(path)


def test_minimal_loads_with_neutron_defaults(topologies):
    cloud = load_cloud(topologies / "minimal.yaml")
    vm_a = cloud.port["vm-a"]
    assert vm_a.ips == (ipaddress.ip_address("10.0.0.3"),)  # lowest free after the gateway .1 and the DHCP port .2
    (dhcp,) = cloud.network_ports  # the network node's DHCP agent made it with the subnet
    assert (dhcp.device_owner, dhcp.host, [str(f.ip_address) for f in dhcp.fixed_ips]) == (
        "network:dhcp",
        "network-1",
        ["10.0.0.2"],
    )
    assert vm_a.security_groups == ("default",)
    assert vm_a.mac_address.startswith("fa:16:3e:")
    assert cloud.subnet["private-v4"].pool_size == 253  # Neutron's /24 default pool
    assert str(cloud.network["private"].id) == derived_id("network", "private")
    gateway = cloud.routers[0].external_gateway_info.external_fixed_ips  # Neutron's gateway port takes one first
    assert [(f.subnet_id, str(f.ip_address)) for f in gateway] == [("public-v4", "203.0.113.2")]
    assert cloud.floatingips[0].floating_ip_address == ipaddress.ip_address("203.0.113.3")
    assert [p.name for p in cloud.group_members["default"]] == ["vm-a", "vm-b", "vm-d"]


def test_objects_are_frozen(minimal_text):
    cloud = parse_cloud(minimal_text)
    with pytest.raises(ValidationError):
        cloud.ports[0].name = "other"


def test_same_file_same_cloud(minimal_text):
    assert parse_cloud(minimal_text) == parse_cloud(minimal_text)


def test_slash22_pool_holds_1021():
    cloud = parse_cloud(BASE.replace("10.0.0.0/24", "10.0.0.0/22"))
    assert cloud.subnet["sub1"].pool_size == 1021


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("name: t", "name: t\ncolour: red", "t.yaml:2: colour: unknown field"),
        ("{name: c1, role: compute,", "{name: c1, role: hypervisor,", "t.yaml:4: hosts[0].role: Input should be"),
        (
            "segmentation_id: 100",
            "segmentation_id: 5000",
            "t.yaml:8: segments[0].segmentation_id: a VLAN id must be in 1..4094",
        ),
        ("segmentation_id: 100", "segmentation_id: ten", "t.yaml:8: segments[0].segmentation_id:"),
        (
            "{name: p1, network_id: n1,",
            "{name: p1, network_id: n9,",
            "t.yaml:15: ports[0].network_id: unknown network 'n9'",
        ),
        (
            "remote_group_id: default",
            "remote_group_id: ghost",
            "t.yaml:13: security_groups[0].rules[0].remote_group_id: unknown security group 'ghost'",
        ),
        (
            "{name: sub1, network_id: n1,",
            "{name: sub1, network_id: n1, segment_id: s9,",
            "t.yaml:10: subnets[0].segment_id: unknown segment 's9'",
        ),
        (
            "cidr: 10.0.0.0/24}",
            "cidr: 10.0.0.0/24, gateway_ip: 10.0.0.255}",
            "t.yaml:10: subnets[0].gateway_ip: 10.0.0.255 is not a host address of 10.0.0.0/24",
        ),
        ("cidr: 10.0.0.0/24}", "cidr: 10.0.0.1/24}", "t.yaml:10: subnets[0].cidr:"),
        ("{name: c1,", "{name: 'c1; rm -rf /',", "t.yaml:4: hosts[0].name: 'c1; rm -rf /' is not a safe name"),
        ("{name: c1,", "{name: compute-host-number-1,", "t.yaml:4: hosts[0].name:"),
        (
            "physnet1: br-vlan}",
            "physnet7: br-vlan}",
            "t.yaml:4: hosts[0].bridge_mappings.physnet7: unknown physnet 'physnet7'",
        ),
        ("  - {name: n1}", "  - {name: n1}\n  - {name: n1}", "t.yaml:7: networks[1].name: duplicate name 'n1'"),
        (
            "  - {name: p1, network_id: n1, binding:host_id: c1}",
            "  - {name: p1, network_id: n1}\n  - {name: p1, network_id: n1}",
            "t.yaml:16: ports[1].name: duplicate name 'p1'",
        ),
        ("name: t", "name: t\nname: u", "t.yaml:2: name: key given twice"),
        (
            "binding:host_id: c1}",
            "binding:host_id: c1, fixed_ips: [{subnet_id: sub1, ip_address: 10.0.0.1}]}",
            "t.yaml:15: ports[0].fixed_ips[0].ip_address: 10.0.0.1 is already allocated to the gateway",
        ),
        (
            "binding:host_id: c1}",
            "binding:host_id: c1, fixed_ips: [{subnet_id: sub1, ip_address: 10.0.1.5}]}",
            "t.yaml:15: ports[0].fixed_ips[0].ip_address: 10.0.1.5 is not a host address of 10.0.0.0/24",
        ),
        ("binding:host_id: c1}", "binding:host_id: c9}", "t.yaml:15: ports[0].binding:host_id: unknown host 'c9'"),
        ("hosts:", "hosts: [\n", "t.yaml:"),
    ],
)
def test_problem_is_located(old, new, expected):
    found = problems_of(BASE.replace(old, new, 1))
    assert any(p.startswith(expected) for p in found), found


def test_overlapping_cidrs_on_one_network():
    text = BASE.replace(
        "  - {name: sub1, network_id: n1, cidr: 10.0.0.0/24}",
        "  - {name: sub1, network_id: n1, cidr: 10.0.0.0/24}\n  - {name: sub2, network_id: n1, cidr: 10.0.0.128/25}",
    )
    assert any("subnets[1].cidr: 10.0.0.128/25 overlaps 10.0.0.0/24" in p for p in problems_of(text))


def test_ip_allocated_twice():
    text = BASE.replace(
        "  - {name: p1, network_id: n1, binding:host_id: c1}",
        "  - {name: p1, network_id: n1, fixed_ips: [{subnet_id: sub1, ip_address: 10.0.0.9}]}\n"
        "  - {name: p2, network_id: n1, fixed_ips: [{subnet_id: sub1, ip_address: 10.0.0.9}]}",
    )
    assert any(
        p.startswith("t.yaml:16: ports[1].fixed_ips[0].ip_address: 10.0.0.9 is already allocated to port 'p1'")
        for p in problems_of(text)
    )


def test_routed_network_host_on_two_segments_is_served_as_neutron_29_does():
    """Train answered 409 HostConnectedToMultipleSegments; Neutron 29 takes candidates from every mapped
    segment (checked against Neutron's own server in tests/oracle): the first segment's subnet, then
    the next one when it is full."""
    text = (
        BASE.replace(
            "  - {name: s1, network_id: n1, physical_network: physnet1, segmentation_id: 100}",
            "  - {name: s1, network_id: n1, physical_network: physnet1, segmentation_id: 100}\n"
            "  - {name: s2, network_id: n1, physical_network: physnet1, segmentation_id: 101}",
        )
        .replace(
            "  - {name: sub1, network_id: n1, cidr: 10.0.0.0/24}",
            "  - {name: sub1, network_id: n1, segment_id: s1, cidr: 10.0.0.0/30}\n"
            "  - {name: sub2, network_id: n1, segment_id: s2, cidr: 10.0.1.0/24}",
        )
        .replace(
            "  - {name: p1, network_id: n1, binding:host_id: c1}",
            "  - {name: p1, network_id: n1, binding:host_id: c1}\n  - {name: p2, network_id: n1, binding:host_id: c1}",
        )
    )
    cloud = parse_cloud(text)  # sub1 (a /30) has one address: p1 takes it, p2 gets sub2's first
    assert [(f.subnet_id, str(f.ip_address)) for p in cloud.ports for f in p.fixed_ips][:2] == [
        ("sub1", "10.0.0.2"),
        ("sub2", "10.0.1.2"),
    ]


def test_all_problems_of_a_file_are_reported_together():
    text = BASE.replace("network_id: n1, binding", "network_id: n9, binding").replace(
        "remote_group_id: default", "remote_group_id: ghost"
    )
    assert len(problems_of(text)) == 2


def test_unreadable_file(tmp_path):
    with pytest.raises(CloudError) as info:
        load_cloud(tmp_path / "missing.yaml")
    assert "cannot read" in str(info.value)


def test_cloud_renders_itself_with_table_and_picture(topologies):
    from labtwin.description.summary import cloud_graph

    cloud = load_cloud(topologies / "minimal.yaml")
    page = cloud._repr_html_()
    assert "<table>" in page and "compute-1 (compute, rack1): 2 ports" in page
    assert "data:image/png;base64," in page
    graph = cloud_graph(cloud)
    assert graph.has_edge("port:vm-a", "host:compute-1") and graph.has_edge("network:private", "physnet:physnet1")


SLAAC = BASE.replace(
    "  - {name: sub1, network_id: n1, cidr: 10.0.0.0/24}",
    "  - {name: sub1, network_id: n1, cidr: 10.0.0.0/24}\n"
    "  - {name: sub6, network_id: n1, ip_version: 6, cidr: '2001:db8::/64', ipv6_address_mode: slaac}",
).replace(
    "network_id: n1, binding:host_id: c1}", "network_id: n1, binding:host_id: c1, mac_address: 'fa:16:3e:12:34:56'}"
)


def test_a_dual_stack_port_gets_ipv4_from_the_pool_and_its_eui64_address_on_slaac():
    (port,) = parse_cloud(SLAAC).ports
    assert [(f.subnet_id, str(f.ip_address)) for f in port.fixed_ips] == [
        ("sub1", "10.0.0.2"),
        ("sub6", "2001:db8::f816:3eff:fe12:3456"),  # Neutron's own answer for this MAC (tests/oracle)
    ]


@pytest.mark.parametrize(
    "edit, message",
    [
        ("ip_version: 6, cidr: '2001:db8::/64', ipv6_address_mode: slaac", None),
        ("ip_version: 6, cidr: '2001:db8::/80', ipv6_address_mode: slaac", "needs a /64 prefix (InvalidInput, 400)"),
        (
            "ip_version: 6, cidr: '2001:db8::/64', ipv6_address_mode: slaac, ipv6_ra_mode: dhcpv6-stateful",
            "if both are set they must be the same (InvalidInput, 400)",
        ),
        (
            "ip_version: 6, cidr: '2001:db8::/64', ipv6_ra_mode: slaac, enable_dhcp: false",
            "cannot be set when enable_dhcp is false (InvalidInput, 400)",
        ),
        ("cidr: 10.1.0.0/24, ipv6_address_mode: slaac", "are for IPv6 subnets (InvalidInput, 400)"),
    ],
    ids=["ok", "not-64", "modes-differ", "no-dhcp", "ipv4"],
)
def test_ipv6_modes_are_checked_as_neutron_checks_them(edit, message):
    text = SLAAC.replace("ip_version: 6, cidr: '2001:db8::/64', ipv6_address_mode: slaac", edit)
    if message is None:
        assert parse_cloud(text).subnet["sub6"].auto_address
        return
    found = problems_of(text)
    assert any("subnets[1]" in p and message in p for p in found), found


def test_every_group_gets_neutrons_default_rules_unless_the_cloud_says_otherwise():
    text = BASE.replace("security_groups:\n", "security_groups:\n  - name: web\n")
    cloud = parse_cloud(text)
    rules = {g.name: {(r.direction, r.ethertype, r.remote_group_id) for r in g.rules} for g in cloud.security_groups}
    assert rules["web"] == {("egress", "IPv4", None), ("egress", "IPv6", None)}  # Neutron's, for every group
    assert rules["default"] == {  # the listed ingress rule is one of Neutron's own: present once
        ("ingress", "IPv4", "default"),
        ("ingress", "IPv6", "default"),
        ("egress", "IPv4", None),
        ("egress", "IPv6", None),
    }
    assert len(cloud.security_group["default"].rules) == 4
    bare = parse_cloud(text + "default_security_group_rules: []\n")
    assert [(r.direction, r.remote_group_id) for r in bare.security_group["default"].rules] == [("ingress", "default")]
    assert bare.security_group["web"].rules == ()


@pytest.mark.parametrize(
    "rule, message",
    [
        ("{direction: ingress, protocol: icmp, port_range_min: 8, port_range_max: 0}", None),
        ("{direction: ingress, protocol: icmp, port_range_max: 0}", "(SecurityGroupMissingIcmpType, 400)"),
        ("{direction: ingress, protocol: icmp, port_range_min: 300}", "(SecurityGroupInvalidIcmpValue, 400)"),
        ("{direction: ingress, port_range_min: 22}", "(SecurityGroupProtocolRequiredWithPorts, 400)"),
    ],
    ids=["type-and-code", "code-without-type", "type-too-big", "ports-without-protocol"],
)
def test_icmp_type_and_code_are_checked_as_neutron_checks_them(rule, message):
    text = BASE.replace("rules: [{direction: ingress, remote_group_id: default}]", f"rules: [{rule}]")
    if message is None:
        (first, *_) = parse_cloud(text).security_group["default"].rules
        assert (first.protocol, first.port_range_min, first.port_range_max) == ("icmp", 8, 0)
        return
    assert any(message in p for p in problems_of(text)), problems_of(text)


def test_a_protocol_name_and_its_number_are_one_rule():
    text = BASE.replace(
        "rules: [{direction: ingress, remote_group_id: default}]",
        "rules: [{direction: ingress, protocol: vrrp}, {direction: ingress, protocol: 112}, "
        "{direction: ingress, protocol: '6', port_range_min: 22}]",
    )
    rules = parse_cloud(text).security_group["default"].rules
    assert [(r.protocol, r.proto) for r in rules[:2]] == [("vrrp", "vrrp"), ("6", "tcp")]
    assert "(SecurityGroupRuleInvalidProtocol, 400)" in " ".join(problems_of(text.replace("vrrp", "vrrrp")))
    assert "(SecurityGroupRuleInvalidProtocol, 400)" in " ".join(problems_of(text.replace("112", "300")))


def test_a_remote_prefix_with_host_bits_is_kept_and_matches_its_network():
    text = BASE.replace(
        "rules: [{direction: ingress, remote_group_id: default}]",
        "rules: [{direction: ingress, remote_ip_prefix: 10.0.0.5/24}, "
        "{direction: ingress, remote_ip_prefix: 10.0.0.0/24}]",
    )
    first, second = parse_cloud(text).security_group["default"].rules[:2]  # two rules, as in Neutron
    assert (str(first.remote_ip_prefix), str(first.remote_network)) == ("10.0.0.5/24", "10.0.0.0/24")
    assert str(second.remote_ip_prefix) == "10.0.0.0/24"


ORACLE = __import__("pathlib").Path(__file__).resolve().parent / "oracle"
INPUTS = ORACLE.parent / "inputs"


def test_neutrons_own_ports_take_their_addresses_from_the_pools():
    """A DVR router's SNAT port (per interface subnet) and each DVR host's floating-IP agent gateway port (once per
    host, made with its first floating IP) take pool addresses, so the smallest pools run out where Neutron's
    do (tests/oracle/dvr-own-ports.yaml, agreed by Neutron 29's server)."""
    from labtwin.description.loader import load_declared

    declared = load_declared(ORACLE / "dvr-own-ports.yaml")
    made = [(p.device_owner, p.router or p.host, [(f.subnet_id, str(f.ip_address)) for f in p.fixed_ips])
            for p in declared.resolved.network_ports]  # fmt: skip
    assert made == [
        ("network:router_centralized_snat", "router1", [("private-v4", "10.0.0.2")]),
        ("network:floatingip_agent_gateway", "compute-1", [("public-v4", "203.0.113.4")]),
    ]  # compute-2's found the pool empty: Neutron logs it and makes none
    assert [str(p.loc) for p in declared.problems] == [
        "('ports', 4, 'fixed_ips')",
        "('floatingips', 3)",
        "('hosts', 0)",
        "('hosts', 2)",
    ]  # then network-1's (the router's SNAT) and compute-2's L3 agents ask for theirs: IpAddressGenerationFailure
    assert all("IpAddressGenerationFailure" in p.message for p in declared.problems)
    fips = [str(f.floating_ip_address) for f in declared.resolved.floatingips]
    assert fips == ["203.0.113.3", "203.0.113.5", "203.0.113.6"]


def test_a_legacy_router_makes_no_snat_port_and_its_floating_ips_no_agent_gateway(topologies):
    cloud = load_cloud(topologies / "minimal.yaml")
    assert not cloud.routers[0].distributed and cloud.floatingips
    assert [p.device_owner for p in cloud.network_ports] == ["network:dhcp"]


def test_a_dvr_routers_ipv6_subnets_share_one_snat_port_per_network(topologies):
    """``_update_snat_v6_addrs_after_intf_update``: a second IPv6 subnet on a network joins the first's SNAT port;
    IPv4 subnets get one port each."""
    text = (topologies / "dvr.yaml").read_text()
    text = text.replace(
        "interfaces: [tenant-a-v4, tenant-a-v6, tenant-b-v4]",
        "interfaces: [tenant-a-v4, tenant-a-v6, tenant-b-v4, a-v6-2]",
    )
    text = text.replace(
        "\nrouters:", "  - {name: a-v6-2, network_id: tenant-a, cidr: '2001:db8:aa::/64', ip_version: 6}\n\nrouters:", 1
    )
    cloud = parse_cloud(text, "dvr-two-v6.yaml")
    snat = [[f.subnet_id for f in p.fixed_ips] for p in cloud.network_ports if p.router == "router1"]
    assert snat == [["tenant-a-v4"], ["tenant-a-v6", "a-v6-2"], ["tenant-b-v4"]]


def test_an_interface_on_a_subnet_with_no_room_for_its_snat_port_is_refused():
    """The pool's one address is named by a port: a DVR router's SNAT port finds none, and the interface is
    refused (Neutron 29 agrees: tests/oracle); a legacy router needs no SNAT port."""
    text = (ORACLE / "dvr-snat-port-no-room.yaml").read_text()
    (found,) = problems_of(text)
    assert "routers[0].interfaces[0]" in found and "SNAT port" in found and "RouterInterfaceAttachmentConflict" in found
    legacy = parse_cloud(text.replace("distributed: true", "distributed: false"))
    assert [p.device_owner for p in legacy.network_ports] == ["network:dhcp"]  # on ext, whose subnet has DHCP


def test_network_ports_are_made_by_the_loader_never_written():
    found = problems_of(BASE + "network_ports: []\n")
    assert len(found) == 1 and "network_ports" in found[0] and "made by the loader" in found[0]


def test_a_refused_port_gives_back_the_addresses_it_took():
    """Neutron allocates a port's addresses in one transaction: vm-a (one address per IP version) and vm-c
    (both subnets named) are refused for want of an IPv6 address, and the IPv4 address each took goes to vm-b
    (Neutron 29 agrees: tests/oracle). Before, the refused ports kept it and vm-b was refused too."""
    from labtwin.description.loader import load_declared

    declared = load_declared(ORACLE / "refused-port-gives-back.yaml")
    assert [p.loc[:2] for p in declared.problems] == [("ports", 1), ("ports", 2)]
    vm_b = declared.resolved.port["vm-b"]
    assert [(f.subnet_id, str(f.ip_address)) for f in vm_b.fixed_ips] == [("v4", "10.0.0.2")]


def test_the_dhcp_ports_a_cloud_gets_are_listed_by_network():
    """tests/oracle/dhcp-ports.yaml (Neutron 29 agrees): a DHCP port per served network, one per segment the DHCP
    host maps on a routed network, none where DHCP is off or the named ports filled the pool."""
    from labtwin.description.loader import load_declared
    from labtwin.description.summary import summary_text

    declared = load_declared(ORACLE / "dhcp-ports.yaml")
    lines = [
        line.strip() for line in summary_text(declared.resolved).splitlines() if line.strip().startswith("dhcp of")
    ]
    assert lines == [
        "dhcp of network small (host network-1): 10.0.0.2 on small-v4",
        "dhcp of network dual (host network-1): 10.1.0.2 on dual-v4, EUI-64 on dual-v6",
        "dhcp of network routed (segment seg-a, host network-1): 10.2.0.2 on routed-a",
        "dhcp of network far (host network-1): 10.6.0.2 on far-v4",
    ]


def test_a_gateway_outside_its_subnet_is_accepted_but_no_router_interface_can_take_it():
    """Neutron accepts a gateway outside the subnet (``check_gateway_invalid_in_subnet``); an interface added by
    subnet asks for that address and is refused ``InvalidIpForSubnet`` (Neutron 29 agrees: tests/inputs and the
    oracle test). A gateway of the other IP version is refused as Neutron does (``InvalidInput``)."""
    text = (INPUTS / "external-gateway-off-subnet.yaml").read_text()
    cloud = parse_cloud(text)
    assert cloud.subnet["public-v4"].gateway_off_subnet and not cloud.subnet["private-v4"].gateway_off_subnet
    inside = text.replace("{name: private-v4, network_id: private, cidr: 10.0.0.0/24}", PRIVATE_OFF)
    (found,) = problems_of(inside)
    assert "routers[0].interfaces[0]" in found and "InvalidIpForSubnet" in found and "10.9.0.1" in found
    (found,) = problems_of(text.replace("gateway_ip: 198.51.100.1", "gateway_ip: '2001:db8::1'"))
    assert "gateway_ip" in found and "not an IPv4 address" in found and "InvalidInput" in found


PRIVATE_OFF = "{name: private-v4, network_id: private, cidr: 10.0.0.0/24, gateway_ip: 10.9.0.1}"
