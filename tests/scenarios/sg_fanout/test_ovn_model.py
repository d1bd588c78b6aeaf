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
        "expansion",
        lambda dims: frozenset(range(_product(len(d) for d in dims))),
    ),
    "one logical flow per ACL": ("LFLOWS_PER_ACL", 1),
    "no OpenFlow of the departed port itself": ("VIF_LOCAL_FLOWS", 0),
}


def _product(sizes) -> int:
    n = 1
    for s in sizes:
        n *= s
    return n


@pytest.mark.parametrize("wrong", sorted(WRONG_MODELS))
def test_a_wrong_model_misses_the_recorded_counts(recorded, monkeypatch, wrong):
    name, value = WRONG_MODELS[wrong]
    monkeypatch.setattr(ovn, name, value)
    assert model_of(recorded).summary["openflows_written"] != recorded.summary["openflows_written"]


def test_every_port_taken_as_local_misses_the_recorded_counts(recorded, monkeypatch):
    """ovn-controller expands a port group over the ports bound to its own chassis, not all of them."""

    monkeypatch.setattr(ovn.OvnState, "flows", lambda self, host: _all_local_flows(self))
    assert model_of(recorded).summary["openflows_by_chassis"] != recorded.summary["openflows_by_chassis"]


def _all_local_flows(state: ovn.OvnState) -> frozenset:
    members = frozenset(state.members)
    addresses = frozenset(state.members.values())
    out: set = set()
    for i, acl in enumerate(state.acls):
        dims = [members, addresses if acl.ethertype == "IPv4" else frozenset()] if acl.remote_group else [members]
        for lflow in range(ovn.LFLOWS_PER_ACL):
            out |= {(i, lflow, f) for f in ovn.expansion(dims)}
    return frozenset(out)


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
    from labtwin.description.schema import SecurityGroupRule
    from labtwin.scenarios.sg_fanout.spec import generated_layout

    layout = generated_layout(3, 2, "spread", 1, 0)
    rule = SecurityGroupRule(direction="ingress", protocol="tcp", port_range_min=22, port_range_max=25)
    with pytest.raises(ValueError, match="port range"):
        ovn.acls(type(layout)(**{**layout.__dict__, "rules": (*layout.rules, rule)}))
