"""The dvr traffic model steps only the bursts the network node accepts; it must agree with the per-burst DES.

Both draw from the same distributions, so they agree in distribution, not draw by draw: compared here as
means over seeds, at loads both can run (idle, near capacity, and far past it, where most bursts are lost).
Each tolerance is shown able to fail: a queue with half the buffer, or losses not counted, breaks it.
"""

from __future__ import annotations

import random
import statistics

import pytest

from labtwin.scenarios.dvr.model import traffic
from labtwin.scenarios.dvr.model.traffic import run_traffic, run_traffic_per_burst

WEIGHTS = {"ns-snat": 0.5, "ew-cross-host": 0.3, "ns-fip-in": 0.2}
CROSSING = {"ns-snat": True, "ew-cross-host": False, "ns-fip-in": True}
CAPACITY = 1e6
SEEDS = range(12)
DURATION = 0.05


#: A matrix with a class half of whose packets cross (DVR's IPv6: out by fip-, replies by snat-), matrix.py.
HALF_CROSSING = {"ns-snat": 1.0, "ew-cross-host": 0.0, "ns-ipv6": 0.5}
HALF_WEIGHTS = {"ns-snat": 0.3, "ew-cross-host": 0.3, "ns-ipv6": 0.4}


def means(run, flows: int, weights=WEIGHTS, crossing=CROSSING) -> dict[str, float]:
    rows = [run(weights, crossing, flows, CAPACITY, random.Random(seed), DURATION).summary(CAPACITY) for seed in SEEDS]
    keys = ("offered_pps", "network_node_share_sampled", "nn_loss", "nn_utilization", "nn_delay_ms_mean")
    return {k: statistics.fmean(r[k] for r in rows) for k in keys}


def close(a: dict, b: dict) -> list[str]:
    """Keys whose means differ by more than 3% of the larger (or 0.01 absolute near zero)."""
    return [k for k in a if abs(a[k] - b[k]) > max(0.03 * max(abs(a[k]), abs(b[k])), 0.01)]


@pytest.mark.parametrize("flows", [1_000, 4_000, 20_000])  # 35%, 140%, 700% of the network node's capacity
def test_the_aggregated_traffic_model_agrees_with_the_per_burst_one(flows):
    assert close(means(run_traffic, flows), means(run_traffic_per_burst, flows)) == []


@pytest.mark.parametrize(
    "wrong",
    ["half the buffer", "losses not counted"],
)
def test_a_wrong_aggregation_disagrees(monkeypatch, wrong):
    reference = means(run_traffic_per_burst, 20_000)
    if wrong == "half the buffer":
        monkeypatch.setattr(traffic, "NN_BUFFER_BURSTS", traffic.NN_BUFFER_BURSTS // 2)
    else:
        original = traffic._network_node_queue

        def uncounted(stats, *args):
            arrived = original(stats, *args)
            stats.nn_offered -= stats.nn_lost
            stats.nn_lost = 0
            return arrived

        monkeypatch.setattr(traffic, "_network_node_queue", uncounted)
    assert close(means(run_traffic, 20_000), reference) != []


@pytest.mark.parametrize("flows", [1_000, 8_000])  # idle, and past capacity
def test_a_class_crossing_in_part_splits_its_bursts_alike_in_both(flows):
    """A class crossing with fraction 0.5 queues half its bursts in both variants: the network node's sampled
    share is 0.3 + 0.4 / 2 of what is offered."""
    aggregated = means(run_traffic, flows, HALF_WEIGHTS, HALF_CROSSING)
    assert close(aggregated, means(run_traffic_per_burst, flows, HALF_WEIGHTS, HALF_CROSSING)) == []
    assert aggregated["network_node_share_sampled"] == pytest.approx(0.5, abs=0.01)


def test_a_partial_crossing_counted_whole_disagrees(monkeypatch):
    """The check can fail: an aggregation that queues every burst of a class crossing in part."""
    reference = means(run_traffic_per_burst, 8_000, HALF_WEIGHTS, HALF_CROSSING)
    whole = {cls: float(part > 0) for cls, part in HALF_CROSSING.items()}
    assert close(means(run_traffic, 8_000, HALF_WEIGHTS, whole), reference) != []


def test_a_crossing_fraction_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="'ns-ipv6' is 1.5"):
        run_traffic(HALF_WEIGHTS, {**HALF_CROSSING, "ns-ipv6": 1.5}, 100, CAPACITY, random.Random(0), DURATION)


def test_a_million_flows_take_the_steps_the_network_node_forwards():
    """10^6 flows offer 15.6 million bursts a second; the network node forwards 31,250 of them."""
    stats = run_traffic(WEIGHTS, CROSSING, 1_000_000, CAPACITY, random.Random(1), 0.1)
    summary = stats.summary(CAPACITY)
    assert summary["nn_utilization"] > 0.99 and summary["nn_loss"] > 0.99
    assert len(stats.delays) <= CAPACITY / traffic.BURST_PACKETS * 0.1 + 1
    assert summary["offered_pps"] == pytest.approx(1_000_000 * traffic.FLOW_PPS, rel=0.01)
