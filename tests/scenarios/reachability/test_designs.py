"""Design checks on the security groups of topologies/minimal.yaml.

vm-a and vm-b are in the default group, vm-c only in `ssh`, vm-d in both.
"""

import pytest

from labtwin.testing import assert_blocked, assert_reachable, assert_twin_agrees


def test_members_of_the_default_group_reach_each_other(simulate):
    run = simulate("reachability")
    for src, dst in [("vm-a", "vm-b"), ("vm-b", "vm-a"), ("vm-a", "vm-d"), ("vm-d", "vm-b")]:
        assert_reachable(run, src, dst, "icmp")
        assert_reachable(run, src, dst, "tcp:22")


def test_ssh_only_port_accepts_ssh_and_reaches_only_ports_that_admit_it(simulate):
    run = simulate("reachability")
    assert_reachable(run, "vm-a", "vm-c", "tcp:22")
    assert_blocked(run, "vm-a", "vm-c", "icmp")
    # Neutron gave the ssh group its default egress rules, so vm-c sends; only vm-d (in ssh too) admits it
    assert_reachable(run, "vm-c", "vm-d", "tcp:22")
    for dst in ("vm-a", "vm-b"):  # their default group admits only its members
        assert_blocked(run, "vm-c", dst, "tcp:22")
        assert_blocked(run, "vm-c", dst, "icmp")


@pytest.mark.emulation
@pytest.mark.slow
def test_real_packets_confirm_the_ssh_only_port(emulate):
    run = emulate("reachability")
    assert_reachable(run, "vm-a", "vm-c", "tcp:22")
    assert_blocked(run, "vm-c", "vm-a", "tcp:22")
    assert_reachable(run, "vm-c", "vm-d", "tcp:22")  # through Neutron's default egress rule of the ssh group


@pytest.mark.emulation
@pytest.mark.slow
def test_model_and_emulation_agree_on_every_verdict(twin):
    report, model, emulation = twin("reachability")
    assert_twin_agrees(report)


def test_recorded_packets_show_what_the_ssh_only_port_reaches(trace):
    run = trace("traces/reachability")  # a committed emulation run: no root needed
    assert run.backend == "emulation"
    assert_reachable(run, "vm-a", "vm-c", "tcp:22")
    assert_reachable(run, "vm-c", "vm-d", "tcp:22")  # Neutron's default egress rule of the ssh group
    for dst in ("vm-a", "vm-b"):
        assert_blocked(run, "vm-c", dst, "tcp:22")


ICMP_TYPES = "tests/oracle/icmp-types.yaml"


def test_an_icmp_rule_admits_only_its_type(simulate):
    """Type 8 admits the probe's echo request; a rule for echo replies (type 0) does not."""
    run = simulate("reachability", topology=ICMP_TYPES, probes="icmp")
    assert_reachable(run, "vm-b", "vm-a", "icmp")
    assert_blocked(run, "vm-a", "vm-b", "icmp")


@pytest.mark.emulation
def test_real_echo_requests_meet_the_icmp_types_neutron_writes(twin):
    report, model, emulation = twin("reachability", topology=ICMP_TYPES, probes="icmp")
    assert_twin_agrees(report)
    assert_reachable(emulation, "vm-b", "vm-a", "icmp")
    assert_blocked(emulation, "vm-a", "vm-b", "icmp")


@pytest.mark.emulation
def test_rules_by_protocol_number_filter_real_packets_as_the_model_says(twin):
    """``6`` with port 22 is tcp/22, ``vrrp``/``112`` (one rule) admits no probe, and a prefix with host
    bits (10.0.0.5/24) admits its network: real packets agree."""
    report, model, emulation = twin("reachability", topology="tests/oracle/protocols.yaml", probes="icmp,tcp:22,tcp:80")
    assert_twin_agrees(report)
    assert_reachable(emulation, "vm-a", "vm-b", "tcp:22")
    assert_reachable(emulation, "vm-a", "vm-b", "tcp:80")
    assert_blocked(emulation, "vm-a", "vm-b", "icmp")


PROVIDER_ROUTING = "tests/scenarios/reachability/provider-routing.yaml"


def test_provider_networks_reach_each_other_through_the_physical_router(simulate):
    run = simulate("reachability", topology=PROVIDER_ROUTING, probes="icmp,tcp:22")
    assert_reachable(run, "vm-a", "vm-b", "icmp")
    assert_reachable(run, "vm-b", "vm-a", "tcp:22")


@pytest.mark.emulation
def test_the_emulated_physical_router_routes_between_provider_networks(twin):
    """The gateways of both provider subnets live on one router namespace on the physnet's fabric (no
    Neutron router): real packets cross it as the model says."""
    report, model, emulation = twin("reachability", topology=PROVIDER_ROUTING, probes="icmp,tcp:22")
    assert_twin_agrees(report)
    assert_reachable(emulation, "vm-a", "vm-b", "icmp")
    assert_reachable(emulation, "vm-b", "vm-a", "tcp:22")


def test_the_physical_router_holds_each_provider_gateway_on_its_segments_vlan():
    from labtwin.description import load_cloud
    from labtwin.scenarios.reachability.emulation.plan import plan

    cloud = load_cloud(PROVIDER_ROUTING)
    built = plan(cloud, "t0pr")
    batch = built.config["router:physical"].ip_batch
    assert "addr add 203.0.113.1/24 dev gw0" in batch and "addr add 198.51.100.1/24 dev gw1" in batch
    ends = {v.a_dev: v.b_dev for v in built.veths if v.a == "router:physical"}
    tags = {p.dev: p.tag for p in built.ovs_ports}
    assert sorted(tags[ends[dev]] for dev in ("gw0", "gw1")) == [101, 102]
    vm_a = next(
        k for k, c in built.config.items() if k.startswith("port:") and "addr add 203.0.113.2/24 dev eth0" in c.ip_batch
    )
    assert "route add default via 203.0.113.1 dev eth0" in built.config[vm_a].ip_batch


#: Both instances on one host, routed back into it by the physical router (deploy-ovs-provider.rst's east-west
#: scenario 2); and the same with provider2's gateway outside its subnet.
SAME_HOST = "tests/conformance/36-path-provider-ew2/topology.yaml"
GATEWAY_OFF_SUBNET = "tests/inputs/provider-gateway-off-subnet.yaml"


def test_each_network_is_tracked_in_its_own_conntrack_zone():
    """As ``IptablesFirewallDriver._get_jump_rules`` writes them: the tap and its bridge set the network's zone, so a
    packet the physical router sends back into the host onto the other network is a new connection there."""
    from labtwin.description import load_cloud
    from labtwin.scenarios.reachability.emulation.plan import plan

    built = plan(load_cloud(SAME_HOST), "t0zn")
    (host,) = [c for k, c in built.config.items() if k.startswith("host:")]
    raw = host.rules.iptables.split("*filter")[0]
    zones = sorted({line.rsplit(" ", 1)[1] for line in raw.splitlines() if "CT --zone" in line})
    assert zones == ["4097", "4098"] and raw.count("--physdev-in tap") == 2 and raw.count(" -i ") == 2


def test_a_gateway_outside_its_subnet_is_reached_on_link():
    from labtwin.description import load_cloud
    from labtwin.scenarios.reachability.emulation.plan import plan

    built = plan(load_cloud(GATEWAY_OFF_SUBNET), "t0gw")
    router = built.config["router:physical"].ip_batch
    assert "addr add 198.51.100.9/32 dev gw1" in router and "route add 192.0.2.0/24 dev gw1 scope link" in router
    vm = next(
        c for k, c in built.config.items() if k.startswith("port:") and "addr add 192.0.2.101/24 dev eth0" in c.ip_batch
    )
    assert vm.ip_batch[-2:] == [
        "route add 198.51.100.9 dev eth0 scope link",
        "route add default via 198.51.100.9 dev eth0",
    ]


@pytest.mark.emulation
@pytest.mark.parametrize("topology", [SAME_HOST, GATEWAY_OFF_SUBNET], ids=["same-host", "gateway-off-subnet"])
def test_the_physical_router_routes_back_into_the_same_host(twin, topology):
    """Without a zone per network, the packet coming back into the host matched the connection it left as and
    tcp:22 was blocked (the model says allowed; Neutron's own agent agreed with the model)."""
    report, model, emulation = twin("reachability", topology=topology, probes="icmp,tcp:22")
    assert_twin_agrees(report)
    for src, dst in (("instance1", "instance2"), ("instance2", "instance1")):
        assert_reachable(emulation, src, dst, "tcp:22")


#: Small clouds each control is checked on: (topology, probes).
SMALL_CLOUDS = [
    ("topologies/minimal.yaml", "icmp,tcp:22"),
    (ICMP_TYPES, "icmp"),
    ("tests/oracle/protocols.yaml", "icmp,tcp:22,tcp:80"),
    ("tests/conformance/22-sg-portsec-off/topology.yaml", "icmp,tcp:22"),
]


# --- control=neutron: Neutron 29's own agent writes the filters -------------------------------------------------
@pytest.mark.emulation
@pytest.mark.parametrize(
    "topology,probes",
    SMALL_CLOUDS,
)
def test_neutrons_own_driver_filters_real_packets_as_the_model_says(twin, topology, probes):
    """The same clouds with each host's filter written by Neutron 29's SecurityGroupAgentRpc and hybrid
    iptables driver (ipset on, ports on ML2/OVS's hybrid plug): every verdict equals the model's."""
    report, model, emulation = twin("reachability", topology=topology, probes=probes, control="neutron")
    assert_twin_agrees(report)
    assert emulation.summary["control"] == "neutron"
    assert emulation.summary["neutron_calls"]["prepare_port_filter"] >= 2  # Neutron prepared every VM port's filter


@pytest.mark.emulation
def test_on_routed_provider_networks_neutrons_driver_agrees_with_the_model_on_every_verdict(twin):
    """topologies/multisegment.yaml: two segments' VMs on one host, a provider router between racks. With
    labtwin's own filter (no per-port conntrack zones, ports straight on the network's bridge) two tcp:22
    verdicts between segments disagree; Neutron's driver on the hybrid plug gives the model's every verdict."""
    report, model, emulation = twin("reachability", topology="topologies/multisegment.yaml", control="neutron")
    assert_twin_agrees(report)
    assert len(report.rows[report.rows.kind == "probe"]) >= 60


# --- control=ovn: real OVN, every row written by Neutron 29's own ML2/OVN driver ---------------------------------
@pytest.mark.emulation
@pytest.mark.parametrize(
    "topology,probes",
    SMALL_CLOUDS[1:],  # minimal.yaml: test_ovn_nb.py, with the rows Neutron wrote
)
def test_real_ovn_written_by_neutrons_driver_filters_real_packets_as_the_model_says(twin, ovn, topology, probes):
    """The same clouds created through Neutron's API with ML2/OVN (its ACLs, port groups, localnet ports),
    each host a real OVN 23.03 chassis: every verdict equals the model's."""
    report, model, emulation = twin("reachability", topology=topology, probes=probes, control="ovn")
    assert_twin_agrees(report)
    assert emulation.summary["control"] == "ovn"
