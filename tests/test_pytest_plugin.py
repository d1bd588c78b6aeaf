"""The pytest plugin, exercised as a user would: design checks in a temporary project."""

import shutil
from pathlib import Path

import pytest

import labtwin.api
import labtwin.pytest_plugin
from labtwin.api import simulate
from labtwin.testing import RunMismatch, assert_updates_at_most, load_trace

pytest_plugins = ["pytester"]

TOPOLOGIES = Path(__file__).resolve().parents[1] / "topologies"
# Other installed plugins are re-imported by every in-process run; they play no part here.
QUIET = ("-p", "no:hypothesispytest", "-p", "no:anyio")

CHECKS = """
from labtwin.testing import assert_blocked, assert_reachable

def test_default_group_members_reach_each_other(simulate):
    assert_reachable(simulate("reachability"), "vm-a", "vm-b", "tcp:22")

def test_ssh_only_port_can_send(simulate):
    assert_reachable(simulate("reachability"), "vm-c", "vm-a", "tcp:22")
"""


@pytest.fixture
def model_runs(monkeypatch):
    """Count the model runs the plugin really starts (labtwin.api.simulate calls)."""
    calls = []

    def counting(scenario, *args, **kwargs):
        calls.append((scenario, args, kwargs))
        return simulate(scenario, *args, **kwargs)

    monkeypatch.setattr(labtwin.api, "simulate", counting)
    return calls


def test_passing_and_failing_design_checks_explain_themselves(pytester):
    pytester.makepyfile(test_design=CHECKS)
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: vm-c cannot reach vm-a on tcp:22: the probe was blocked",
            "*reason: ingress of vm-a allows no tcp:22 from vm-c",
            "*run: reachability model run, seed 1, topology *minimal.yaml; design: probes=icmp,tcp:22 control=labtwin",
        ]
    )


def test_two_checks_on_one_design_run_the_model_once(pytester, model_runs):
    pytester.makepyfile(test_design=CHECKS.replace("vm-c", "vm-d"))
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(passed=2)
    assert [call[0] for call in model_runs] == ["reachability"]
    result.stdout.fnmatch_lines(["labtwin: ran 1 model; 1 cache hits"])


def test_another_design_or_seed_is_another_run(pytester, model_runs):
    pytester.makepyfile(
        test_design="""
def test_knobs(simulate):
    a = simulate("sg-fanout", members=30)
    assert simulate("sg-fanout", members="30") is a      # same design, parsed
    assert simulate("sg-fanout", members=31) is not a
    assert simulate("sg-fanout", members=30, seed=2) is not a
"""
    )
    pytester.runpytest(*QUIET).assert_outcomes(passed=1)
    assert len(model_runs) == 3


def test_seed_option_sets_the_default_seed(pytester):
    pytester.makepyfile(
        test_design="""
def test_seed(simulate):
    assert simulate("reachability").seed == 7
    assert simulate("reachability", seed=3).seed == 3
"""
    )
    pytester.runpytest(*QUIET, "--labtwin-seed", "7").assert_outcomes(passed=1)
    pytester.runpytest(*QUIET).assert_outcomes(failed=1)


def test_topologies_option_finds_default_and_bare_topologies(pytester, model_runs):
    mine = pytester.mkdir("mine")
    shutil.copy(TOPOLOGIES / "minimal.yaml", mine / "minimal.yaml")
    shutil.copy(TOPOLOGIES / "minimal.yaml", mine / "copy.yaml")
    pytester.makepyfile(
        test_design="""
def test_topology(simulate):
    assert simulate("reachability").topology.endswith("mine/minimal.yaml")
    assert simulate("reachability", topology="copy.yaml").topology.endswith("mine/copy.yaml")
"""
    )
    pytester.runpytest(*QUIET, "--labtwin-topologies", "mine").assert_outcomes(passed=1)
    assert len(model_runs) == 2


def test_an_edited_topology_is_run_again(pytester, model_runs):
    topology = pytester.path / "cloud.yaml"
    topology.write_text((TOPOLOGIES / "minimal.yaml").read_text())
    pytester.makepyfile(
        test_design=f"""
from pathlib import Path

def test_edit(simulate):
    first = simulate("reachability", topology="cloud.yaml")
    assert simulate("reachability", topology="cloud.yaml") is first
    Path({str(topology)!r}).write_text(Path({str(topology)!r}).read_text() + "\\n# edited\\n")
    assert simulate("reachability", topology="cloud.yaml") is not first
"""
    )
    pytester.runpytest(*QUIET).assert_outcomes(passed=1)
    assert len(model_runs) == 2


def test_emulation_is_skipped_with_the_reason_where_impossible(pytester, monkeypatch):
    monkeypatch.setattr(labtwin.pytest_plugin, "emulation_possible", lambda: (False, ["not root", "no ovs-vswitchd"]))
    pytester.makepyfile(
        test_design="""
import pytest

def test_emulate_fixture(emulate):
    emulate("reachability")

def test_twin_fixture(twin):
    twin("reachability")

@pytest.mark.emulation
def test_marked():
    pass

@pytest.mark.slow
def test_slow_runs(simulate):
    assert simulate("reachability").backend == "model"
"""
    )
    result = pytester.runpytest(*QUIET, "-rs", "--strict-markers")
    result.assert_outcomes(passed=1, skipped=3)
    result.stdout.fnmatch_lines(["SKIPPED*emulation not possible here: not root; no ovs-vswitchd"])


def test_emulation_errors_fail_where_emulation_is_possible(pytester, monkeypatch):
    monkeypatch.setattr(labtwin.pytest_plugin, "emulation_possible", lambda: (True, []))
    pytester.makepyfile(
        test_design="""
def test_emulate_fixture(emulate):
    emulate("dvr")   # no emulation for this scenario yet, or a real failure: either way not a skip
"""
    )
    monkeypatch.setattr(labtwin.api, "emulate", _broken_emulation)
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*RuntimeError: ovs-vswitchd died"])


def _broken_emulation(*args, **kwargs):
    raise RuntimeError("ovs-vswitchd died")


def test_markers_are_registered_for_any_project(pytester):
    result = pytester.runpytest(*QUIET, "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.emulation:*root*", "@pytest.mark.slow:*"])


def test_recorded_trace_loads_without_running_anything(pytester, model_runs, tmp_path):
    simulate("reachability", seed=4, out=pytester.path / "traces" / "reachability" / "run-1")
    model_runs.clear()
    pytester.makepyfile(
        test_design="""
from labtwin.testing import assert_blocked

def test_trace(trace):
    run = trace("traces/reachability")
    assert run.seed == 4
    assert_blocked(run, "vm-c", "vm-b", "icmp")
"""
    )
    pytester.runpytest(*QUIET).assert_outcomes(passed=1)
    assert model_runs == []


def test_load_trace_needs_one_run(tmp_path):
    simulate("reachability", out=tmp_path / "a")
    simulate("reachability", out=tmp_path / "b")
    assert load_trace(tmp_path / "a").scenario == "reachability"
    with pytest.raises(FileNotFoundError, match="no single recorded run"):
        load_trace(tmp_path)


def test_summary_helpers_refuse_a_run_of_another_scenario():
    with pytest.raises(RunMismatch, match="reads a sg-fanout run's summary; got a reachability run"):
        assert_updates_at_most(simulate("reachability"), 2)


def test_the_readme_example_runs_as_shown(pytester, monkeypatch):
    readme = (TOPOLOGIES.parent / "README.md").read_text().split("## Design checks in pytest", 1)[1]
    example = readme.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.setattr(labtwin.pytest_plugin, "emulation_possible", lambda: (False, ["not root"]))
    pytester.makepyfile(test_readme=example)
    pytester.runpytest(*QUIET).assert_outcomes(passed=1, skipped=1)


def test_skip_reason_comes_from_labtwin_doctor(pytester, monkeypatch):
    import labtwin.emulation.doctor

    monkeypatch.setattr(labtwin.emulation.doctor.os, "geteuid", lambda: 1000)
    pytester.makepyfile(
        test_design="""
def test_twin(twin):
    twin("reachability")
"""
    )
    result = pytester.runpytest(*QUIET, "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*emulation not possible here: user: not root: run as root*"])
