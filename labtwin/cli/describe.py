"""``labtwin validate``, ``import``, ``show``, ``conformance``, ``scenarios``: clouds and what labtwin knows."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from . import _fail, friendly_errors, main


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
    from ..description import CloudError, load_cloud
    from ..description.notes import notes

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
    from ..description import CloudError
    from ..description.loader import load_declared
    from ..oracle import OracleFailed, ask_neutron_many

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
    from ..importer import import_cloud, write

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
    from ..description import load_cloud
    from ..description.summary import draw_cloud, summary_text

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
    from .. import conformance as suite_module

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
    from ..scenarios import SCENARIOS

    for scenario in SCENARIOS.values():
        backends = "model" + (", emulation" if scenario.emulate else "")
        click.echo(
            f"{scenario.name}: {scenario.title} [{backends}; topology {scenario.default_topology or 'generated'}]"
        )
        for knob in scenario.knobs:
            choices = f" ({' | '.join(map(str, knob.choices))})" if knob.choices else ""
            click.echo(f"    {knob.name}={knob.default}{choices}  {knob.help}")
