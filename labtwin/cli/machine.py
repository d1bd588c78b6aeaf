"""``labtwin doctor``, ``clean``, ``slides``, ``demo``: this machine, and what the lab shows."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from . import _fail, main, stderr_console


@main.command()
@click.option("--fix", is_flag=True, help="start Open vSwitch if it is installed but not running")
def doctor(fix):
    """Check everything emulation and the tests need (programs with their Debian packages, root, OVS, the browser);
    exit 1 if one is missing."""
    from ..emulation.doctor import checks, ovn_check, start_ovs

    if fix:
        start_ovs()
    found = checks()
    ovn = ovn_check()
    width = max(len(c.what) for c in [*found, ovn])
    for check in found:
        click.echo(f"{'ok' if check.ok else 'MISSING':8} {check.what:{width}}  {check.detail}")
    missing = [c for c in found if not c.ok]
    blocking = [c for c in missing if c.emulation]
    click.echo("emulation: possible" if not blocking else f"emulation: NOT possible here ({len(blocking)} missing)")
    if len(missing) > len(blocking):
        click.echo(f"tests: {len(missing) - len(blocking)} missing that only the tests need (make setup installs it)")
    click.echo(f"{'ok' if ovn.ok else 'MISSING':8} {ovn.what:{width}}  {ovn.detail}")
    sys.exit(1 if missing else 0)


@main.command()
@click.option("--run-id", help="only this run's leftovers")
def clean(run_id):
    """Remove what emulation runs left behind (from their ledgers), and nothing else."""
    from ..emulation.clean import clean as clean_ledgers

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

    from ..report.slides import export_slides

    for notebook in track(notebooks, description="slides", console=stderr_console()):
        click.echo(f"wrote {export_slides(notebook, out, execute=not no_execute)}")


@main.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("out"), show_default=True)
def demo(out):
    """The main job: every scenario on its default topology -> summaries and a slide deck."""
    from ..report.demo import DemoError, run_demo

    try:
        paths = run_demo(out)
    except DemoError as exc:
        _fail(f"labtwin demo: {exc}\n(what did run is listed in {out}/index.md)", 1)
    click.echo(f"demo: {len(paths)} files under {out}/ — start with {out}/index.md")
