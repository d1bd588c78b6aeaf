"""The example scenario ``neighbours``, added the way README's "Add a scenario" says, works end to end.

The scenario folder (``neighbours/``) is imported as a package of its own; the one registry line is
the ``SCENARIOS`` entry the fixture adds (in-tree it is a line in ``labtwin/scenarios/__init__.py``);
its topology is ``topologies/neighbours.yaml``. Nothing else in labtwin knows about it, and the API,
the CLI and the twin all work for it.
"""

from __future__ import annotations

import ast
import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from labtwin import api
from labtwin.cli import main as cli
from labtwin.scenarios import SCENARIOS

HERE = Path(__file__).resolve().parent
TOPOLOGY = HERE / "topologies" / "neighbours.yaml"


@pytest.fixture
def registered(monkeypatch):
    from neighbours import SCENARIO  # the folder beside this file

    monkeypatch.setitem(SCENARIOS, SCENARIO.name, SCENARIO)  # the one registry line
    monkeypatch.setenv("LABTWIN_TOPOLOGIES", str(TOPOLOGY.parent))
    return SCENARIO


def test_the_cli_lists_and_runs_it(registered):
    runner = CliRunner()
    listed = runner.invoke(cli, ["scenarios"])
    assert listed.exit_code == 0 and "neighbours" in listed.output
    ran = runner.invoke(cli, ["simulate", "neighbours", "--json"])
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.output)["summary"] == {"probe_count": 6, "allowed": 2, "blocked": 4}


def test_the_model_answers_per_pair(registered):
    run = api.simulate("neighbours")
    verdicts = {(p.src, p.dst): p.verdict for p in run.probes.itertuples()}
    assert verdicts[("vm-a", "vm-b")] == verdicts[("vm-b", "vm-a")] == "allowed"
    assert {v for (s, d), v in verdicts.items() if "vm-c" in (s, d)} == {"blocked"}


def test_its_design_is_typed(registered):
    design = registered.design({"timeout": "1.5"})
    assert type(design).__name__ == "NeighboursDesign" and design.timeout == 1.5


def test_its_knob_is_bounded_and_unfit_clouds_are_refused(registered, topologies):
    with pytest.raises(Exception, match="timeout"):
        api.simulate("neighbours", timeout=60)
    with pytest.raises(Exception, match="without filtering"):
        api.simulate("neighbours", topology=topologies / "minimal.yaml")


def test_its_model_never_imports_its_emulation():
    for path in (HERE / "neighbours" / "model").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert "emulation" not in (node.module or ""), f"{path} imports {node.module}"


@pytest.mark.emulation
def test_the_twin_agrees_and_a_wrong_model_does_not(registered, live, ledger_dir, snapshot):
    before = snapshot()
    report, model, emulation = api.twin("neighbours")
    assert report.agree, report.disagreements()
    assert snapshot() == before
    assert len(emulation.probes) == 6 and (emulation.probes.verdict == "allowed").sum() == 2
    flipped = api.simulate("neighbours")
    flipped.records = [
        replace(r, verdict="blocked") if (getattr(r, "src", None), getattr(r, "dst", None)) == ("vm-a", "vm-b") else r
        for r in flipped.records
    ]
    assert not api.compare_runs("neighbours", flipped, emulation).agree


@pytest.mark.slow
def test_its_notebook_runs_and_exports_to_slides(tmp_path):
    """The recipe's notebook: thin (api calls only), runs top to bottom and exports as a deck."""
    from labtwin.report.notebooks import execute_notebook
    from labtwin.report.slides import export_slides

    nb = execute_notebook(HERE / "neighbours.ipynb", timeout=300)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    summary = next(o for o in outputs if "'probe_count': 6" in str(o.get("data", {}).get("text/plain", "")))
    assert "'allowed': 2" in summary["data"]["text/plain"]
    deck = export_slides(HERE / "neighbours.ipynb", tmp_path)
    assert "which VM ports share an L2 network" in deck.read_text()
