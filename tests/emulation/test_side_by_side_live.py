"""Two runs of the same scenario at once (root + OVS): both agree with the model, and the machine is as before.

Two runs of one topology have the same MACs, VLANs, addresses and Neutron
device names; what keeps them apart is the run's own root-namespace names,
ledger and processes, and the machine-wide OVS lock (labtwin.emulation.ovs_lock:
one run's teardown would otherwise make the other's bridges forget its MACs).
The runs are threads of this test, so they also share one process.
"""

import threading

import pytest

from labtwin import api
from labtwin.emulation.ledger import process_table
from labtwin.scenarios import get_scenario
from labtwin.scenarios.sg_fanout.calibrate import MEASURED_PROFILE
from labtwin.twin import compare

pytestmark = pytest.mark.emulation

PAIRS = {
    "dvr": [{"router": "dvr"}, {"router": "legacy"}],  # the pair of issue 10: one topology, two designs
    "reachability": [{"probes": "icmp,tcp:22"}] * 2,  # the same run twice
    "sg-fanout": [{"firewall": "ovs", "members": 3, "hosts": 2}] * 2,
}


def _twin(scenario: str, knobs: dict, out):
    """The twin report of one run; sg-fanout's without its timing (the pair runs one after the other on OVS)."""
    if scenario != "sg-fanout":
        return api.twin(scenario, None, 1, out, **knobs)[0]
    spec = get_scenario(scenario)
    design = spec.design(knobs)
    emulated = spec.emulate(None, design, 1, "", out_dir=out)
    model = spec.simulate(None, spec.design({**knobs, "profile": str(MEASURED_PROFILE)}), 1, "")
    return compare(model, emulated, [t for t in spec.tolerances if t.metric != "port_ready_s"])


def _side_by_side(scenario: str, designs: list[dict], out) -> list:
    """Twin *scenario* once per design, all at once (one thread each); the reports, or the errors raised."""
    results: list = [None] * len(designs)

    def run(i: int) -> None:
        try:
            results[i] = _twin(scenario, designs[i], out / str(i))
        except BaseException as exc:  # handed to the test's thread
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(designs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return results


@pytest.mark.parametrize("scenario", sorted(PAIRS))
def test_two_runs_side_by_side_both_agree_and_leave_nothing(live, ledger_dir, snapshot, tmp_path, scenario):
    before = snapshot()
    results = _side_by_side(scenario, PAIRS[scenario], tmp_path)
    for design, report in zip(PAIRS[scenario], results):
        assert not isinstance(report, BaseException), f"{scenario} {design}: {report!r}"
        assert report.agree, (scenario, design, report.disagreements.to_dict("records"))
    assert snapshot() == before
    assert not list(ledger_dir.glob("*.jsonl"))
    assert not [
        argv for argv in process_table().values() if "labtwin.scenarios.dvr.emulation.labtwin_agent.dhcpd" in argv
    ]
