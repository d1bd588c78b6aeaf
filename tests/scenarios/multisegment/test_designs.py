"""Design checks on routed networks: one rack, one host, 1,500 ports of demand, /22 subnets."""

from labtwin.testing import (
    assert_allocations_succeed,
    assert_interface_names_fit,
    assert_no_bridge_collisions,
)

RACK = dict(racks=1, hosts_per_rack=1, demand=1500, max_prefix=22)


def test_a_22_per_segment_serves_the_demand_with_many_segments_per_host(simulate):
    run = simulate("multisegment", segments_per_host="many", bridge_naming="segment", **RACK)
    assert_allocations_succeed(run, demand=1500)


def test_segment_named_bridges_never_merge_two_segments(simulate):
    run = simulate("multisegment", segments_per_host="many", bridge_naming="segment", **RACK)
    assert_no_bridge_collisions(run)
    assert_interface_names_fit(run)


# The twin on real bridges (network-named bridges merge rack2's two segments on r2-c1, exactly where the model
# says) is the scenario contract's case many-network: tests/test_scenario_contract.py and
# tests/scenarios/multisegment/contract.py.
