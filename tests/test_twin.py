"""The twin comparison is a join: equal verdicts agree, any difference is reported."""

from dataclasses import replace

from labtwin import api
from labtwin.records import Probe, Run
from labtwin.scenarios import Tolerance
from labtwin.twin import compare


def as_emulation(run: Run, records=None, summary=None) -> Run:
    return Run(
        run.scenario,
        "emulation",
        run.design,
        run.seed,
        run.topology,
        summary if summary is not None else dict(run.summary),
        records if records is not None else list(run.records),
    )


def test_identical_runs_agree():
    model = api.simulate("reachability")
    report = compare(model, as_emulation(model))
    assert report.agree and len(report.rows) == model.summary["probe_count"]


def test_one_flipped_verdict_disagrees():
    model = api.simulate("reachability")
    records = list(model.records)
    first = next(i for i, r in enumerate(records) if isinstance(r, Probe))
    flipped = "blocked" if records[first].verdict == "allowed" else "allowed"
    records[first] = replace(records[first], verdict=flipped)
    report = compare(model, as_emulation(model, records))
    assert not report.agree
    assert len(report.disagreements) == 1
    assert report.disagreements.iloc[0]["emulation"] == flipped


def test_missing_probe_disagrees():
    model = api.simulate("reachability")
    records = [r for r in model.records if not (isinstance(r, Probe) and r.src == "vm-a" and r.dst == "vm-b")]
    assert not compare(model, as_emulation(model, records)).agree


def test_metric_tolerance():
    model = api.simulate("reachability")
    tol = (Tolerance("allowed", relative=0.1),)
    close = dict(model.summary, allowed=model.summary["allowed"] + 1)
    assert compare(model, as_emulation(model, summary=close), tol).agree is (1 <= 0.1 * close["allowed"])
    far = dict(model.summary, allowed=model.summary["allowed"] * 3)
    assert not compare(model, as_emulation(model, summary=far), tol).agree


def test_a_metric_neither_side_has_is_not_compared_but_one_side_missing_disagrees():
    model = api.simulate("reachability")
    tol = (Tolerance("ready_s", relative=0.1),)
    silent = replace(model, summary={**model.summary, "ready_s": None})
    neither = compare(silent, as_emulation(silent), tol)
    row = neither.rows[neither.rows["key"] == "ready_s"].iloc[0]
    assert row["agree"] is None and "neither side" in row["tolerance"] and neither.agree
    one = compare(model, as_emulation(model, summary={**model.summary, "ready_s": 0.5}), tol)
    assert not one.agree


def test_listed_probe_details_must_be_equal():
    model = api.simulate("reachability")
    records = list(model.records)
    first = next(i for i, r in enumerate(records) if isinstance(r, Probe))
    records[first] = replace(records[first], detail={**records[first].detail, "hops": ["a", "b"]})
    same = as_emulation(model)
    assert compare(model, same, details=("hops",)).agree is False  # absent on both sides: not agreement
    marked = [replace(r, detail={**r.detail, "hops": ["a"]}) if isinstance(r, Probe) else r for r in model.records]
    m = Run(model.scenario, "model", model.design, model.seed, model.topology, model.summary, marked)
    assert compare(m, as_emulation(m), details=("hops",)).agree
    changed = list(marked)
    changed[first] = replace(changed[first], detail={**changed[first].detail, "hops": ["a", "b"]})
    report = compare(m, as_emulation(m, changed), details=("hops",))
    assert list(report.disagreements["kind"]) == ["probe.hops"]
    assert compare(m, as_emulation(m, changed)).agree  # not listed: not compared


def test_a_detail_that_is_none_on_both_sides_agrees_but_a_missing_one_does_not():
    model = api.simulate("reachability")
    nones = [replace(r, detail={**r.detail, "ttl": None}) if isinstance(r, Probe) else r for r in model.records]
    m = Run(model.scenario, "model", model.design, model.seed, model.topology, model.summary, nones)
    assert compare(m, as_emulation(m), details=("ttl",)).agree  # "never arrives" on both sides
    first = next(i for i, r in enumerate(nones) if isinstance(r, Probe))
    dropped = list(nones)
    dropped[first] = replace(dropped[first], detail={k: v for k, v in dropped[first].detail.items() if k != "ttl"})
    report = compare(m, as_emulation(m, dropped), details=("ttl",))
    assert list(report.disagreements["kind"]) == ["probe.ttl"]
