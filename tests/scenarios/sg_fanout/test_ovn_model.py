"""firewall=ovn's model against a recorded run of real OVN (traces/sg-fanout/ovn), and wrong models that miss it.

The trace: Neutron 29's ML2/OVN driver and OVN 23.03 on 3 chassis, 6 members, 2 joins and a leave
(``labtwin emulate sg-fanout --set firewall=ovn --set members=6 --set hosts=3 --set joins=2
--set leaves=1``). Its per-change counts come from NB/SB rows and dump-flows diffs; the model must
give every one of them, per change and per chassis, and each wrong model below must not.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from labtwin.records import Operation, Run
from labtwin.scenarios import ScenarioError
from labtwin.scenarios.sg_fanout.model import ovn, simulate
from labtwin.scenarios.sg_fanout.spec import SgFanoutDesign

TRACE = Path(__file__).resolve().parents[3] / "traces" / "sg-fanout" / "ovn"


def diffs(run: Run) -> list[dict]:
    """Per change (subject, counts, per-chassis OpenFlow), in order."""
    return [
        {"subject": r.subject, **{k: r.detail[k] for k in (*ovn.COUNTS, "openflows_by_chassis")}}
        for r in run.records
        if isinstance(r, Operation) and r.op == "ovn_diff"
    ]


@pytest.fixture(scope="module")
def recorded() -> Run:
    return Run.load(TRACE)


def model_of(recorded: Run) -> Run:
    return simulate(None, recorded.design, recorded.seed)


def test_the_model_gives_every_recorded_count_per_change_and_chassis(recorded):
    model = model_of(recorded)
    assert diffs(model) == diffs(recorded)
    assert len(diffs(recorded)) == 3  # two joins and a leave
    for key in (*ovn.COUNTS, "openflows_by_chassis"):
        assert model.summary[key] == recorded.summary[key]


def test_at_150_members_on_one_chassis_a_join_writes_8_flows_as_the_model_says():
    """traces/sg-fanout/ovn-150: the notebook's 5-minute case under ML2/OVN (ready when Neutron's API call
    returns). One chassis with 150 local members: every remote-group logical flow is a conjunction that gains
    the port and its address (2 x 2), each egress rule's two logical flows gain the port (2 x 2)."""
    recorded = Run.load(TRACE.parent / "ovn-150")
    assert diffs(model_of(recorded)) == diffs(recorded)
    assert recorded.summary["openflows_written"] == 8 and recorded.summary["lflows_written"] == 0


def test_a_join_writes_no_logical_flow_and_a_conjunction_grows_by_one_flow_per_dimension(recorded):
    """The property the PTG asked for: a join changes the address set, not the ACLs."""
    joins = [d for d in diffs(recorded) if d["subject"].startswith("j-")]
    assert joins and all(d["lflows_written"] == 0 for d in joins)
    # 6 members over 3 hosts: every chassis already holds 2 local members, so every remote-group flow is a
    # conjunction; a chassis gains one address flow per logical flow of the IPv4 remote-group ACL (2)
    assert min(min(d["openflows_by_chassis"].values()) for d in joins) == ovn.LFLOWS_PER_ACL


WRONG_MODELS = {
    "no conjunction (always the cross product)": (
        "_kind",
        lambda dims: "empty" if any(not d for d in dims) else "product",
    ),
    "one logical flow per ACL": ("LFLOWS_PER_ACL", 1),
    "no OpenFlow of the departed port itself": ("VIF_LOCAL_FLOWS", 0),
}


@pytest.mark.parametrize("wrong", sorted(WRONG_MODELS))
def test_a_wrong_model_misses_the_recorded_counts(recorded, monkeypatch, wrong):
    name, value = WRONG_MODELS[wrong]
    monkeypatch.setattr(ovn, name, value)
    assert model_of(recorded).summary["openflows_written"] != recorded.summary["openflows_written"]


def test_every_port_taken_as_local_misses_the_recorded_counts(recorded, monkeypatch):
    """ovn-controller expands a port group over the ports bound to its own chassis, not all of them."""

    def all_local(self, host, acl):
        addresses = frozenset(self.members.values())
        members = frozenset(self.members)
        return [members, addresses if acl.ethertype == "IPv4" else frozenset()] if acl.remote_group else [members]

    monkeypatch.setattr(ovn.OvnState, "dims", all_local)
    assert model_of(recorded).summary["openflows_by_chassis"] != recorded.summary["openflows_by_chassis"]


@pytest.mark.parametrize("seed", range(40))
def test_counting_changed_flows_from_value_sets_equals_building_them(seed):
    """flows_changed counts what expansion() would build, before and after, for products, conjunctions and empty
    dimensions, one, two or three of them."""
    import random

    rng = random.Random(seed)
    values = list("abcdefg")

    def dims(n):
        return [frozenset(rng.sample(values, rng.choice((0, 1, 1, 2, 3, 5)))) for _ in range(n)]

    for n in (1, 2, 3):
        before, after = dims(n), dims(n)
        if rng.random() < 0.3:
            after = [before[0], *after[1:]]
        built = len(ovn.expansion(before) ^ ovn.expansion(after))
        assert ovn.flows_changed([before], [after]) == ovn.LFLOWS_PER_ACL * built


def test_conjunction_sizes():
    assert [ovn.conj_flows(local, 170) for local in (0, 1, 2, 40)] == [0, 170, 173, 211]


def test_firewall_ovn_implies_control_ovn_and_contradictions_are_refused():
    assert SgFanoutDesign.of({"firewall": "ovn"}).control == "ovn"
    assert SgFanoutDesign.of({"control": "ovn"}).firewall == "ovn"
    assert SgFanoutDesign.of({}).control == "labtwin"
    with pytest.raises(ScenarioError, match="firewall=ovn is ML2/OVN's own firewall"):
        SgFanoutDesign.of({"firewall": "ovn", "control": "neutron"})
    with pytest.raises(ScenarioError, match="not firewall=ipset"):
        SgFanoutDesign.of({"firewall": "ipset", "control": "ovn"})


def test_a_port_range_the_model_cannot_expand_is_refused():
    from dataclasses import replace

    from labtwin.description.schema import SecurityGroupRule
    from labtwin.scenarios.sg_fanout.spec import generated_layout

    layout = generated_layout(3, 2, "spread", 1, 0)
    rule = SecurityGroupRule(direction="ingress", protocol="tcp", port_range_min=22, port_range_max=25)
    with pytest.raises(ValueError, match="port range"):
        ovn.acls(replace(layout, rules=(*layout.rules, rule)))


# --- time to ready: Neutron's API call, then OVN's propagation ---------------------------------------------------
def test_time_to_ready_is_the_api_call_then_propagation_and_none_without_ovn_costs():
    from labtwin.scenarios.sg_fanout.profiles import TRAIN_2019

    change = ovn.Change(2, 3, 0, {"compute-1": 8, "compute-2": 2})
    assert ovn.ready_s(TRAIN_2019, change) is None  # a named profile has no OVN costs: not modelled
    costs = TRAIN_2019.with_overrides(ovn_update_port_s=0.2, ovn_propagate_s=0.004, ovn_flow_s=0.001)
    assert ovn.ready_s(costs, change) == pytest.approx(0.2 + 0.004 + 0.001 * 8)  # the busiest chassis


def test_the_fit_takes_the_median_api_call_and_a_line_of_the_rest_on_the_flows():
    from labtwin.scenarios.sg_fanout.calibrate_ovn import fit

    same = [{"api_s": a, "ready_s": a + 0.005, "flows_max": 8} for a in (0.1, 0.2, 0.3)]
    costs, report = fit(same)
    assert costs == pytest.approx({"ovn_update_port_s": 0.2, "ovn_propagate_s": 0.005, "ovn_flow_s": 0.0})
    varied = [{"api_s": 0.2, "ready_s": 0.2 + 0.003 + 0.0005 * f, "flows_max": f} for f in (2, 8, 100, 400)]
    costs, _ = fit(varied)
    assert costs["ovn_propagate_s"] == pytest.approx(0.003) and costs["ovn_flow_s"] == pytest.approx(0.0005)
    with pytest.raises(ValueError, match="nothing to fit"):
        fit([])


@pytest.mark.parametrize("trace", ["ovn", "ovn-150"])
def test_the_recorded_times_agree_with_the_committed_calibration_and_a_wrong_cost_breaks_it(trace, tmp_path):
    """Timed against ovn-measured.json (made on the traces' machine): the twin compares and agrees; the same
    model with Neutron's API call doubled, halved or left out disagrees on port_ready_s alone."""
    import json

    from labtwin import api
    from labtwin.scenarios.sg_fanout.calibrate_ovn import OVN_MEASURED_PROFILE

    recorded = Run.load(TRACE.parent / trace)
    design = {**recorded.design, "profile": str(OVN_MEASURED_PROFILE)}
    report = api.compare_runs("sg-fanout", simulate(None, design, recorded.seed), recorded)
    timing = report.rows[report.rows.key == "port_ready_s"].iloc[0]
    assert report.agree and bool(timing.agree) is True, report.disagreements.to_string()
    calibration = json.loads(OVN_MEASURED_PROFILE.read_text())
    api_s = calibration["profile"]["ovn_update_port_s"]
    for factor in (2.0, 0.5, 0.0):
        wrong = tmp_path / f"wrong-{factor}.json"
        wrong.write_text(
            json.dumps({**calibration, "profile": {**calibration["profile"], "ovn_update_port_s": api_s * factor}})
        )
        model = simulate(None, {**recorded.design, "profile": str(wrong)}, recorded.seed)
        bad = api.compare_runs("sg-fanout", model, recorded).disagreements
        assert list(bad.key) == ["port_ready_s"], factor


def test_a_run_gives_one_calibration_point_per_join_from_its_fastest_attempt(recorded):
    from labtwin.scenarios.sg_fanout.calibrate_ovn import join_points

    points = join_points(recorded)
    assert [p["join"] for p in points] == ["j-0001", "j-0002"]
    for p in points:
        assert 0 < p["api_s"] <= p["ready_s"] and p["flows_max"] > 0
    ready = {e.subject: e.detail for e in recorded.records if getattr(e, "kind", None) == "port_ready"}
    assert all(p["ready_s"] == ready[p["join"]]["latency_s"] == min(ready[p["join"]]["attempts_s"]) for p in points)
