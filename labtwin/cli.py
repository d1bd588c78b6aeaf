"""The ``labtwin`` command line.

Exit codes: 0 success; 1 a check ran and failed (twin disagreement, doctor
says no); 2 bad input (a topology problem, an unknown scenario or knob, a
usage error). Problems with a topology print as ``PATH:LINE: field: message``.
Progress goes to stderr, so ``--json`` output on stdout stays machine-readable.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from pathlib import Path

import click

# Everything else is imported by the command that uses it: ``labtwin --help`` starts in a fraction of a second
# (issue 16; tests/test_cli_startup.py, make bench).


@functools.cache
def stderr_console():
    """rich's console on stderr (progress and status lines), made when first used."""
    from rich.console import Console

    return Console(stderr=True)


def to_json(value, **kwargs) -> str:
    from .records import to_json as records_to_json

    return records_to_json(value, **kwargs)


def _fail(message: str, code: int = 2):
    click.echo(message, err=True)
    sys.exit(code)


def friendly_errors(func):
    """Turn expected errors into messages and exit codes, never tracebacks."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except KeyboardInterrupt:
            _fail("labtwin: interrupted", 130)
        except Exception as exc:
            expected = _expected(exc)
            if expected is None:
                raise
            _fail(*expected)

    return wrapper


def _expected(exc: Exception):
    """(message, exit code) for an error the user can act on, or None (a bug: its traceback is shown)."""
    from .api import EmulationUnavailable
    from .description import CloudError
    from .emulation.ovs_lock import OvsLockTimeout
    from .emulation.probes import ProbeAgentSilent
    from .emulation.programs import MissingProgram
    from .scenarios import ScenarioError

    if isinstance(exc, CloudError):
        return "\n".join(str(p) for p in exc.problems), 2
    from .importer.dump import DumpError

    if isinstance(exc, DumpError):
        return "\n".join(exc.problems) + "\nlabtwin import: nothing written", 2
    if isinstance(exc, ScenarioError):
        return f"labtwin: {exc}", 2
    if isinstance(exc, (EmulationUnavailable, MissingProgram, OvsLockTimeout, ProbeAgentSilent)):
        return f"labtwin: {exc}", 1
    if isinstance(exc, PermissionError):
        return f"labtwin: {exc} (emulation needs root: run as root, see `labtwin doctor`)", 1
    return None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="labtwin")
def main():
    """labtwin: a digital-twin test lab for OpenStack Neutron designs."""


# --- description ---------------------------------------------------------------


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--neutron",
    is_flag=True,
    help="also load each valid file into Neutron's own server (in-process, sqlite) and compare every "
    "answer: addresses, deferred allocations, refusals; exit 1 where Neutron answers differently",
)
def validate(paths, neutron):
    """Check topology files: one line per valid file; problems as PATH:LINE: field: message.

    Exit 2 when a file is invalid; with --neutron, exit 1 when Neutron answers a valid file differently.
    """
    from .description import CloudError, load_cloud
    from .description.notes import notes

    invalid = differ = False
    for path in paths:
        try:
            cloud = load_cloud(path)
            click.echo(
                f"{path}: ok ({len(cloud.hosts)} hosts, {len(cloud.networks)} networks, {len(cloud.ports)} ports)"
            )
            for note in notes(cloud):
                click.echo(f"{path}: note: {note}")
        except CloudError as exc:
            invalid = True
            for problem in exc.problems:
                click.echo(str(problem), err=True)
    if neutron:  # labtwin's refusals of allocations (409s) are answers too: Neutron is asked about them
        differ = not _neutron_agrees(paths)
    sys.exit(2 if invalid else 1 if differ else 0)


def _neutron_agrees(paths: tuple[Path, ...]) -> bool:
    """Ask Neutron's own server about each of *paths* (servers forked from one that imported Neutron once, one
    per CPU at a time); print each verdict and each difference, one per line, in the order given."""
    from .description import CloudError
    from .description.loader import load_declared
    from .oracle import OracleFailed, ask_neutron_many

    askable = []
    for path in paths:
        try:
            load_declared(path)
            askable.append(path)
        except CloudError:
            click.echo(f"labtwin: {path}: Neutron not asked: the file's shape is wrong (above)", err=True)
    try:
        reports = ask_neutron_many(askable)
    except OracleFailed as exc:
        click.echo(f"labtwin: Neutron could not be asked: {exc}", err=True)
        return False
    for path, report in zip(askable, reports):
        verdict = "agrees" if report.agree else f"answers {len(report.differences)} object(s) differently"
        took = f"{report.seconds:.1f} s" if report.seconds else "asked before"
        click.echo(f"{path}: Neutron {report.neutron_version} {verdict} ({report.objects} answers, {took})")
        for difference in report.differences:
            click.echo(f"{path}: {difference}")
    return len(askable) == len(paths) and all(report.agree for report in reports)


@main.command("import")
@click.option(
    "--from",
    "source",
    required=True,
    type=click.Path(path_type=Path),
    help="directory of JSON files as Neutron's API answers (GET /v2.0/networks, /ports, ...)",
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="topology file to write")
@click.option("--name", help="the cloud's name (default: the directory's)")
@click.option(
    "--anonymize",
    is_flag=True,
    help="replace names, ids, descriptions, addresses and MACs consistently (subnets keep sizes and relations)",
)
@friendly_errors
def import_(source, out, name, anonymize):
    """Import a deployment from Neutron API dumps: a topology, and import-report.md beside it."""
    from .importer import import_cloud, write

    imported = import_cloud(source, name, anonymize=anonymize)
    topology, report = write(imported, out)
    cloud = imported.cloud
    click.echo(
        f"wrote {topology}: {len(cloud.hosts)} hosts, {len(cloud.networks)} networks, {len(cloud.subnets)} subnets, "
        f"{len(cloud.routers)} routers, {len(cloud.security_groups)} security groups, {len(cloud.ports)} ports; "
        f"{len(imported.report.dropped)} things not expressible: {report}"
    )


@main.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "png", "svg"]), default="text", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), help="file for png/svg output")
@friendly_errors
def show(path, fmt, out):
    """Summarise a topology (text), or draw it (--format png --out FILE)."""
    from .description import load_cloud
    from .description.summary import draw_cloud, summary_text

    cloud = load_cloud(path)
    if fmt == "text":
        click.echo(summary_text(cloud))
        return
    if out is None:
        _fail(f"labtwin show: --format {fmt} needs --out FILE")
    draw_cloud(cloud).savefig(out, format=fmt, bbox_inches="tight")
    click.echo(f"wrote {out}")


@main.command()
@click.argument("suite", required=False, type=click.Path(path_type=Path, file_okay=False))
@click.option("--case", "pattern", default="", help="only cases whose folder name contains this")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per case")
@friendly_errors
def conformance(suite, pattern, as_json):
    """Check labtwin against Neutron's documented outcomes (default: the suite under tests/conformance).

    One line per case: its status (pass, FAIL, known gap, gap-closed), folder and documentation source,
    then what differs. Exit 1 when a case fails.
    """
    from . import conformance as suite_module

    try:
        cases = [c for c in suite_module.load_cases(suite or suite_module.SUITE) if pattern in c.name]
    except (suite_module.CaseError, OSError) as exc:
        _fail(f"labtwin conformance: {exc}")
    if not cases:
        _fail(f"labtwin conformance: no case matches {pattern!r}")
    failed = 0
    for case in cases:
        result = suite_module.check(case)
        failed += result.status == "FAIL"
        if as_json:
            row = {"case": case.name, "status": result.status, "source": case.source, "url": case.url}
            click.echo(json.dumps({**row, "differences": list(result.differences), "known_gap": case.known_gap}))
            continue
        click.echo(f"{result.status:>10}  {case.name}  ({case.source})")
        for line in result.differences:
            click.echo(f"            - {line}")
    if not as_json:
        click.echo(f"conformance: {len(cases) - failed} of {len(cases)} as documented or known gaps; {failed} failed")
    if failed:
        raise SystemExit(1)


@main.command("scenarios")
def list_scenarios():
    """List scenarios and their knobs with defaults."""
    from .scenarios import SCENARIOS

    for scenario in SCENARIOS.values():
        backends = "model" + (", emulation" if scenario.emulate else "")
        click.echo(
            f"{scenario.name}: {scenario.title} [{backends}; topology {scenario.default_topology or 'generated'}]"
        )
        for knob in scenario.knobs:
            choices = f" ({' | '.join(map(str, knob.choices))})" if knob.choices else ""
            click.echo(f"    {knob.name}={knob.default}{choices}  {knob.help}")


# --- runs --------------------------------------------------------------------------


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
    from .scenarios import ScenarioError

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
        from . import api

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
    from . import api

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
    from . import sweep as sweeps
    from .scenarios import ScenarioError

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

    from . import api
    from .scenarios import SCENARIOS, ScenarioError, get_scenario

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


# --- machine, slides, demo ----------------------------------------------------------


@main.command()
@click.option("--fix", is_flag=True, help="start Open vSwitch if it is installed but not running")
def doctor(fix):
    """Check everything emulation needs (programs with their Debian packages, root, OVS); exit 1 if one is missing."""
    from .emulation.doctor import checks, ovn_check, start_ovs

    if fix:
        start_ovs()
    found = checks()
    ovn = ovn_check()
    width = max(len(c.what) for c in [*found, ovn])
    for check in found:
        click.echo(f"{'ok' if check.ok else 'MISSING':8} {check.what:{width}}  {check.detail}")
    missing = [c for c in found if not c.ok]
    click.echo("emulation: possible" if not missing else f"emulation: NOT possible here ({len(missing)} missing)")
    click.echo(f"{'ok' if ovn.ok else 'MISSING':8} {ovn.what:{width}}  {ovn.detail}")
    sys.exit(1 if missing else 0)


@main.command()
@click.option("--run-id", help="only this run's leftovers")
def clean(run_id):
    """Remove what emulation runs left behind (from their ledgers), and nothing else."""
    from .emulation.clean import clean as clean_ledgers

    removed = clean_ledgers(run_id)
    for item in removed:
        click.echo(f"removed {item}")
    click.echo(f"clean: {len(removed)} objects removed")


@main.command()
@click.argument("notebooks", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=Path("out/slides"), show_default=True)
@click.option("--no-execute", is_flag=True, help="export as saved, without running the cells")
def slides(notebooks, out, no_execute):
    """Export notebooks as offline reveal.js slide decks."""
    from rich.progress import track

    from .report.slides import export_slides

    for notebook in track(notebooks, description="slides", console=stderr_console()):
        click.echo(f"wrote {export_slides(notebook, out, execute=not no_execute)}")


@main.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("out"), show_default=True)
def demo(out):
    """The main job: every scenario on its default topology -> summaries and a slide deck."""
    from .report.demo import DemoError, run_demo

    try:
        paths = run_demo(out)
    except DemoError as exc:
        _fail(f"labtwin demo: {exc}\n(what did run is listed in {out}/index.md)", 1)
    click.echo(f"demo: {len(paths)} files under {out}/ — start with {out}/index.md")


if __name__ == "__main__":  # pragma: no cover
    main()
