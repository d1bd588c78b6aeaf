"""Golden model outputs: each scenario's model summary for its default topology and a few designs.

The model is deterministic (same inputs, same seed, same summary), so these files pin what it says. A
semantic change to a model shows up here as a diff to review and commit, never silently. Regenerate with
``LABTWIN_UPDATE_GOLDEN=1 pytest tests/test_golden.py`` and read the diff before committing it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from labtwin import api

GOLDEN = Path(__file__).resolve().parent / "golden"

#: (scenario, case name, knobs): the default design, then designs that take other paths through the model.
CASES = [
    ("reachability", "default", {}),
    ("reachability", "icmp-only", {"probes": "icmp"}),
    ("dvr", "default", {}),
    ("dvr", "legacy", {"router": "legacy"}),
    ("dvr", "ovn", {"router": "ovn", "ovn_distributed_fip": True}),
    ("dvr", "dvr-proposals", {"ipv6_fast_exit": True, "distributed_snat": True, "distributed_dhcp": True}),
    ("multisegment", "default", {}),
    ("multisegment", "many-segment-naming", {"segments_per_host": "many", "bridge_naming": "segment"}),
    ("multisegment", "ovs-always", {"agent": "ovs", "operator": "always"}),
    ("sg-fanout", "default", {}),
    ("sg-fanout", "ipset", {"firewall": "ipset", "joins": 2, "leaves": 1}),
    ("sg-fanout", "ovs", {"firewall": "ovs", "members": 40, "hosts": 4}),
    ("sg-fanout", "subtable-packed", {"firewall": "subtable", "placement": "packed"}),
]


def golden_view(run) -> dict:
    """What is pinned: the inputs and the summary (not versions or wall-clock facts of this machine)."""
    return {
        "scenario": run.scenario,
        "design": run.design,
        "seed": run.seed,
        "topology": Path(run.topology).name if run.topology else "",
        "summary": run.summary,
    }


def canonical(data: dict) -> str:
    return json.dumps(data, indent=1, sort_keys=True, default=str) + "\n"


@pytest.mark.parametrize("scenario, case, knobs", CASES, ids=[f"{s}-{c}" for s, c, _ in CASES])
def test_model_output_is_the_committed_one(scenario, case, knobs):
    path = GOLDEN / scenario / f"{case}.json"
    now = canonical(golden_view(api.simulate(scenario, seed=1, **knobs)))
    if os.environ.get("LABTWIN_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(now)
    assert path.is_file(), f"no golden output {path}: LABTWIN_UPDATE_GOLDEN=1 writes it (review it first)"
    assert now == path.read_text(), f"the {scenario} model's output for {case} changed; review and regenerate"


def test_a_different_answer_breaks_the_comparison():
    """The check can fail: another design's output (sg-fanout with ipset, where the default is iptables, or
    reachability asking one flow instead of two) is not the committed default file."""
    for scenario, knobs in (("sg-fanout", {"firewall": "ipset"}), ("reachability", {"probes": "icmp"})):
        wrong = canonical(golden_view(api.simulate(scenario, seed=1, **knobs)))
        assert wrong != (GOLDEN / scenario / "default.json").read_text()
