"""The committed sg-fanout emulation trace loads without root and agrees with the model."""

from pathlib import Path

from labtwin.records import Run
from labtwin.scenarios import get_scenario
from labtwin.twin import compare

TRACE = Path(__file__).resolve().parents[2] / "traces" / "sg-fanout"


def test_recorded_run_agrees_with_the_model_on_counts_verdicts_and_timing():
    emulated = Run.load(TRACE)
    spec = get_scenario("sg-fanout")
    assert emulated.backend == "emulation" and emulated.scenario == "sg-fanout"
    knobs = {**emulated.design, **spec.extra["twin_model_knobs"]}
    model = spec.simulate(None, spec.design(knobs), emulated.seed, "")
    report = compare(model, emulated, spec.tolerances)
    assert report.agree, report.disagreements.to_string()
    probes = report.rows[report.rows.kind == "probe"]
    assert len(probes) == len(emulated.probes) == len(model.probes) > 0
    assert {"allowed", "blocked"} == set(emulated.probes.verdict)


def test_trace_shows_the_ipset_rewrite_without_change():
    summary = Run.load(TRACE).summary
    assert summary["firewall"] == "ipset"
    # every member's filter re-created in the kernel (new rule handles), few objects really changed
    assert summary["filters_written"] == summary["joins"] * (summary["members"] + 1) + summary["joins"] - 1
    assert summary["objects_changed"] < summary["updates_total"] / 5
