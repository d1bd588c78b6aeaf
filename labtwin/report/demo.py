"""The headless main job (``make demo``): every scenario on its default topology.

For each scenario in the registry: run the model (seed 1) and save it under
``out/<scenario>/model/``; where the scenario has an emulation and this machine
can emulate, run it too (``out/<scenario>/emulation/``) and compare the two
(``out/<scenario>/twin.csv``); then export the scenario's notebook as an offline
slide deck under ``out/slides/``. ``out/index.md`` lists what was produced.

One scenario failing does not stop the others, but it is never hidden: it is
listed in the index and :func:`run_demo` raises :class:`DemoError` at the end.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from ..records import Run
from ..scenarios import SCENARIOS, Scenario
from ..twin import compare
from .slides import export_slides

SEED = 1
TOUR = "00-tour.ipynb"


class DemoError(RuntimeError):
    """At least one scenario (or deck) failed; the message names each failure."""


@dataclass
class Outcome:
    """What the demo produced for one scenario, for the index."""

    scenario: str
    title: str
    paths: list[Path] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    emulation: str = "not run"
    twin: str = ""
    failures: list[str] = field(default_factory=list)


def run_demo(out_dir: Path, progress: Optional[Callable[[str], None]] = None) -> list[Path]:
    """Run every scenario and export decks under *out_dir*; return the files produced."""
    say = timed(progress or (lambda line: print(line, flush=True)))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    can_emulate, why_not = emulation_possible()
    outcomes = [run_scenario(s, out_dir, can_emulate, why_not, say) for s in SCENARIOS.values()]
    decks, deck_failures = export_decks(notebooks_for(SCENARIOS.values()), out_dir / "slides", say)
    index = write_index(out_dir, outcomes, decks, deck_failures)
    say(f"demo: index at {index}")
    failures = [f"{o.scenario}: {f}" for o in outcomes for f in o.failures] + deck_failures
    if failures:
        raise DemoError("demo finished with failures:\n  " + "\n  ".join(failures))
    return [p for o in outcomes for p in o.paths] + decks + [index]


def run_scenario(scenario: Scenario, out_dir: Path, can_emulate: bool, why_not: str, say) -> Outcome:
    """Model, then (if possible) emulation and twin check, of one scenario; failures recorded."""
    outcome = Outcome(scenario.name, scenario.title)
    here = out_dir / scenario.name
    say(f"demo: {scenario.name}: model")
    try:
        cloud, path = scenario.cloud()
        design = scenario.design()
        model = scenario.simulate(cloud, design, SEED, path)
        outcome.paths += saved(model, here / "model")
        outcome.summary = model.summary
    except Exception as exc:  # noqa: BLE001 - report every scenario, then fail the demo
        outcome.failures.append(f"model failed: {failure(exc)}")
        return outcome
    if scenario.emulate is None:
        outcome.emulation = "no emulation for this scenario yet"
    elif not can_emulate:
        outcome.emulation = f"skipped: {why_not}"
        say(f"demo: {scenario.name}: emulation {outcome.emulation}")
    else:
        say(f"demo: {scenario.name}: emulation")
        try:
            emulation = scenario.emulate(cloud, design, SEED, path, out_dir=here / "emulation")
            outcome.paths += saved(emulation, here / "emulation")
            outcome.emulation = "ran"
            report = compare(model, emulation, scenario.tolerances)
            report.rows.to_csv(here / "twin.csv", index=False)
            outcome.paths.append(here / "twin.csv")
            outcome.twin = "agree" if report.agree else f"DISAGREE on {len(report.disagreements)} of {len(report.rows)}"
        except Exception as exc:  # noqa: BLE001
            outcome.emulation = "failed"
            outcome.failures.append(f"emulation failed: {failure(exc)}")
    return outcome


def timed(say: Callable[[str], None]) -> Callable[[str], None]:
    """*say* with the seconds since the demo started in front, so slow steps stand out."""
    start = time.monotonic()
    return lambda line: say(f"[{time.monotonic() - start:6.1f} s] {line}")


def saved(run: Run, directory: Path) -> list[Path]:
    run.save(directory)
    return [directory / "summary.json", directory / "records.jsonl"]


def export_decks(notebooks: list[Path], slides_dir: Path, say) -> tuple[list[Path], list[str]]:
    """Each notebook as an offline deck; a failing notebook is recorded, the others still export."""
    decks, failures = [], []
    for notebook in notebooks:
        say(f"demo: slides {notebook.name}")
        try:
            decks.append(export_slides(notebook, slides_dir))
        except Exception as exc:  # noqa: BLE001
            failures.append(f"slides {notebook.name} failed: {failure(exc)}")
    return decks, failures


def notebooks_for(scenarios) -> list[Path]:
    """The scenarios' notebooks, each once, the tour always first."""
    names = [TOUR] + [s.notebook for s in scenarios if s.notebook]
    folder = notebooks_dir()
    return [folder / name for name in dict.fromkeys(names)]


def notebooks_dir() -> Path:
    repo = Path(__file__).resolve().parents[2] / "notebooks"
    return repo if repo.is_dir() else Path.cwd() / "notebooks"


def emulation_possible() -> tuple[bool, str]:
    """Ask the emulation's doctor, if it exists yet; (possible, why not)."""
    try:
        from ..emulation.doctor import emulation_possible as doctor
    except ImportError as exc:
        return False, f"no emulation doctor available ({exc})"
    ok, reasons = doctor()
    return ok, "; ".join(reasons) if not ok else ""


def failure(exc: BaseException) -> str:
    """One line for the index, the last traceback frame for the reader to start from."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}".replace("\n", " ")


def write_index(out_dir: Path, outcomes: list[Outcome], decks: list[Path], deck_failures: list[str]) -> Path:
    """``out/index.md``: per scenario what ran, its headline numbers and files; then the decks."""
    lines = ["# labtwin demo", "", f"Every scenario on its default topology, seed {SEED}.", ""]
    for o in outcomes:
        lines += [f"## {o.scenario}: {o.title}", ""]
        lines += [f"- **FAILED** {f}" for f in o.failures]
        lines += [f"- emulation: {o.emulation}"] + ([f"- twin check: {o.twin}"] if o.twin else [])
        lines += [f"- {k}: {v}" for k, v in o.summary.items() if not isinstance(v, (dict, list))]
        lines += [f"- [{p.relative_to(out_dir)}]({p.relative_to(out_dir)})" for p in o.paths] + [""]
    lines += ["## Slide decks (open offline)", ""]
    lines += [f"- [{d.relative_to(out_dir)}]({d.relative_to(out_dir)})" for d in decks]
    lines += [f"- **FAILED** {f}" for f in deck_failures] + [""]
    index = out_dir / "index.md"
    index.write_text("\n".join(lines))
    return index
