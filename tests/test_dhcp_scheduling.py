"""Which DHCP agents host each network (Neutron 29's WeightScheduler, replayed by the loader), the cloud's
mechanism driver and ML2/OVN's metadata ports. Neutron's own answers to the same files: tests/oracle."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from labtwin.description import CloudError, load_cloud, parse_cloud
from labtwin.description.loader import load_declared

ORACLE_CASES = Path(__file__).resolve().parent / "oracle"


def problems_of(text: str) -> list[str]:
    with pytest.raises(CloudError) as info:
        parse_cloud(textwrap.dedent(text), "t.yaml")
    return [str(p) for p in info.value.problems]


def dhcp_ports(cloud) -> list[tuple[str, str, str]]:
    return [
        (p.network_id, p.host or "", p.segment or "") for p in cloud.network_ports if p.device_owner == "network:dhcp"
    ]


def test_two_network_nodes_share_the_networks_least_loaded_first():
    """dhcp-scheduling.yaml: each subnet's creation gives its network the least-loaded agent that reaches it (ties
    to the first host name, not the file's first network node); a DHCP-less network counts in the load, a network
    only one agent reaches goes there, a routed network gets an agent per segment."""
    cloud = load_cloud(ORACLE_CASES / "dhcp-scheduling.yaml")
    assert sorted(dhcp_ports(cloud)) == sorted(
        [
            ("n1", "net-a", ""),
            ("n2", "net-b", ""),
            ("n3", "net-b", ""),
            ("far", "net-a", ""),
            ("routed", "net-b", "seg-1"),
            ("routed", "net-a", "seg-1"),
            ("routed", "net-a", "seg-2"),
            ("n4", "net-b", ""),
            ("n5", "net-a", ""),
        ]
    )
    vm = cloud.port["vm-1"]
    assert [str(ip) for ip in vm.ips] == ["10.0.1.3"]  # n1's DHCP port took .2


def test_dhcp_agents_per_network_gives_each_network_that_many_ports():
    """dhcp_agents_per_network: 2 (three agents): two per network, the second from an agent's sync for a network
    only one agent reaches; the two DHCP ports on a /29 leave room for three VMs, and the fourth is refused."""
    declared = load_declared(ORACLE_CASES / "dhcp-agents-per-network.yaml")
    assert declared.resolved is not None
    hosts: dict[str, list[str]] = {}
    for network, host, _ in dhcp_ports(declared.resolved):
        hosts.setdefault(network, []).append(host)
    assert {n: sorted(h) for n, h in hosts.items()} == {
        "m1": ["nn-a", "nn-b"],
        "m2": ["nn-a", "nn-c"],
        "m3": ["nn-b", "nn-c"],
        "far": ["nn-a", "nn-c"],
        "tight": ["nn-b", "nn-c"],
    }
    (problem,) = declared.problems
    assert problem.loc == ("ports", 3, "fixed_ips") and "IpAddressGenerationFailure" in problem.message


BASE = """\
name: t
physnets: [{name: physnet1}]
hosts:
  - {name: nn1, role: network, bridge_mappings: {physnet1: br-ex}}
  - {name: c1, role: compute, bridge_mappings: {physnet1: br-ex}}
networks:
  - {name: n1}
  - {name: public, router:external: true}
segments:
  - {name: public-flat, network_id: public, network_type: flat, physical_network: physnet1}
subnets:
  - {name: s1, network_id: n1, cidr: 10.0.0.0/24}
  - {name: public-v4, network_id: public, cidr: 203.0.113.0/24}
routers:
  - {name: r1, distributed: true, external_gateway_info: {network_id: public}, interfaces: [s1]}
ports:
  - {name: vm-1, network_id: n1, binding:host_id: c1}
floatingips:
  - {floating_network_id: public, port_id: vm-1}
"""


def test_the_mechanism_driver_decides_which_ports_neutron_makes():
    """ML2/OVS (the default): DHCP ports, the DVR router's SNAT port and the fg- ports of c1 (its floating IP) and nn1
    (its dvr_snat agent hosts the router, and asks for one too: ``DvrLocalRouter.process_external``). ML2/OVN: none;
    with ovn_metadata_enabled, one metadata port per network with an address on each IPv4 DHCP subnet."""
    owners = lambda cloud: sorted(p.device_owner for p in cloud.network_ports)  # noqa: E731
    ovs = parse_cloud(BASE, "t.yaml")
    assert owners(ovs) == [
        "network:dhcp",
        "network:dhcp",
        "network:floatingip_agent_gateway",
        "network:floatingip_agent_gateway",
        "network:router_centralized_snat",
    ]
    assert owners(parse_cloud("mechanism_driver: ovn\n" + BASE, "t.yaml")) == []
    ovn = parse_cloud("mechanism_driver: ovn\novn_metadata_enabled: true\n" + BASE, "t.yaml")
    assert [(p.network_id, [str(f.ip_address) for f in p.fixed_ips]) for p in ovn.network_ports] == [
        ("n1", ["10.0.0.2"]),
        ("public", ["203.0.113.2"]),
    ]
    assert [str(ip) for ip in ovs.port["vm-1"].ips] == ["10.0.0.4"]  # after the DHCP port (.2) and the SNAT port (.3)
    assert [str(ip) for ip in ovn.port["vm-1"].ips] == ["10.0.0.3"]  # after the metadata port (.2) alone


def test_a_metadata_port_exhausts_a_pool_as_neutrons_does():
    declared = load_declared(ORACLE_CASES / "ovn-metadata.yaml")
    (problem,) = declared.problems
    assert problem.loc == ("ports", 4, "fixed_ips") and "IpAddressGenerationFailure" in problem.message
    metadata = {p.network_id: [f.subnet_id for f in p.fixed_ips] for p in declared.resolved.network_ports}
    assert metadata == {
        "small": ["small-v4"],
        "dual": ["dual-v4", "dual-v6"],
        "quiet": [],
        "public": ["public-v4"],
        "routed": ["routed-a", "routed-b"],
    }


@pytest.mark.parametrize(
    "head, where, says",
    [
        ("dhcp_agents_per_network: 0\n", "t.yaml:1: dhcp_agents_per_network:", "greater than or equal to 1"),
        ("ovn_metadata_enabled: true\n", "t.yaml:1: ovn_metadata_enabled:", "an option of ML2/OVN"),
        ("mechanism_driver: ovn\ndhcp_agents_per_network: 2\n", "t.yaml:2: dhcp_agents_per_network:", "none runs"),
        ("mechanism_driver: linuxbridge\n", "t.yaml:1: mechanism_driver:", "'openvswitch' or 'ovn'"),
    ],
)
def test_bad_neutron_options_are_located_errors(head, where, says):
    (problem,) = problems_of(head + BASE)
    assert problem.startswith(where) and says in problem, problem


@pytest.mark.parametrize("scenario", ["dvr", "multisegment", "sg-fanout", "reachability"])
def test_a_scenario_refuses_a_control_plane_of_another_mechanism_driver(scenario):
    """A file that writes its mechanism driver is run by that driver's control plane only: ``control=ovn`` on an
    ML2/OVS cloud, or an ML2/OVS control plane on an ML2/OVN cloud, is refused in one line naming the fix; a file
    silent about it leaves the choice to the knob."""
    from labtwin.scenarios import SCENARIOS, TopologyUnfit

    spec = SCENARIOS[scenario]
    other = next(c for c in next(k for k in spec.knobs if k.name == "control").choices if c != "ovn")
    for written, control, fix in (("ovn", other, "set control=ovn"), ("openvswitch", "ovn", "drop control=ovn")):
        cloud = parse_cloud(f"mechanism_driver: {written}\n" + BASE, "t.yaml")
        with pytest.raises(TopologyUnfit, match=f"t.yaml: scenario {scenario} cannot run on cloud 't': .*{fix}"):
            spec.refuse_unfit(cloud, spec.design({"control": control}), "t.yaml")
    silent = parse_cloud(BASE, "t.yaml")
    for control in ("ovn", other):
        try:
            spec.refuse_unfit(silent, spec.design({"control": control}), "t.yaml")
        except TopologyUnfit as exc:  # the scenario's own needs may refuse this small cloud, never the driver
            assert "mechanism_driver" not in str(exc)
