"""The Python entry points the CLI, notebooks and the pytest plugin share.

>>> run = simulate("reachability", seed=1)
>>> run.backend, run.summary["probe_count"] > 0
('model', True)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

from .records import Run
from .scenarios import Scenario, ScenarioError, get_scenario
from .twin import TwinReport, compare


ScenarioLike = Union[str, Scenario]


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


def simulate(scenario: ScenarioLike, topology=None, seed: int = 1, out: Optional[Union[str, Path]] = None, **knobs) -> Run:
    """Run the model of *scenario*; knobs as keyword arguments (strings or values)."""
    spec, design, cloud, path = _prepare(scenario, topology, knobs)
    run = spec.simulate(cloud, design, seed, path)
    if out is not None:
        run.save(out)
    return run


def emulate(scenario: ScenarioLike, topology=None, seed: int = 1, out: Optional[Union[str, Path]] = None, **knobs) -> Run:
    """Run the emulation of *scenario* on this machine (needs root and Open vSwitch)."""
    spec, design, cloud, path = _prepare(scenario, topology, knobs)
    if spec.emulate is None:
        raise ScenarioError(f"scenario {spec.name} has no emulation yet")
    refuse_unless_emulation_possible()
    run = spec.emulate(cloud, design, seed, path, out_dir=Path(out) if out is not None else None)
    if out is not None:
        run.save(out)
    return run


def twin(scenario: ScenarioLike, topology=None, seed: int = 1, out: Optional[Union[str, Path]] = None, **knobs) -> tuple[TwinReport, Run, Run]:
    """Run both backends on the same inputs and compare them."""
    out_dir = Path(out) if out is not None else None
    if _spec(scenario).emulate is not None:
        refuse_unless_emulation_possible()  # before the model runs: say what is missing first
    model = simulate(scenario, topology, seed, out_dir / "model" if out_dir else None, **twin_model_knobs(scenario, knobs))
    refuse_incomparable(scenario, model)  # before a live run that could not be compared
    emulation = emulate(scenario, topology, seed, out_dir / "emulation" if out_dir else None, **knobs)
    report = compare_runs(scenario, model, emulation)
    if out_dir is not None:
        report.rows.to_csv(out_dir / "twin.csv", index=False)
    return report, model, emulation


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


def twin_model_knobs(scenario: ScenarioLike, knobs: dict[str, Any]) -> dict[str, Any]:
    """The knobs the model side of a twin runs with.

    A scenario may say which knobs make the model describe the emulation (e.g.
    a cost profile calibrated on this machine, ``extra["twin_model_knobs"]``);
    knobs the user sets win. Both runs record their design, so this is visible.
    """
    return {**_spec(scenario).extra.get("twin_model_knobs", {}), **knobs}


def compare_runs(scenario: ScenarioLike, model: Run, emulation: Run) -> TwinReport:
    """Compare two runs with the scenario's tolerances and probe details."""
    spec = _spec(scenario)
    refuse_incomparable(spec, model)
    return compare(model, emulation, spec.tolerances, spec.probe_details)


def refuse_incomparable(scenario: ScenarioLike, model: Run) -> None:
    """Raise :class:`ScenarioError` when the scenario says *model* cannot be compared with its emulation.

    ``extra["twin_refuses"](model) -> reason or None``: a case one backend cannot do (e.g. sg-fanout's
    overlapping joins) is refused, not reported as a disagreement between different mechanics.
    """
    spec = _spec(scenario)
    reason = spec.extra.get("twin_refuses", lambda run: None)(model)
    if reason:
        raise ScenarioError(f"twin {spec.name}: {reason}")
