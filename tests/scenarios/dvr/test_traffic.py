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


def means(run, flows: int) -> dict[str, float]:
    rows = [run(WEIGHTS, CROSSING, flows, CAPACITY, random.Random(seed), DURATION).summary(CAPACITY) for seed in SEEDS]
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


def test_a_million_flows_take_the_steps_the_network_node_forwards():
    """10^6 flows offer 15.6 million bursts a second; the network node forwards 31,250 of them."""
    stats = run_traffic(WEIGHTS, CROSSING, 1_000_000, CAPACITY, random.Random(1), 0.1)
    summary = stats.summary(CAPACITY)
    assert summary["nn_utilization"] > 0.99 and summary["nn_loss"] > 0.99
    assert len(stats.delays) <= CAPACITY / traffic.BURST_PACKETS * 0.1 + 1
    assert summary["offered_pps"] == pytest.approx(1_000_000 * traffic.FLOW_PPS, rel=0.01)
