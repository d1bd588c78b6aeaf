"""make demo: every scenario runs, outputs are indexed, failures are reported and fail the run."""

from dataclasses import replace
from pathlib import Path

import pytest

from labtwin.records import Run
from labtwin.report import demo
from labtwin.scenarios import Tolerance, get_scenario


@pytest.fixture
def fake_slides(monkeypatch):
    """Decks are tested in test_slides; here a stub writes a placeholder quickly."""

    def export(notebook, out_dir, execute=True):
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        deck = Path(out_dir) / f"{Path(notebook).stem}.slides.html"
        deck.write_text("<html></html>")
        return deck

    monkeypatch.setattr(demo, "export_slides", export)


def use_scenarios(monkeypatch, *scenarios):
    """Run the demo over *scenarios* only, emulation off unless a test turns it on."""
    monkeypatch.setattr(demo.api, "scenarios", lambda: list(scenarios))
    monkeypatch.setattr(demo, "emulation_possible", lambda: (False, "off in unit tests"))


def broken(*args, **kwargs):
    raise RuntimeError("model exploded")


def mirror_emulation(cloud, design, seed, topology, out_dir=None):
    """An 'emulation' that reports what the model says: enough to exercise the twin step."""
    model = get_scenario("reachability").simulate(cloud, design, seed, topology)
    return Run("reachability", "emulation", design, seed, topology, dict(model.summary), list(model.records))


def test_demo_saves_runs_decks_and_index(tmp_path, monkeypatch, fake_slides):
    use_scenarios(monkeypatch, get_scenario("reachability"))
    paths = demo.run_demo(tmp_path, progress=lambda line: None)
    assert all(p.exists() for p in paths)
    assert Run.load(tmp_path / "reachability" / "model").summary["probe_count"] > 0
    index = (tmp_path / "index.md").read_text()
    assert "## reachability" in index and "slides/00-tour.slides.html" in index
    assert "probe_count" in index


def test_failing_scenario_is_reported_and_raises(tmp_path, monkeypatch, fake_slides):
    good = get_scenario("reachability")
    use_scenarios(monkeypatch, replace(good, name="exploding", simulate=broken), good)
    with pytest.raises(demo.DemoError, match="exploding: model failed: RuntimeError: model exploded"):
        demo.run_demo(tmp_path, progress=lambda line: None)
    assert (tmp_path / "reachability" / "model" / "summary.json").exists()
    assert "**FAILED** model failed" in (tmp_path / "index.md").read_text()


def test_emulation_skipped_with_the_doctors_reason(tmp_path, monkeypatch, fake_slides):
    use_scenarios(monkeypatch, replace(get_scenario("reachability"), emulate=mirror_emulation))
    monkeypatch.setattr(demo, "emulation_possible", lambda: (False, "not root"))
    demo.run_demo(tmp_path, progress=lambda line: None)
    assert "emulation: skipped: not root" in (tmp_path / "index.md").read_text()
    assert not (tmp_path / "reachability" / "twin").exists()


def test_emulation_runs_and_is_compared_when_possible(tmp_path, monkeypatch, fake_slides):
    scenario = replace(get_scenario("reachability"), emulate=mirror_emulation, tolerances=(Tolerance("allowed"),))
    use_scenarios(monkeypatch, scenario)
    monkeypatch.setattr(demo, "emulation_possible", lambda: (True, ""))
    monkeypatch.setattr(demo.api, "emulation_possible", lambda: (True, []))  # the mirror needs nothing installed
    demo.run_demo(tmp_path, progress=lambda line: None)
    assert Run.load(tmp_path / "reachability" / "twin" / "emulation").backend == "emulation"
    assert (tmp_path / "reachability" / "twin" / "twin.csv").exists()
    assert "twin check: agree" in (tmp_path / "index.md").read_text()


def test_missing_notebook_fails_the_demo(tmp_path, monkeypatch):
    use_scenarios(monkeypatch, replace(get_scenario("reachability"), notebook="no-such.ipynb"))
    monkeypatch.setattr(
        demo,
        "export_demo_decks",
        lambda notebooks, out, say: ([], [f"slides {n.name} failed" for n in notebooks if not n.exists()]),
    )
    with pytest.raises(demo.DemoError, match="no-such.ipynb"):
        demo.run_demo(tmp_path, progress=lambda line: None)
