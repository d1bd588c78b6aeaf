"""Batched port requests (the model's default) against serving them one by one (the reference).

Both serve the same arrivals. Batching may only change what :mod:`...model.demand` says it changes: the
allocation records (one per batch instead of one per port), which addresses are taken, and which of several
equally long tap names is reported. Everything else must be identical: every summary number, and every other
record (segments added, DHCP ports, agent work, collisions, restarts) with its time.
"""

from __future__ import annotations

from collections import Counter

import pytest

from labtwin.description import load_cloud
from labtwin.records import record_line
from labtwin.scenarios import topologies_dir
from labtwin.scenarios.multisegment.model import Simulation, demand
from labtwin.scenarios.multisegment.model.cloud import generate_cloud
from labtwin.scenarios.multisegment.model.summary import summarize
from labtwin.scenarios.multisegment.spec import MultisegmentDesign

ALLOCATIONS = ("allocation_ok", "allocation_failed")
#: A batch names a host's first tap of a segment only (see labtwin.scenarios.multisegment.model.demand).
MAY_DIFFER = {"longest_interface_name"}

DESIGNS = {
    "many": dict(racks=4, hosts_per_rack=5, demand=3000, segments_per_host="many"),
    "one, cautious": dict(racks=3, hosts_per_rack=4, demand=2500, segments_per_host="one"),
    "one, always (409s)": dict(racks=3, hosts_per_rack=3, demand=2000, segments_per_host="one", operator="always"),
    "lead time, early add": dict(
        racks=3, hosts_per_rack=4, demand=3000, segments_per_host="many", lead_time_h=48, add_segment_at=100
    ),
    "lead time, late add": dict(racks=2, hosts_per_rack=4, demand=3000, lead_time_h=48, segments_per_host="many"),
    "rolling restart": dict(
        racks=3, hosts_per_rack=4, demand=2000, segments_per_host="many", migration="rolling-restart"
    ),
    "ovs, network key": dict(racks=3, hosts_per_rack=4, demand=2000, segments_per_host="many", agent="ovs"),
    "ovn": dict(racks=3, hosts_per_rack=4, demand=2000, agent="ovn"),
    "the default topology": dict(segments_per_host="many", bridge_naming="network"),
}


def simulated(label: str, batched: bool, seed: int = 1) -> Simulation:
    design = MultisegmentDesign.of(DESIGNS[label])
    if label == "the default topology":
        cloud = load_cloud(topologies_dir() / "multisegment.yaml")
    else:
        cloud = generate_cloud(int(design.racks), int(design.hosts_per_rack), int(design.max_prefix), design.agent)
    sim = Simulation(cloud, design, seed, batched=batched)
    sim.run()
    return sim


def other_records(sim: Simulation) -> list[str]:
    return sorted(record_line(r) for r in sim.rec.records if getattr(r, "kind", "") not in ALLOCATIONS)


def allocated(sim: Simulation) -> Counter:
    """Requests per (outcome, subnet or reason, rack) over the allocation records."""
    out: Counter = Counter()
    for r in sim.rec.records:
        if getattr(r, "kind", "") in ALLOCATIONS:
            key = r.detail.get("subnet") or r.detail["reason"]
            out[r.kind, key, r.detail.get("rack", r.detail.get("origin"))] += r.detail.get("count", 1)
    return out


@pytest.mark.parametrize("label", DESIGNS)
def test_batching_changes_nothing_but_what_it_says(label):
    each, batched = simulated(label, batched=False), simulated(label, batched=True)
    a, b = summarize(each, each.cloud, []), summarize(batched, batched.cloud, [])
    assert {k: (a[k], b[k]) for k in a if a[k] != b[k] and k not in MAY_DIFFER} == {}
    assert other_records(batched) == other_records(each)
    assert allocated(batched) == allocated(each)


def test_a_generated_cloud_is_served_in_batches():
    each, batched = simulated("many", batched=False), simulated("many", batched=True)
    assert len(batched.rec.records) < len(each.rec.records) / 20
    assert sum(r.detail.get("count", 1) for r in batched.rec.records if getattr(r, "kind", "") in ALLOCATIONS) == (
        4 * 3000
    )


def test_an_operator_acting_one_request_late_is_caught(monkeypatch):
    """The comparison can fail: a batch that lets one more request through before the operator's watch fires
    starts the segment addition later, and the records say so."""
    each = simulated("many", batched=False)
    real = demand.operator_cut
    monkeypatch.setattr(demand, "operator_cut", lambda *args: None if real(*args) is None else real(*args) + 1)
    late = simulated("many", batched=True)
    assert other_records(late) != other_records(each)
