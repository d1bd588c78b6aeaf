"""The Python entry points the CLI, notebooks and the pytest plugin share.

>>> run = simulate("reachability", seed=1)
>>> run.backend, run.summary["probe_count"] > 0
('model', True)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from .calibration import Calibration, CalibrationError, pace_scale
from .records import Run
from .scenarios import SCENARIOS, Scenario, ScenarioError, get_scenario, topologies_dir
from .scenarios.base import TwinTiming

if TYPE_CHECKING:  # the comparison (pandas) is imported by the functions that compare
    from .twin import TwinReport

ScenarioLike = Union[str, Scenario]


def scenarios() -> list[Scenario]:
    """Every registered scenario, in the registry's order."""
    return list(SCENARIOS.values())


def default_topology(scenario: ScenarioLike) -> Optional[Path]:
    """The repository topology a scenario runs on when none is given (None: it generates its cloud)."""
    spec = _spec(scenario)
    return topologies_dir() / spec.default_topology if spec.default_topology else None


def _spec(scenario: ScenarioLike) -> Scenario:
    return scenario if isinstance(scenario, Scenario) else get_scenario(scenario)


def _prepare(scenario: ScenarioLike, topology: Optional[Union[str, Path]], knobs: dict[str, Any]):
    spec = _spec(scenario)
    design = spec.design(knobs)
    if topology is None and not spec.needs_topology:
        return spec, design, None, ""
    cloud, path = spec.cloud(str(topology) if topology is not None else None)
    spec.refuse_unfit(cloud, design, path)  # before either backend does anything
    return spec, design, cloud, path


def simulate(
    scenario: ScenarioLike, topology=None, seed: int = 1, out: Optional[Union[str, Path]] = None, **knobs
) -> Run:
    """Run the model of *scenario*; knobs as keyword arguments (strings or values)."""
    spec, design, cloud, path = _prepare(scenario, topology, knobs)
    run = spec.simulate(cloud, design, seed, path)
    if out is not None:
        run.save(out)
    return run


def simulate_beside(observed: Run, topology=None, **knobs) -> Run:
    """The model of a recorded emulation run: its scenario, topology (or *topology*), design and seed, with what
    its real system drew at random (``Scenario.drawn``), as a twin runs it; *knobs* override the design."""
    spec = _spec(observed.scenario)
    given = {**observed.design, **knobs}
    given.update(spec.drawn(observed, given) if spec.drawn is not None else {})
    return simulate(spec, topology or observed.topology or None, observed.seed, **given)


def emulate(
    scenario: ScenarioLike, topology=None, seed: int = 1, out: Optional[Union[str, Path]] = None, **knobs
) -> Run:
    """Run the emulation of *scenario* on this machine (needs root and Open vSwitch)."""
    spec, design, cloud, path = _prepare(scenario, topology, knobs)
    if spec.emulate is None:
        raise ScenarioError(f"scenario {spec.name} has no emulation yet")
    refuse_unless_emulation_possible()
    run = spec.emulate(cloud, design, seed, path, out_dir=Path(out) if out is not None else None)
    run.versions.update(machine_versions())  # what it ran on, and which calibration may time it
    if out is not None:
        run.save(out)
    return run


def machine_versions() -> dict[str, str]:
    """OVS version, iptables backend and this machine's key (the fingerprint a calibration must match)."""
    from .emulation.machine import fingerprint, machine_key

    facts = fingerprint()
    return {"ovs": facts["ovs"], "iptables": facts["iptables_backend"], "machine": machine_key(facts)}


def twin(
    scenario: ScenarioLike,
    topology=None,
    seed: int = 1,
    out: Optional[Union[str, Path]] = None,
    auto_calibrate: bool = True,
    progress=None,
    **knobs,
) -> tuple[TwinReport, Run, Run]:
    """Run both backends on the same inputs and compare them.

    Wall-clock metrics are compared only against a calibration of this machine: where the scenario has
    timing and none exists, one is made first (*progress* sees it) unless *auto_calibrate* is False, in
    which case those rows say "not compared" and counts and verdicts are still compared.
    """
    out_dir = Path(out) if out is not None else None
    report, model, emulation = compose_twin(
        scenario,
        knobs,
        topology,
        lambda with_knobs: simulate(scenario, topology, seed, out_dir / "model" if out_dir else None, **with_knobs),
        lambda with_knobs: emulate(scenario, topology, seed, out_dir / "emulation" if out_dir else None, **with_knobs),
        auto_calibrate,
        progress,
    )
    if out_dir is not None:
        report.rows.to_csv(out_dir / "twin.csv", index=False)
    return report, model, emulation


#: A disagreement on wall-clock metrics alone is measured again (a new emulation), up to this many more
#: times, before it stands. Interference from other work on the machine makes one measurement miss now and
#: then (make bench counts how often); a model that is wrong by the factors the tolerance is built to catch
#: (every cost doubled, halved or zero) misses every measurement, so it still disagrees. Counts, verdicts
#: and paths are never measured again: one disagreement there stands.
TIMING_REMEASURES = 2


def compose_twin(
    scenario: ScenarioLike,
    knobs: dict[str, Any],
    topology: Optional[Union[str, Path]],
    run_model: Callable[[dict[str, Any]], Run],
    run_emulation: Callable[[dict[str, Any]], Run],
    auto_calibrate: bool = True,
    progress=None,
    remeasure: Optional[Callable[[dict[str, Any]], Run]] = None,
) -> tuple[TwinReport, Run, Run]:
    """The twin, composed once for :func:`twin`, the CLI, the demo and the pytest plugin (which runs each side
    through its session cache): refuse bad input first (unknown or out-of-range knobs, a *topology* that
    does not load or lacks what the scenario needs: exit 2 from the CLI, on any machine); then say what
    emulation lacks; time the model as this machine's calibration
    says (making one when *auto_calibrate*); run the model (*run_model* gets the knobs); refuse a model run
    that cannot be compared; run the emulation; run the model again with what the emulation's real system drew
    at random (``Scenario.drawn``), if anything; compare. A disagreement on timing alone is measured again
    (*remeasure*, default *run_emulation*), up to :data:`TIMING_REMEASURES` times; the report says how many
    measurements it took (``timing_attempts``)."""
    spec, _, _, _ = _prepare(scenario, topology, knobs)  # the input's faults before the machine's
    if spec.emulate is not None:
        refuse_unless_emulation_possible()  # before the model runs: say what is missing first
    basis = twin_basis(scenario, knobs, auto_calibrate, progress)
    model = run_model({**basis.model_knobs, **knobs})
    refuse_incomparable(scenario, model)  # before a live run that could not be compared
    emulation = run_emulation(knobs)
    drawn = spec.drawn(emulation, knobs) if spec.drawn is not None else {}
    if drawn:  # the model again, given what the real system drew at random (Scenario.drawn)
        model = run_model({**basis.model_knobs, **knobs, **drawn})
    report = compare_runs(scenario, model, emulation, not_compared=basis.not_compared)
    attempts = 1
    while attempts <= TIMING_REMEASURES and only_timing_disagrees(spec, report):
        emulation = (remeasure or run_emulation)(knobs)
        report = compare_runs(scenario, model, emulation, not_compared=basis.not_compared)
        attempts += 1
    report.timing_attempts = attempts
    report.drawn = drawn
    return report, model, emulation


def only_timing_disagrees(scenario: ScenarioLike, report: TwinReport) -> bool:
    """True when the report disagrees, and only on wall-clock metrics (``Tolerance.timing``)."""
    timing = {t.metric for t in _spec(scenario).tolerances if t.timing}
    wrong = report.disagreements
    return bool(len(wrong)) and all(
        kind == "metric" and key in timing for kind, key in zip(wrong["kind"], wrong["key"])
    )


class EmulationUnavailable(RuntimeError):
    """This machine lacks something emulation needs; nothing was created."""


def emulation_possible() -> tuple[bool, list[str]]:
    """(possible, what is missing): ``labtwin doctor``'s answer; looks only, starts nothing."""
    from .emulation.doctor import emulation_possible as doctor

    return doctor()


def refuse_unless_emulation_possible() -> None:
    """Raise :class:`EmulationUnavailable` naming everything missing, before an emulation creates anything."""
    ok, reasons = emulation_possible()
    if not ok:
        raise EmulationUnavailable("cannot emulate on this machine: " + "; ".join(reasons) + " (see `labtwin doctor`)")


def twin_basis(
    scenario: ScenarioLike, knobs: dict[str, Any], auto_calibrate: bool = False, progress=None
) -> TwinTiming:
    """How a twin's model side is timed on this machine: the knobs that make it describe this machine
    (e.g. sg-fanout's calibration, made first when *auto_calibrate*), or why timing is not compared."""
    spec = _spec(scenario)
    if spec.twin_timing is None or spec.emulate is None:
        return TwinTiming()
    return spec.twin_timing(knobs, auto_calibrate, progress)


def compare_runs(scenario: ScenarioLike, model: Run, emulation: Run, not_compared: str = "") -> TwinReport:
    """Compare two runs with the scenario's tolerances and probe details; timing as :func:`timing_basis` says,
    unless *not_compared* gives a reason not to (the twin's basis: e.g. no calibration was made for it)."""
    spec = _spec(scenario)
    refuse_incomparable(spec, model)
    reason, pace = timing_basis(model, emulation)
    from .twin import compare

    return compare(model, emulation, spec.tolerances, spec.probe_details, not_compared or reason, pace)


def timing_basis(model: Run, emulation: Run) -> tuple[str, float]:
    """(why wall-clock metrics of these runs are not compared or "", this machine's pace now / at calibration).

    They are compared only when the model ran with a calibration (labtwin.calibration) of the very
    machine the emulation ran on (its ``versions["machine"]``): a profile by name, a calibration of
    another machine, or an emulation with no recorded machine is not a basis for timing. The pace
    (how long a fixed probe took during the emulation, against during the calibration) scales
    the model's times in the comparison, so a machine busy with other work is not a wrong model.
    """
    profile = str(model.design.get("profile", ""))
    if not profile or not Path(profile).is_file():
        return f"the model ran with profile {profile or '(none)'}, not a calibration of this machine", 1.0
    try:
        calibrated = Calibration.from_file(Path(profile))
    except CalibrationError:
        return f"no calibration for this machine (the model ran with {Path(profile).name}; `labtwin calibrate`)", 1.0
    from .emulation.machine import machine_key

    if machine_key(calibrated.fingerprint) != emulation.versions.get("machine"):
        return "no calibration for this machine (the model's calibration is of another machine)", 1.0
    key = str(emulation.summary.get("pace_key"))
    then, exponent = calibrated.method.get("pace_s", {}).get(key), calibrated.method.get("pace_exponent", {}).get(key)
    return "", pace_scale(emulation.summary.get("pace_s"), then, exponent)


def refuse_incomparable(scenario: ScenarioLike, model: Run) -> None:
    """Raise :class:`ScenarioError` when the scenario says *model* cannot be compared with its emulation.

    (The scenario's ``twin_refuses``: a case one backend cannot do, e.g. sg-fanout's overlapping joins, is
    refused, not reported as a disagreement between different mechanics.)
    """
    spec = _spec(scenario)
    reason = spec.twin_refuses(model) if spec.twin_refuses is not None else None
    if reason:
        raise ScenarioError(f"twin {spec.name}: {reason}")
