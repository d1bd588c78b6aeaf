"""Design checks on routed networks: one rack, one host, 1,500 ports of demand, /22 subnets."""

import pytest

from labtwin.testing import (
    assert_allocations_succeed,
    assert_interface_names_fit,
    assert_no_bridge_collisions,
    assert_twin_agrees,
)

RACK = dict(racks=1, hosts_per_rack=1, demand=1500, max_prefix=22)


def test_a_22_per_segment_serves_the_demand_with_many_segments_per_host(simulate):
    run = simulate("multisegment", segments_per_host="many", bridge_naming="segment", **RACK)
    assert_allocations_succeed(run, demand=1500)


def test_segment_named_bridges_never_merge_two_segments(simulate):
    run = simulate("multisegment", segments_per_host="many", bridge_naming="segment", **RACK)
    assert_no_bridge_collisions(run)
    assert_interface_names_fit(run)


@pytest.mark.emulation
def test_real_bridges_merge_segments_exactly_where_the_model_says(twin):
    # topologies/multisegment.yaml has a host with two segments: network-named bridges leak
    report, _, emulation = twin(
        "multisegment", topology="multisegment.yaml", segments_per_host="many", bridge_naming="network"
    )
    assert_twin_agrees(report)
    assert emulation.summary["l2_leaks"] >= 1
