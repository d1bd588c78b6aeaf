"""The twin can fail: one flipped probe or one count off by one on either side makes it disagree.

Per scenario, a recorded emulation run (``traces/``) and the model run on the
same inputs: the unmutated pair agrees (so the mutation is what breaks it),
then one side is mutated -- a probe verdict flipped, an integer metric the
twin compares moved by one, a compared probe detail changed -- and the twin
must disagree on exactly that row. No root needed.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from labtwin import api
from labtwin.records import Probe, Run
from labtwin.scenarios import ScenarioError, get_scenario
from labtwin.scenarios.sg_fanout.calibrate import MEASURED_PROFILE
from labtwin.scenarios.sg_fanout.calibrate_ovn import OVN_MEASURED_PROFILE

TRACES = Path(__file__).resolve().parents[1] / "traces"
#: scenario -> its recorded emulation runs (directories under traces/)
RECORDED = {
    "reachability": ["reachability"],
    "sg-fanout": [
        "sg-fanout",
        "sg-fanout/iptables",
        "sg-fanout/ipset",
        "sg-fanout/ovs",
        "sg-fanout/subtable",
        "sg-fanout/ovn",
    ],
    "multisegment": ["multisegment", "multisegment/ovn"],
    "dvr": ["dvr", "dvr/ovn", "dvr/ovn-ha-gateway"],
}
#: the integer metrics each scenario's twin compares (written out, so a tolerance that goes missing fails here)
#: The model profile for traces: sg-fanout's committed calibration, made on the machine its traces ran on.
EXAMPLE_PROFILE = {"sg-fanout": {"profile": str(MEASURED_PROFILE)}}
#: ... and for a trace of ML2/OVN, its own calibration (the agents' costs do not time OVN)
TRACE_PROFILE = {"sg-fanout/ovn": {"profile": str(OVN_MEASURED_PROFILE)}}
INTEGER_METRICS = {
    "reachability": ["probe_count", "allowed"],
    "sg-fanout": ["updates_total", "refreshes_total", "rules_written", "objects_changed"],
    "multisegment": [
        "l2_leaks",
        "built_longest_interface_name_len",
        "probe_count",
        "arp_leaks",
        "broadcast_leaks",
        "probes_via_gateway",
    ],
    "dvr": [],
}
#: a trace whose design compares other metrics than its scenario's default (sg-fanout's OVN counts)
TRACE_INTEGER_METRICS = {"sg-fanout/ovn": ["nb_rows_written", "sb_rows_written", "lflows_written", "openflows_written"]}
CASES = [(scenario, trace) for scenario, traces in RECORDED.items() for trace in traces]
_PAIRS: dict = {}


def recorded_pair(scenario: str, trace: str) -> tuple[Run, Run]:
    """(model, emulation): the trace, and the model on its topology, design and seed with the twin's model knobs."""
    if trace not in _PAIRS:
        emulated = Run.load(TRACES / trace)
        assert (emulated.backend, emulated.scenario) == ("emulation", scenario)
        topology = emulated.topology or None
        if topology is not None and not Path(topology).is_file():  # recorded on another checkout
            topology = str(TRACES.parent / "topologies" / Path(topology).name)
        example = TRACE_PROFILE.get(trace, EXAMPLE_PROFILE.get(scenario, {}))  # the calibration of the traces' machine
        model = api.simulate_beside(emulated, topology, **example)
        _PAIRS[trace] = (model, emulated)
    return _PAIRS[trace]


def with_probe(run: Run, index: int, **changes) -> Run:
    """A copy of *run* whose *index*-th probe has *changes* (verdict=..., detail=...)."""
    records = list(run.records)
    at = [i for i, r in enumerate(records) if isinstance(r, Probe)][index]
    records[at] = replace(records[at], **changes)
    return replace(run, records=records)


def with_metric(run: Run, metric: str, delta: int) -> Run:
    return replace(run, summary={**run.summary, metric: run.summary[metric] + delta})


def flipped(verdict: str) -> str:
    return "blocked" if verdict == "allowed" else "allowed"


def probe_label(p: Probe) -> str:
    return f"{p.src}->{p.dst} {p.protocol}" + ("" if p.port is None else f":{int(p.port)}")


def probes(run: Run) -> list[Probe]:
    return [r for r in run.records if isinstance(r, Probe)]


@pytest.mark.parametrize("scenario,trace", CASES)
def test_unmutated_recorded_pair_agrees(scenario, trace):
    model, emulated = recorded_pair(scenario, trace)
    report = api.compare_runs(scenario, model, emulated)
    assert report.agree, report.disagreements.to_string()
    assert (report.rows.kind == "probe").sum() == len(probes(emulated)) > 0


@pytest.mark.parametrize("scenario,trace", CASES)
@pytest.mark.parametrize("side", ["model", "emulation"])
@pytest.mark.parametrize("which", ["first", "last", "first-blocked"])
def test_a_flipped_probe_verdict_disagrees_on_that_probe(scenario, trace, side, which):
    model, emulated = recorded_pair(scenario, trace)
    run = model if side == "model" else emulated
    verdicts = [p.verdict for p in probes(run)]
    index = {
        "first": 0,
        "last": len(verdicts) - 1,
        "first-blocked": verdicts.index("blocked") if "blocked" in verdicts else 0,
    }[which]
    target = probes(run)[index]
    mutated = with_probe(run, index, verdict=flipped(target.verdict))
    pair = (mutated, emulated) if side == "model" else (model, mutated)
    report = api.compare_runs(scenario, *pair)
    assert report.agree is False
    bad = report.disagreements
    assert list(bad.kind) == ["probe"] and list(bad.key) == [probe_label(target)]
    assert bad.iloc[0][side] == flipped(target.verdict)


@pytest.mark.parametrize("scenario", RECORDED)
def test_the_listed_integer_metrics_are_what_the_twin_compares(scenario):
    model, emulated = recorded_pair(scenario, RECORDED[scenario][0])
    compared = [t.metric for t in get_scenario(scenario).tolerances]
    integers = [
        m for m in compared if isinstance(emulated.summary.get(m), int) and isinstance(model.summary.get(m), int)
    ]
    assert integers == INTEGER_METRICS[scenario]


@pytest.mark.parametrize("trace", sorted(TRACE_INTEGER_METRICS))
def test_the_listed_integer_metrics_of_a_trace_are_what_the_twin_compares(trace):
    scenario = next(s for s, traces in RECORDED.items() if trace in traces)
    model, emulated = recorded_pair(scenario, trace)
    compared = [t.metric for t in get_scenario(scenario).tolerances]
    integers = [
        m for m in compared if isinstance(emulated.summary.get(m), int) and isinstance(model.summary.get(m), int)
    ]
    assert integers == TRACE_INTEGER_METRICS[trace]


def integer_metrics(scenario: str, trace: str) -> list[str]:
    return TRACE_INTEGER_METRICS.get(trace, INTEGER_METRICS[scenario])


@pytest.mark.parametrize("scenario,trace,metric", [(s, t, m) for s, t in CASES for m in integer_metrics(s, t)])
@pytest.mark.parametrize("side,delta", [("emulation", 1), ("model", -1)])
def test_a_count_off_by_one_disagrees_on_that_metric(scenario, trace, metric, side, delta):
    model, emulated = recorded_pair(scenario, trace)
    pair = (
        (with_metric(model, metric, delta), emulated)
        if side == "model"
        else (model, with_metric(emulated, metric, delta))
    )
    report = api.compare_runs(scenario, *pair)
    assert report.agree is False
    assert list(report.disagreements.key) == [metric] and list(report.disagreements.kind) == ["metric"]


def test_dvr_a_changed_crossing_or_hop_disagrees_on_that_detail():
    """dvr compares no metric (network_node_share is derived from the crossings): its details carry the twin."""
    model, emulated = recorded_pair("dvr", "dvr")
    first = probes(emulated)[0]
    for key, value in (
        ("via_network_node", not first.detail["via_network_node"]),
        ("hops", list(first.detail["hops"]) + ["extra-hop"]),
        ("nat", "snat somewhere-else"),
        ("ttl", (first.detail["ttl"] or 64) - 1),
        ("reply", list(first.detail["reply"])[::-1]),
    ):
        mutated = with_probe(emulated, 0, detail={**first.detail, key: value})
        bad = api.compare_runs("dvr", model, mutated).disagreements
        assert list(bad.kind) == [f"probe.{key}"] and list(bad.key) == [probe_label(first)]
    crossing = next(i for i, p in enumerate(probes(emulated)) if p.detail["wires"])
    wire = probes(emulated)[crossing].detail["wires"][0]
    for key, value in (("src_mac", "fa:16:3e:00:00:00"), ("segmentation_id", 4242)):  # no DVR MAC; another VNI
        wires = [{**wire, key: value}, *probes(emulated)[crossing].detail["wires"][1:]]
        mutated = with_probe(emulated, crossing, detail={**probes(emulated)[crossing].detail, "wires": wires})
        assert list(api.compare_runs("dvr", model, mutated).disagreements.kind) == ["probe.wires"]
    assert "network_node_share" not in {t.metric for t in get_scenario("dvr").tolerances}
    assert model.summary["network_node_share"] == emulated.summary["network_node_share"]  # kept in summaries


def test_sg_fanout_twin_refuses_a_model_whose_joins_overlap():
    """train-2019 sends joins 1 s apart into a 2 s agent loop: the model batches them, the emulation cannot."""
    _, emulated = recorded_pair("sg-fanout", "sg-fanout/iptables")
    spec = get_scenario("sg-fanout")
    overlapping = api.simulate(spec, None, emulated.seed, **{**emulated.design, "profile": "train-2019"})
    assert overlapping.summary["changes_overlapped"] > 0
    with pytest.raises(ScenarioError, match="one change at a time"):
        api.compare_runs(spec, overlapping, emulated)
    apart = api.simulate(spec, None, emulated.seed, **{**emulated.design, **EXAMPLE_PROFILE["sg-fanout"]})
    assert apart.summary["changes_overlapped"] == 0


def with_ready(run: Run, factor: float) -> Run:
    """*run* with its measured time to ready scaled by *factor* (what interference, or a wrong model, does)."""
    return replace(run, summary={**run.summary, "port_ready_s": run.summary["port_ready_s"] * factor})


def twin_of(model: Run, emulations: list[Run], monkeypatch, with_counts=None) -> tuple:
    """api.compose_twin over recorded runs: the model, then each emulation in turn (remeasured ones included)."""
    monkeypatch.setattr(api, "refuse_unless_emulation_possible", lambda: None)
    monkeypatch.setattr(api, "twin_basis", lambda *a, **k: api.TwinTiming())
    queue = list(emulations)
    report, _, used = api.compose_twin("sg-fanout", {}, None, lambda knobs: model, lambda knobs: queue.pop(0))
    return report, len(emulations) - len(queue)


def test_a_timing_miss_is_measured_again_and_a_good_second_measurement_agrees(monkeypatch):
    model, emulated = recorded_pair("sg-fanout", "sg-fanout/ovs")
    report, used = twin_of(model, [with_ready(emulated, 3.0), emulated], monkeypatch)
    assert report.agree and report.timing_attempts == used == 2


@pytest.mark.parametrize("cost", [0.0, 0.5, 2.0])
def test_a_wrong_model_misses_every_measurement_and_disagrees(monkeypatch, cost):
    """The remeasures cannot rescue a model whose every cost is off by the factors the band is built to catch."""
    model, emulated = recorded_pair("sg-fanout", "sg-fanout/ovs")
    wrong = with_ready(model, cost)
    report, used = twin_of(wrong, [emulated, with_ready(emulated, 1.1), with_ready(emulated, 0.9)], monkeypatch)
    assert not report.agree and used == 1 + api.TIMING_REMEASURES == report.timing_attempts
    assert list(report.disagreements.key) == ["port_ready_s"]


def test_a_count_disagreement_is_never_measured_again(monkeypatch):
    model, emulated = recorded_pair("sg-fanout", "sg-fanout/ovs")
    report, used = twin_of(model, [with_metric(emulated, "updates_total", 1), emulated], monkeypatch)
    assert not report.agree and used == report.timing_attempts == 1
