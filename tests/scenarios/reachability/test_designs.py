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
