"""The scenario contract: one body, run over ``backend=model`` and ``backend=emulation`` for every scenario.

Each scenario's test folder lists its cases and what each must show (``tests/scenarios/<name>/contract.py``:
``CASES``, ``check`` and, where the cases study a repository topology rather than the scenario's
default, ``TOPOLOGY``). For every case, both backends must give a well-formed run of that scenario: the
summary holds every metric the twin compares, as a number; every probe has a verdict; the run saves and
loads back the same. The model must be deterministic. The emulation must leave the machine as it found it,
agree with the model (the twin, as ``labtwin twin`` composes it), and show what the case says.
"""

from __future__ import annotations

import importlib
import math
import numbers

import pytest

from labtwin import api
from labtwin.records import Run

#: scenario -> its test folder's module name
FOLDERS = {"reachability": "reachability", "dvr": "dvr", "multisegment": "multisegment", "sg-fanout": "sg_fanout"}


def contract(scenario: str):
    return importlib.import_module(f"scenarios.{FOLDERS[scenario]}.contract")


PARAMS = [
    pytest.param(
        scenario,
        case,
        backend,
        id=f"{scenario}-{case}-{backend}",
        marks=[pytest.mark.emulation] if backend == "emulation" else [],
    )
    for scenario in FOLDERS
    for case in contract(scenario).CASES
    for backend in ("model", "emulation")
]


def test_every_scenario_has_a_contract():
    assert {s.name for s in api.scenarios()} == set(FOLDERS)


@pytest.fixture
def no_calibration(tmp_path, monkeypatch):
    """An empty calibration cache: timing is not compared here (test_calibrate_live and make bench do that)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.mark.parametrize("scenario, case, backend", PARAMS)
def test_scenario_contract(scenario, case, backend, request, tmp_path, no_calibration):
    knobs = contract(scenario).CASES[case]
    named = getattr(contract(scenario), "TOPOLOGY", None)
    topology = api.topologies_dir() / named if named else None
    if backend == "model":
        run = api.simulate(scenario, topology, seed=1, **knobs)
        assert api.simulate(scenario, topology, seed=1, **knobs).summary == run.summary, (
            "the model is not deterministic"
        )
    else:
        request.getfixturevalue("live")
        ledger_dir, snapshot = request.getfixturevalue("ledger_dir"), request.getfixturevalue("snapshot")
        before = snapshot()
        report, model, run = api.twin(scenario, topology, seed=1, out=tmp_path, auto_calibrate=False, **knobs)
        assert snapshot() == before, "the emulation left the machine changed"
        assert not list(ledger_dir.glob("*.jsonl")), "the emulation left a ledger behind"
    assert_well_formed(run, scenario, backend, tmp_path / "saved")
    if backend == "emulation":
        assert report.agree, report.disagreements.to_dict("records")
        contract(scenario).check(case, report, model, run, tmp_path)


def assert_well_formed(run: Run, scenario: str, backend: str, where) -> None:
    assert (run.scenario, run.backend) == (api.get_scenario(scenario).name, backend)
    for tolerance in api.get_scenario(scenario).tolerances:
        if tolerance.metric not in run.summary:  # another design's metric (the twin fails a one-sided one)
            continue
        value = run.summary.get(tolerance.metric)
        assert isinstance(value, numbers.Real) and not math.isnan(value), f"summary {tolerance.metric}: {value!r}"
    if len(run.probes):
        assert set(run.probes.verdict) <= {"allowed", "blocked"}
    run.save(where)
    again = Run.load(where)
    assert (again.summary, len(again.records)) == (run.summary, len(run.records))
