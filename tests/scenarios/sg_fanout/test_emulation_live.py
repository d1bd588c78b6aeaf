"""Live sg-fanout emulation (root + OVS): counts, verdicts and timing agree with the model; teardown restores."""

import pytest

from labtwin import api
from labtwin.scenarios import get_scenario
from labtwin.scenarios.sg_fanout.calibrate import MEASURED_PROFILE

pytestmark = pytest.mark.emulation


@pytest.mark.parametrize("firewall", ["iptables", "ipset", "ovs", "subtable"])
def test_join_agrees_with_the_model(live, ledger_dir, snapshot, firewall):
    before = snapshot()
    spec = get_scenario("sg-fanout")
    design = spec.design({"firewall": firewall, "members": 6, "hosts": 2, "joins": 2, "timing_repeats": 1})
    emulated = spec.emulate(None, design, 1, "")
    assert snapshot() == before
    assert not list(ledger_dir.glob("*.jsonl"))
    model = spec.simulate(None, spec.design({**design, "profile": str(MEASURED_PROFILE)}), 1, "")
    report = api.compare_runs(spec, model, emulated)  # counts and verdicts; timing is test_calibrate_live's
    assert report.agree, report.disagreements.to_string()
    assert (emulated.probes.verdict == "blocked").sum() == 4  # the non-member, both ways, per join
    ops = emulated.operations
    assert set(ops[ops.op == "agent_iteration"].host) == {"compute-1", "compute-2"}
