"""``labtwin simulate``, ``emulate``, ``twin``, ``sweep``, ``calibrate``: running scenarios."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from . import friendly_errors, main, stderr_console, to_json


def run_options(func):
    """The flags simulate, emulate and twin share."""
    options = [
        click.argument("scenario"),
        click.option("--topology", type=click.Path(path_type=Path), help="topology file (default: the scenario's own)"),
        click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="set a design knob (repeatable)"),
        click.option("--seed", type=int, default=1, show_default=True),
        click.option("--out", type=click.Path(path_type=Path), help="directory to save the run in"),
        click.option("--json", "as_json", is_flag=True, help="print the run summary as one JSON object"),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def parse_sets(sets, option: str = "--set") -> dict[str, str]:
    from ..scenarios import ScenarioError

    knobs = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ScenarioError(f"{option} takes KEY=VALUE, got {item!r}")
        knobs[key.strip()] = value.strip()
    return knobs


def _emit(header: dict, as_json: bool):
    if as_json:
        click.echo(to_json(header))
        return
    click.echo(f"{header['scenario']} ({header['backend']}, seed {header['seed']})")
    for key, value in header["summary"].items():
        click.echo(f"  {key}: {value if not isinstance(value, (dict, list)) else to_json(value)}")


def _single_run(backend: str, doing: str, doc: str):
    """A command that runs one backend of a scenario and prints its summary."""

    @run_options
    @friendly_errors
    def command(scenario, topology, sets, seed, out, as_json):
        from .. import api

        # a spinner where someone watches; a pipe or a file gets only the result (and skips importing rich)
        spinner = stderr_console().status(f"{doing} {scenario}") if sys.stderr.isatty() else contextlib.nullcontext()
        with spinner:
            run = getattr(api, backend)(scenario, topology, seed, out, **parse_sets(sets))
        _emit(run.header(), as_json)

    command.__doc__ = doc
    return main.command(name=backend)(command)


simulate = _single_run("simulate", "simulating", "Run the model of SCENARIO.")
emulate = _single_run("emulate", "emulating", "Run the emulation of SCENARIO on this machine (root, Open vSwitch).")


@main.command()
@run_options
@click.option(
    "--no-calibrate",
    is_flag=True,
    help="never calibrate this machine first: without a calibration, timing is not compared",
)
@friendly_errors
def twin(scenario, topology, sets, seed, out, as_json, no_calibrate):
    """Run model and emulation of SCENARIO and compare them; exit 1 on disagreement.

    Timing is compared only against a calibration of this machine; the first twin that needs one makes
    it (about a minute, with a progress bar; saved in ~/.cache/labtwin) unless --no-calibrate.
    """
    from .. import api

    progress = CalibrationProgress(scenario)
    try:
        report, model, emulation = api.twin(
            scenario, topology, seed, out, auto_calibrate=not no_calibrate, progress=progress, **parse_sets(sets)
        )
    finally:
        progress.stop()
    if as_json:
        click.echo(to_json({**report.summary(), "model": model.summary, "emulation": emulation.summary}))
    else:
        click.echo(report.rows.to_string(index=False))
        skipped = f", {len(report.not_compared)} not compared" if len(report.not_compared) else ""
        if report.timing_attempts > 1:
            skipped += f"; timing measured {report.timing_attempts} times, the earlier ones missed"
        if report.drawn:
            given = ", ".join(f"{k}={v}" for k, v in report.drawn.items())
            skipped += f"; the model took {given} from the emulation (drawn at random there)"
        compared = len(report.rows) - len(report.not_compared)
        click.echo(f"twin {scenario}: {'agree' if report.agree else 'DISAGREE'} ({compared} comparisons{skipped})")
    sys.exit(0 if report.agree else 1)


class CalibrationProgress:
    """Called with (runs done, runs in all) while a twin calibrates this machine: says so once, then a bar.

    Nothing is shown (not even an empty line) when no calibration runs.
    """

    def __init__(self, scenario: str) -> None:
        self.scenario = scenario
        self.bar = None
        self.task = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            from rich.progress import Progress

            stderr_console().print(
                f"twin {self.scenario}: no calibration of this machine yet; calibrating it once ({total} "
                f"emulation runs, kept in ~/.cache/labtwin; `labtwin calibrate {self.scenario}` redoes it)"
            )
            self.bar = Progress(console=stderr_console(), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("calibrating", total=total)
        self.bar.update(self.task, completed=done)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


@main.command()
@click.argument("scenario")
@click.option("--topology", type=click.Path(path_type=Path))
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="fixed knob (repeatable)")
@click.option(
    "--vary", multiple=True, metavar="KEY=V1,V2,...", help="knob values to sweep (repeatable: the product is run)"
)
@click.option("--repeats", type=int, default=1, show_default=True, help="runs per grid point, seeds SEED, SEED+1, ...")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Parquet file of every run (one row each); re-running skips the grid points already in it",
)
@click.option(
    "--scheduler",
    default="local",
    show_default=True,
    metavar="local|serial|tcp://HOST:8786",
    help="an embedded Dask LocalCluster, this process alone, or a running Dask cluster's scheduler",
)
@click.option("--workers", type=int, help="LocalCluster worker processes (default: one per core)")
@click.option("--show", metavar="COL,COL", help="summary columns to print (default: all)")
@friendly_errors
def sweep(scenario, topology, sets, vary, repeats, seed, out, scheduler, workers, show):
    """Run SCENARIO's model over the product of knob values, on Dask; print the mean of each result per point."""
    from .. import sweep as sweeps
    from ..scenarios import ScenarioError

    with _SweepBar(scenario) as bar:
        result = sweeps.run(
            scenario,
            parse_sets(vary, option="--vary"),
            parse_sets(sets),
            repeats=repeats,
            seed=seed,
            topology=topology,
            out=out,
            scheduler=scheduler,
            workers=workers,
            progress=bar,
        )
    summary = result.summary
    if show:
        wanted = [c.strip() for c in show.split(",")]
        unknown = [c for c in wanted if c not in summary.columns]
        if unknown:
            raise ScenarioError(f"--show: no column {', '.join(unknown)} (columns: {', '.join(summary.columns)})")
        summary = summary[[*result.grid.axes, "runs", *[c for c in wanted if c not in result.grid.axes]]]
    click.echo(summary.to_string(index=False))
    where = f" -> {result.out}" if result.out else ""
    stderr_console().print(f"sweep {scenario}: {result.ran} runs, {result.reused} already in the file{where}")


class _SweepBar:
    """A progress bar on stderr for a sweep's runs (shown once the first batch is done)."""

    def __init__(self, scenario: str) -> None:
        from rich.progress import Progress

        self.progress = Progress(console=stderr_console(), transient=True)
        self.task = self.progress.add_task(f"sweep {scenario}", total=None)

    def __enter__(self) -> _SweepBar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, done: int, total: int) -> None:
        self.progress.update(self.task, completed=done, total=total)


@main.command()
@click.argument("scenario")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="calibration JSON to write (default: this machine's calibration in ~/.cache/labtwin, which twins use)",
)
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE")
@click.option("--seed", type=int, default=1, show_default=True)
@friendly_errors
def calibrate(scenario, out, sets, seed):
    """Fit SCENARIO's costs on this machine from emulation runs at several sizes (root, Open vSwitch)."""
    from rich.progress import Progress

    from .. import api
    from ..scenarios import SCENARIOS, ScenarioError, get_scenario

    spec = get_scenario(scenario)
    fit = spec.calibrate
    if fit is None:
        raise ScenarioError(
            f"scenario {scenario} has no calibration (scenarios with one: "
            f"{', '.join(s.name for s in SCENARIOS.values() if s.calibrate) or 'none yet'})"
        )
    api.refuse_unless_emulation_possible()
    with Progress(console=stderr_console(), transient=True) as bar:
        task = bar.add_task(f"calibrating {scenario}", total=None)
        result = fit(
            out=out,
            seed=seed,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            **parse_sets(sets),
        )
    click.echo(result if isinstance(result, str) else to_json(result, indent=2))
