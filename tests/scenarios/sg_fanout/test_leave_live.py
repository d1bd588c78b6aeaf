"""Live sg-fanout leaves (root + OVS): a member's delete, counted from the kernel, agrees with the model.

Three hosts, three members, one join, one leave: m-0003 leaves compute-3, its
only member, so that host's group object is destroyed, while compute-1 and
compute-2 refresh their members and drop the address from theirs.
"""

import pytest

from labtwin import api
from labtwin.scenarios import get_scenario
from labtwin.scenarios.sg_fanout.calibrate import MEASURED_PROFILE

pytestmark = pytest.mark.emulation


@pytest.mark.parametrize("firewall", ["iptables", "ipset", "ovs", "subtable"])
def test_leave_agrees_with_the_model(live, ledger_dir, snapshot, firewall):
    before = snapshot()
    spec = get_scenario("sg-fanout")
    design = spec.design({"firewall": firewall, "members": 3, "hosts": 3, "joins": 1, "leaves": 1, "timing_repeats": 1})
    emulated = spec.emulate(None, design, 1, "")
    assert snapshot() == before
    model = spec.simulate(None, spec.design({**design, "profile": str(MEASURED_PROFILE)}), 1, "")
    report = api.compare_runs(spec, model, emulated)  # counts and verdicts; timing is test_calibrate_live's
    assert report.agree, report.disagreements.to_string()
    s = emulated.summary
    assert s["filters_removed"] == 1
    # every host with members wrote its group object for the join and again for the leave
    # (compute-3's is destroyed); plain iptables has none
    assert s["group_writes"] == (0 if firewall == "iptables" else 3 + 3)
    left = emulated.probes[emulated.probes.src == "m-0003"]
    left = left[left.detail.apply(lambda d: d.get("leave") == "m-0003")]
    assert sorted(left.dst) == ["m-0001", "m-0002"] and set(left.verdict) == {"blocked"}
    events = emulated.events
    applied = events[events.kind == "leave_applied"].detail.iloc[0]
    assert applied["stale_hosts"] == []
