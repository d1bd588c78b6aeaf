"""Timing in the twin: compared only against a calibration of the machine the emulation ran on, and able to fail.

No root needed: the emulation side is a committed sg-fanout trace, and the committed calibration
(labtwin/scenarios/sg_fanout/measured.json) was made on the machine those traces ran on, the same day.
The unmutated pair must agree on port_ready_s; a model with every cost at zero, halved or doubled
must make the twin disagree on it, and on nothing else.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from labtwin import api, calibration
from labtwin.emulation.machine import machine_key
from labtwin.records import Run
from labtwin.scenarios import Tolerance, get_scenario
from labtwin.scenarios.sg_fanout.calibrate import MEASURED_PROFILE
from labtwin.scenarios.sg_fanout.profiles import load_profile

TRACES = Path(__file__).resolve().parents[3] / "traces" / "sg-fanout"
EXAMPLE = calibration.Calibration.from_file(MEASURED_PROFILE)
FACTS = EXAMPLE.fingerprint
COSTS = (
    "iptables_apply_fixed_s",
    "iptables_rule_s",
    "ipset_apply_fixed_s",
    "ipset_rule_s",
    "ipset_cmd_s",
    "ovs_apply_fixed_s",
    "ovs_flow_s",
)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "labtwin" / "calibrations"


def same_machine(monkeypatch) -> None:
    """This machine fingerprints as the one the committed calibration was made on (calibrate and twin alike)."""
    from labtwin.scenarios.sg_fanout import calibrate as sg_fanout_calibrate
    from labtwin.scenarios.sg_fanout import timing_basis as sg_fanout_timing

    for module in (sg_fanout_calibrate, sg_fanout_timing):
        monkeypatch.setattr(module, "fingerprint", lambda: FACTS)


def calibration_of_trace_machine(tmp_path: Path, scale: float = 1.0) -> Path:
    """The committed calibration with every fitted cost times *scale* (1: the file as committed)."""
    if scale == 1.0:
        return MEASURED_PROFILE
    profile = {**EXAMPLE.profile, **{k: EXAMPLE.profile[k] * scale for k in COSTS}}
    return calibration.save(replace(EXAMPLE, profile=profile), tmp_path / f"calibration-x{scale}.json")


def trace(firewall: str) -> Run:
    return Run.load(TRACES / firewall)


def model_for(emulated: Run, profile: Path) -> Run:
    return api.simulate("sg-fanout", None, emulated.seed, **{**emulated.design, "profile": str(profile)})


def port_ready_row(report):
    return report.rows[report.rows.key == "port_ready_s"].iloc[0]


@pytest.mark.parametrize("firewall", ["iptables", "ipset", "ovs", "subtable"])
def test_a_calibration_of_the_same_machine_times_the_twin(tmp_path, firewall):
    emulated = trace(firewall)
    assert emulated.versions["machine"] == machine_key(FACTS)
    report = api.compare_runs("sg-fanout", model_for(emulated, calibration_of_trace_machine(tmp_path)), emulated)
    assert bool(port_ready_row(report).agree) and port_ready_row(report).agree is not None
    assert report.agree, report.disagreements.to_string()


@pytest.mark.parametrize("firewall", ["iptables", "ipset", "ovs", "subtable"])
@pytest.mark.parametrize("scale", [0.0, 0.5, 2.0])
def test_a_zero_cost_or_doubled_cost_model_disagrees_on_timing(tmp_path, firewall, scale):
    emulated = trace(firewall)
    report = api.compare_runs("sg-fanout", model_for(emulated, calibration_of_trace_machine(tmp_path, scale)), emulated)
    assert list(report.disagreements.key) == ["port_ready_s"], report.rows.tail(3).to_string()


def test_timing_is_not_compared_against_another_machine_or_a_named_profile(tmp_path):
    emulated = trace("ipset")
    emulated.versions["machine"] = "another-machine"
    report = api.compare_runs("sg-fanout", model_for(emulated, calibration_of_trace_machine(tmp_path, 2.0)), emulated)
    row = port_ready_row(report)
    assert row.agree is None and row.tolerance.startswith("not compared: no calibration for this machine")
    assert report.agree  # counts and verdicts still compared, and they agree
    assert (report.rows.agree.notna()).sum() > 10
    named = api.compare_runs("sg-fanout", model_for(emulated, MEASURED_PROFILE), emulated)
    assert port_ready_row(named).agree is None


def test_an_emulation_without_a_recorded_machine_is_not_timed(tmp_path):
    emulated = trace("ipset")
    del emulated.versions["machine"]  # as runs recorded before they carried their machine
    report = api.compare_runs("sg-fanout", model_for(emulated, calibration_of_trace_machine(tmp_path)), emulated)
    assert port_ready_row(report).agree is None


def test_ratio_tolerance_breaks_for_zero_and_double_and_holds_inside():
    tol = Tolerance("t", ratio=1.6)
    assert tol.agrees(0.05, 0.07) and tol.agrees(0.07, 0.05)
    assert not tol.agrees(0.0, 0.05) and not tol.agrees(0.10, 0.05) and not tol.agrees(0.05, 0.10)


def test_calibrations_live_in_the_xdg_cache_and_carry_their_machine(cache):
    path = calibration.path_for("sg-fanout", machine_key(FACTS))
    assert path.parent.parent == cache
    calibration.save(calibration.Calibration("sg-fanout", FACTS, {"name": "measured"}), path)
    saved = json.loads(path.read_text())
    assert saved["fingerprint"] == FACTS and saved["date"]
    assert calibration.find("sg-fanout", FACTS, machine_key(FACTS)) == path
    other = {**FACTS, "cores": "4"}
    assert calibration.find("sg-fanout", other, machine_key(other)) is None
    # a file under this key that records another machine is not used
    path.write_text(json.dumps({**saved, "fingerprint": other}))
    assert calibration.find("sg-fanout", FACTS, machine_key(FACTS)) is None


def test_a_calibration_file_is_a_profile(tmp_path):
    path = calibration_of_trace_machine(tmp_path, 2.0)
    assert load_profile(path).ovs_flow_s == pytest.approx(2 * load_profile(MEASURED_PROFILE).ovs_flow_s)


def test_twin_without_calibration_says_so_and_uses_the_example_for_counts(cache, monkeypatch):

    same_machine(monkeypatch)
    timing = get_scenario("sg-fanout").twin_timing({"firewall": "ovs"}, auto_calibrate=False)
    assert timing.not_compared.startswith("no calibration for this machine")
    assert timing.model_knobs == {"profile": str(MEASURED_PROFILE)}
    assert get_scenario("sg-fanout").twin_timing({"profile": "train-2019"}).model_knobs == {}


def test_twin_calibrates_the_missing_family_once_with_progress(cache, monkeypatch):
    from labtwin.scenarios.sg_fanout import calibrate as sg_fanout_calibrate
    from labtwin.scenarios.sg_fanout import timing_basis as sg_fanout_timing

    same_machine(monkeypatch)
    made = []

    def fake_measure(firewalls, sizes, hosts, joins, repeats, seed, progress=None, timing_repeats=1, control="labtwin"):
        rows = [
            {"firewall": fw, "members": m, "repeat": r, "updates_total": 0, "port_ready_s": 0.01 + 0.001 * m}
            for fw in firewalls
            for m in sizes
            for r in range(repeats)
        ]
        for i in range(len(rows) if progress else 0):
            progress(i + 1, len(rows))
        made.append(tuple(firewalls))
        return rows

    monkeypatch.setattr(sg_fanout_calibrate, "measure", fake_measure)
    seen = []
    timing = sg_fanout_timing.twin_timing({"firewall": "ipset"}, progress=lambda done, total: seen.append(done))
    assert made == [("ipset",), ("ipset",)] and seen[-1] == len(seen) > 0  # idle, then with one core busy
    assert timing.not_compared == "" and Path(timing.model_knobs["profile"]).parent.parent == cache
    sg_fanout_timing.twin_timing({"firewall": "ipset"})  # calibrated: no second calibration
    sg_fanout_timing.twin_timing({"firewall": "subtable"})  # the other family is added, the first kept
    sg_fanout_timing.twin_timing({"firewall": "ovs"})  # same family as the subtable
    assert made == [("ipset",), ("ipset",), ("ovs", "subtable"), ("ovs", "subtable")]
    kept = calibration.Calibration.from_file(Path(timing.model_knobs["profile"]))
    assert sg_fanout_calibrate.families_in(kept) == {"ipset", "ovs"}


def test_a_calibration_made_the_old_way_is_not_used(cache, monkeypatch):
    from labtwin.scenarios.sg_fanout import timing_basis as sg_fanout_timing

    same_machine(monkeypatch)
    old = calibration.Calibration(
        "sg-fanout", FACTS, {"name": "measured"}, fit={"iptables": {}, "ipset": {}, "ovs": {}}
    )
    calibration.save(replace(old), calibration.path_for("sg-fanout", machine_key(FACTS)))
    timing = sg_fanout_timing.twin_timing({"firewall": "ipset"}, auto_calibrate=False)
    assert timing.not_compared.startswith("no calibration for this machine")


def test_the_sg_fanout_timing_band_cannot_hold_a_doubled_or_halved_model():
    ready = next(t for t in get_scenario("sg-fanout").tolerances if t.metric == "port_ready_s")
    assert ready.timing and ready.ratio * ready.ratio_slower < 2  # so x2 or x0.5 leaves the band from anywhere in it
    for model_over_emulation in (1 / ready.ratio_slower, 1.0, ready.ratio):  # the band's edges and its centre
        assert ready.agrees(model_over_emulation, 1.0)
        assert not ready.agrees(2 * model_over_emulation, 1.0) and not ready.agrees(model_over_emulation / 2, 1.0)


def test_the_pace_exponent_is_measured_per_strategy():
    from labtwin.scenarios.sg_fanout.calibrate import pace_exponents

    def rows(fw, took, pace):
        return [{"firewall": fw, "members": m, "port_ready_s": took * m, "pace_s": pace} for m in (5, 20)]

    idle = rows("iptables", 0.001, 0.002) + rows("ipset", 0.001, 0.002) + rows("ovs", 0.001, 0.002)
    loaded = rows("iptables", 0.002, 0.004) + rows("ipset", 0.0012, 0.004) + rows("ovs", 0.001, 0.0021)
    exponents = pace_exponents(idle, loaded)
    assert exponents["iptables"] == pytest.approx(1.0) and exponents["ipset"] == pytest.approx(0.263, abs=1e-3)
    assert "ovs" not in exponents  # its probe barely moved: nothing to learn, the default applies


def test_neutrons_agent_is_timed_only_against_a_calibration_of_neutrons_agent(cache, monkeypatch):
    """control=neutron: labtwin's agent's calibration is not its clock, and none is made automatically; a
    calibration of Neutron's agent on this machine (kept apart, sg-fanout-neutron) times it."""
    from labtwin.scenarios.sg_fanout import calibrate as sg_fanout_calibrate
    from labtwin.scenarios.sg_fanout import timing_basis as sg_fanout_timing

    same_machine(monkeypatch)
    monkeypatch.setattr(sg_fanout_calibrate, "measure", lambda *a, **k: pytest.fail("no automatic calibration"))
    calibration.save(EXAMPLE, calibration.path_for("sg-fanout", machine_key(FACTS)))  # labtwin's agent's
    timing = sg_fanout_timing.twin_timing({"firewall": "iptables", "control": "neutron"})
    assert "no calibration of Neutron's agent on this machine" in timing.not_compared
    neutrons = calibration.path_for(sg_fanout_calibrate.calibration_name("neutron"), machine_key(FACTS))
    assert neutrons.parent.name == "sg-fanout-neutron"
    calibration.save(replace(EXAMPLE, scenario="sg-fanout-neutron"), neutrons)
    timing = sg_fanout_timing.twin_timing({"firewall": "iptables", "control": "neutron"})
    assert timing.not_compared == "" and timing.model_knobs["profile"] == str(neutrons)


def test_calibrate_refuses_an_unknown_control():
    from labtwin.scenarios.sg_fanout.calibrate import calibrate

    with pytest.raises(ValueError, match="control must be one of labtwin, neutron, ovn, not 'nova'"):
        calibrate(control="nova", members="5", firewall="iptables")
