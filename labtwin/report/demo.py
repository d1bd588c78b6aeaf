"""The headless main job (``make demo``): every scenario on its default topology.

For each scenario in the registry, on its default topology file (as
``labtwin simulate NAME --topology topologies/<its file>`` would run it): run
the model (seed 1) and save it under ``out/<scenario>/model/``; where the
scenario has an emulation and this machine can emulate, run the twin check too
(``out/<scenario>/twin/``: model, emulation, ``twin.csv``); then export the scenario's notebook as an offline
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

from .. import api
from ..api import Scenario
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
    outcomes = [run_scenario(s, out_dir, can_emulate, why_not, say) for s in api.scenarios()]
    decks, deck_failures = export_demo_decks(notebooks_for(api.scenarios()), out_dir / "slides", say)
    index = write_index(out_dir, outcomes, decks, deck_failures)
    say(f"demo: index at {index}")
    failures = [f"{o.scenario}: {f}" for o in outcomes for f in o.failures] + deck_failures
    if failures:
        raise DemoError("demo finished with failures:\n  " + "\n  ".join(failures))
    return [p for o in outcomes for p in o.paths] + decks + [index]


def run_scenario(scenario: Scenario, out_dir: Path, can_emulate: bool, why_not: str, say) -> Outcome:
    """Model, then (if possible) the twin check, of one scenario; failures recorded.

    Runs go through :mod:`labtwin.api` with the scenario's default topology file,
    exactly as the CLI runs ``simulate``/``twin NAME --topology FILE``.
    """
    outcome = Outcome(scenario.name, scenario.title)
    here = out_dir / scenario.name
    topology = api.default_topology(scenario)
    say(f"demo: {scenario.name}: model")
    try:
        model = api.simulate(scenario, topology, SEED, out=here / "model")
        outcome.paths += [here / "model" / "summary.json", here / "model" / "records.jsonl"]
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
        say(f"demo: {scenario.name}: emulation and twin check")
        try:
            report, _, _ = api.twin(
                scenario, topology, SEED, out=here / "twin", progress=calibration_progress(scenario.name, say)
            )
            outcome.paths += [here / "twin" / "emulation" / "summary.json", here / "twin" / "twin.csv"]
            outcome.emulation = "ran"
            outcome.twin = "agree" if report.agree else f"DISAGREE on {len(report.disagreements)} of {len(report.rows)}"
            if not report.agree:
                outcome.failures.append(f"twin check disagrees: see {here / 'twin' / 'twin.csv'}")
        except Exception as exc:  # noqa: BLE001
            outcome.emulation = "failed"
            outcome.failures.append(f"emulation failed: {failure(exc)}")
    return outcome


def calibration_progress(name: str, say: Callable[[str], None]) -> Callable[[int, int], None]:
    """Progress lines for a calibration the twin makes first: one saying why, then one per quarter."""
    shown: set[int] = set()

    def progress(done: int, total: int) -> None:
        if not shown:
            say(f"demo: {name}: no calibration of this machine yet; calibrating it once ({total} emulation runs)")
        quarter = 4 * done // total
        if quarter not in shown:
            shown.add(quarter)
            say(f"demo: {name}: calibrating [{'#' * quarter}{'.' * (4 - quarter)}] {done}/{total}")

    return progress


def timed(say: Callable[[str], None]) -> Callable[[str], None]:
    """*say* with the seconds since the demo started in front, so slow steps stand out."""
    start = time.monotonic()
    return lambda line: say(f"[{time.monotonic() - start:6.1f} s] {line}")


def export_demo_decks(notebooks: list[Path], slides_dir: Path, say) -> tuple[list[Path], list[str]]:
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
    """(possible, why not): ``labtwin doctor``'s answer, through the api."""
    ok, reasons = api.emulation_possible()
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
