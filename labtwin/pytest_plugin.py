"""The labtwin pytest plugin: design checks as ordinary tests, in any project.

Installed with labtwin (entry point ``pytest11``), it gives tests:

- fixtures ``simulate``, ``emulate`` and ``twin``: callables taking
  ``(scenario, topology=None, seed=None, **knobs)`` like :mod:`labtwin.api`;
  runs are cached for the test session by their inputs (scenario, design,
  seed, topology file and a hash of its content), so several checks of one
  design run it once. ``emulate``/``twin`` skip the test, with the reason,
  where emulation is impossible (no root, no Open vSwitch);
- ``trace``: loads a recorded run (``trace("traces/sg-fanout")``), no root needed;
- markers ``emulation`` (skipped, with the reason, where emulation is
  impossible) and ``slow``;
- options ``--labtwin-topologies DIR`` (where scenarios find their default
  topologies, and where bare topology names are looked up) and
  ``--labtwin-seed N`` (the seed when a check gives none; default 1), also
  settable as ini keys ``labtwin_topologies`` and ``labtwin_seed``.

A cached run is shared by every check that asks for it: treat it as read-only.

The assertion helpers live in :mod:`labtwin.testing`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pytest

DEFAULT_SEED = 1


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("labtwin", "labtwin design checks")
    group.addoption(
        "--labtwin-topologies",
        metavar="DIR",
        default=None,
        help="directory of topologies: scenario defaults and bare topology names (sets $LABTWIN_TOPOLOGIES)",
    )
    group.addoption(
        "--labtwin-seed",
        metavar="N",
        type=int,
        default=None,
        help=f"seed for runs whose check gives none (default {DEFAULT_SEED})",
    )
    parser.addini("labtwin_topologies", "default for --labtwin-topologies", default=None)
    parser.addini("labtwin_seed", "default for --labtwin-seed", default=None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "emulation: needs root, Mininet and Open vSwitch (skipped with the reason elsewhere)"
    )
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
    session = LabtwinSession.from_config(config)
    config.stash[SESSION] = session
    session.export_topologies()


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION, None)
    if session is not None:
        session.restore_topologies()


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("emulation") is not None:
        item.config.stash[SESSION].skip_unless_emulation()


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    session = config.stash.get(SESSION, None)
    if session is not None and (session.runs or session.hits):
        counts = ", ".join(f"{n} {kind}" for kind, n in sorted(session.runs.items()))
        terminalreporter.write_line(f"labtwin: ran {counts or 'nothing'}; {session.hits} cache hits")


# --- session state ----------------------------------------------------------------------


def emulation_possible() -> tuple[bool, list[str]]:
    """Whether this machine can emulate, and why not: ``labtwin doctor``'s answer (imported late: plugin start-up)."""
    from .api import emulation_possible as check

    return check()


@dataclass
class LabtwinSession:
    """Per-session state: options, the run cache and the emulation verdict."""

    rootpath: Path
    topologies: Optional[Path]
    seed: int
    cache: dict = field(default_factory=dict)
    runs: dict = field(default_factory=dict)
    hits: int = 0
    _emulation: Optional[tuple[bool, list[str]]] = None
    _saved_env: Any = None

    @classmethod
    def from_config(cls, config: pytest.Config) -> "LabtwinSession":
        topologies = config.getoption("labtwin_topologies") or config.getini("labtwin_topologies")
        seed = config.getoption("labtwin_seed")
        if seed is None:
            seed = int(config.getini("labtwin_seed") or DEFAULT_SEED)
        root = Path(config.rootpath)
        return cls(root, (root / topologies).resolve() if topologies else None, seed)

    # $LABTWIN_TOPOLOGIES is how scenarios find their default topology (scenarios.base.topologies_dir)
    def export_topologies(self) -> None:
        if self.topologies is not None:
            self._saved_env = (os.environ.get("LABTWIN_TOPOLOGIES"),)
            os.environ["LABTWIN_TOPOLOGIES"] = str(self.topologies)

    def restore_topologies(self) -> None:
        if self._saved_env is None:
            return
        (old,) = self._saved_env
        if old is None:
            os.environ.pop("LABTWIN_TOPOLOGIES", None)
        else:
            os.environ["LABTWIN_TOPOLOGIES"] = old
        self._saved_env = None

    def skip_unless_emulation(self) -> None:
        if self._emulation is None:
            self._emulation = emulation_possible()
        ok, reasons = self._emulation
        if not ok:
            pytest.skip("emulation not possible here: " + "; ".join(reasons))

    # --- runs ---------------------------------------------------------------------------
    def topology_path(self, topology) -> Optional[str]:
        """Resolve a topology: as given, from the project root, or from the topologies dir."""
        if topology is None:
            return None
        path = Path(topology)
        if path.is_absolute() or path.exists():
            return str(path)
        from .scenarios import topologies_dir

        for base in (self.rootpath, topologies_dir()):
            if (base / path).exists():
                return str(base / path)
        return str(path)  # let the loader say what is wrong with it

    def key(self, kind: str, scenario: str, topology: Optional[str], seed: int, knobs: dict) -> tuple:
        """What a run depends on: scenario, parsed design, seed, topology file and its content."""
        from .scenarios import get_scenario, topologies_dir

        spec = get_scenario(scenario)
        design = spec.design(knobs)  # "1000" and 1000 are the same design
        path = topology
        if path is None and (spec.needs_topology and spec.default_topology):
            path = str(topologies_dir() / spec.default_topology)
        digest = _file_hash(path) if path else None
        return kind, scenario, tuple(sorted((k, repr(v)) for k, v in design.items())), seed, path, digest

    def run(self, kind: str, scenario: str, topology=None, seed: Optional[int] = None, **knobs):
        """Run (or reuse) *kind* = ``model`` / ``emulation`` / ``twin`` of *scenario*."""
        seed = self.seed if seed is None else seed
        topology = self.topology_path(topology)
        key = self.key(kind, scenario, topology, seed, knobs)
        if key in self.cache:
            self.hits += 1
            return self.cache[key]
        result = self._execute(kind, scenario, topology, seed, knobs)
        self.cache[key] = result
        self.runs[kind] = self.runs.get(kind, 0) + 1
        return result

    def _execute(self, kind: str, scenario: str, topology, seed: int, knobs: dict):
        from . import api

        if kind == "model":
            return api.simulate(scenario, topology, seed, **knobs)
        if kind == "emulation":
            return api.emulate(scenario, topology, seed, **knobs)
        return api.compose_twin(  # api.twin's composition, each side through the session cache
            scenario,
            knobs,
            topology,
            lambda with_knobs: self.run("model", scenario, topology, seed, **with_knobs),
            lambda with_knobs: self.run("emulation", scenario, topology, seed, **with_knobs),
            remeasure=lambda with_knobs: self._execute("emulation", scenario, topology, seed, with_knobs),
        )


def _file_hash(path: str) -> Optional[str]:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


SESSION = pytest.StashKey[LabtwinSession]()


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture
def labtwin_session(request: pytest.FixtureRequest) -> LabtwinSession:
    """The session's run cache and options (for plugins built on this one)."""
    return request.config.stash[SESSION]


@pytest.fixture
def simulate(labtwin_session: LabtwinSession):
    """``simulate(scenario, topology=None, seed=None, **knobs) -> Run``: the model, cached per session."""

    def simulate(scenario: str, topology=None, seed: Optional[int] = None, **knobs):
        return labtwin_session.run("model", scenario, topology, seed, **knobs)

    return simulate


@pytest.fixture
def emulate(labtwin_session: LabtwinSession):
    """``emulate(scenario, topology=None, seed=None, **knobs) -> Run``: the emulation, cached per
    session; the test is skipped, with the reason, where emulation is impossible."""
    labtwin_session.skip_unless_emulation()

    def emulate(scenario: str, topology=None, seed: Optional[int] = None, **knobs):
        return labtwin_session.run("emulation", scenario, topology, seed, **knobs)

    return emulate


@pytest.fixture
def twin(labtwin_session: LabtwinSession):
    """``twin(scenario, ...) -> (TwinReport, model_run, emulation_run)``, cached per session;
    skipped, with the reason, where emulation is impossible."""
    labtwin_session.skip_unless_emulation()

    def twin(scenario: str, topology=None, seed: Optional[int] = None, **knobs):
        return labtwin_session.run("twin", scenario, topology, seed, **knobs)

    return twin


@pytest.fixture
def trace(labtwin_session: LabtwinSession):
    """``trace(path) -> Run``: a recorded run, from the project root if *path* is relative."""
    from .testing import load_trace

    def trace(path):
        where = Path(path)
        if not where.is_absolute() and not where.exists():
            where = labtwin_session.rootpath / where
        return load_trace(where)

    return trace
