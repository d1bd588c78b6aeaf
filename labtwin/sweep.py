"""Design sweeps: a scenario's model over a grid of knob values, run on Dask, kept as one tidy Parquet file.

A grid is the product of the varied knobs' values, each point run ``repeats`` times with seeds
``seed, seed + 1, ...``. Each run is one row: the scenario, the topology, every knob given (fixed or
varied, as the scenario's design parsed it), the seed and the repeat, then every scalar of the run's
summary. :func:`run` returns that table and a summary of it (the mean of each number per grid point).

Where the runs go (*scheduler*):

- ``"local"`` (the default): an embedded ``dask.distributed.LocalCluster`` on this machine, one worker
  process per core, started and stopped by the sweep; nothing to set up.
- ``"tcp://host:8786"``: a running Dask cluster (``dask-scheduler`` on one machine, ``dask-worker
  tcp://host:8786`` on each of the others, every one with labtwin installed). The topology is loaded
  here and shipped to the workers, so they need no copy of it.
- ``"serial"``: this process, one run after another (what a notebook's small sweep uses).

The LocalCluster starts its workers as new Python processes, which import the calling script: a
script that sweeps with it keeps its work under ``if __name__ == "__main__":`` (a notebook and the
``labtwin`` command need nothing).

Every engine runs the same function on the same points, so a grid gives the same rows seed by seed
wherever it runs (a test checks a LocalCluster against a serial run).

Resumable: with *out*, the rows already in that file for a point of this grid (same scenario, topology,
knobs and seed) are kept and not run again; the file is rewritten atomically (a temporary file, then a
rename) every few seconds as batches finish and at the end, also after an error or Ctrl-C, so an
interrupted sweep loses at most the batches in flight. The file trusts its rows: after changing the
model, start a new file.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from .scenarios import ScenarioError, get_scenario

if TYPE_CHECKING:
    import pandas as pd

    from .description import Cloud

#: The varied knobs: each knob's values, as a list or as the command line's comma-separated text.
Vary = Mapping[str, Union[str, Sequence[Any]]]
#: Knobs set to one value each (``--set``), as text or Python values.
Knobs = Mapping[str, Any]
#: A progress callback: (runs done, runs in all), called as batches finish.
Progress = Callable[[int, int], None]

#: The columns that say which run a row is, besides the knobs.
META = ("scenario", "topology", "seed", "repeat")

#: How often a running sweep rewrites its file (seconds).
CHECKPOINT_EVERY_S = 5.0


class SweepError(RuntimeError):
    """A grid point whose model run failed: the point, then the error (raised in a worker, shown here)."""


@dataclass(frozen=True)
class Point:
    """One run of the grid: its whole design (every knob, parsed), the knobs the sweep set, seed and repeat."""

    design: tuple[tuple[str, Any], ...]
    given: tuple[str, ...]
    seed: int
    repeat: int

    def describe(self) -> str:
        knobs = dict(self.design)
        return " ".join(f"{k}={knobs[k]}" for k in self.given) + f" seed={self.seed}"


@dataclass(frozen=True)
class Grid:
    """A scenario's grid: fixed knobs, varied knobs (in order), repeats and the first seed.

    A row records the whole design it ran (defaults included), and a file's row is reused only for the
    same design: a default that changed, or a knob one sweep fixed and another left alone, never
    mixes two different runs.
    """

    scenario: str
    topology: str
    fixed: dict[str, Any]
    axes: dict[str, list[Any]]
    knobs: tuple[str, ...]
    repeats: int = 1
    seed: int = 1

    @property
    def key_columns(self) -> list[str]:
        """What makes a row this grid's run of a point: the scenario, topology, whole design and seed."""
        return ["scenario", "topology", *self.knobs, "seed"]

    def points(self) -> list[Point]:
        """Every run of the grid, in order (computed once: the grid is frozen)."""
        return list(self._points)

    @functools.cached_property
    def _points(self) -> tuple[Point, ...]:
        spec = get_scenario(self.scenario)
        given = (*self.fixed, *self.axes)
        points = []
        for values in itertools.product(*self.axes.values()):
            design = spec.design({**self.fixed, **dict(zip(self.axes, values))})
            cells = tuple((k, _cell(design[k])) for k in self.knobs)
            points += [Point(cells, given, self.seed + r, r) for r in range(self.repeats)]
        return tuple(points)

    def key(self, point: Point) -> tuple:
        return (self.scenario, self.topology, *(v for _, v in point.design), point.seed)


@dataclass
class SweepResult:
    """A sweep's rows (one per run, the file's rows of this grid included) and their summary per grid point."""

    grid: Grid
    table: pd.DataFrame
    ran: int
    reused: int
    out: Optional[Path] = None

    @property
    def summary(self) -> pd.DataFrame:
        return summarize(self.table, list(self.grid.axes), exclude=self.grid.knobs)


def parse_axes(vary: Vary) -> dict[str, list[Any]]:
    """``{"members": "10,20"}`` (the command line's ``--vary members=10,20``) or ``{"members": [10, 20]}``
    as lists of values; an empty axis or a value given twice is a :class:`ScenarioError`."""
    axes = {}
    for knob, values in vary.items():
        listed = [v.strip() for v in values.split(",")] if isinstance(values, str) else list(values)
        if not listed or any(v == "" for v in listed):
            raise ScenarioError(f"--vary {knob}: give one or more values, comma-separated (got {values!r})")
        twice = sorted({str(v) for v in listed if listed.count(v) > 1})
        if twice:
            raise ScenarioError(f"--vary {knob}: {', '.join(twice)} given twice")
        axes[knob] = listed
    return axes


def make_grid(
    scenario: str,
    vary: Vary,
    fixed: Optional[Knobs] = None,
    repeats: int = 1,
    seed: int = 1,
    topology: Optional[Union[str, Path]] = None,
) -> Grid:
    """The grid, every value parsed by its knob now (a bad value is an error before anything runs)."""
    spec = get_scenario(scenario)
    fixed = dict(fixed or {})
    axes = parse_axes(vary)
    if not axes:
        raise ScenarioError(f"sweep {scenario}: vary at least one knob (--vary KNOB=V1,V2)")
    both = sorted(set(fixed) & set(axes))
    if both:
        raise ScenarioError(f"sweep {scenario}: {', '.join(both)} both fixed (--set) and varied (--vary)")
    if repeats < 1:
        raise ScenarioError(f"sweep {scenario}: --repeats must be 1 or more, got {repeats}")
    design = spec.design(fixed)
    parsed_axes = {k: [_cell(spec.design({**fixed, k: v})[k]) for v in values] for k, values in axes.items()}
    grid = Grid(
        scenario=spec.name,
        topology=str(topology) if topology is not None else "",
        fixed={k: _cell(design[k]) for k in fixed},
        axes=parsed_axes,
        knobs=tuple(design),
        repeats=repeats,
        seed=seed,
    )
    grid.points()  # every combination's design now: knobs that contradict each other are refused here
    return grid


def _cell(value: Any) -> Any:
    """A knob's parsed value as a table cell: numbers, strings and booleans as they are, anything else as text."""
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)


# --- one batch of runs (what a worker executes) ---------------------------------------------------------


def run_points(scenario: str, cloud: Optional[Cloud], topology: str, points: Sequence[Point]) -> list[dict]:
    """Run the model at each point; one row each. Module-level, so Dask pickles it by name."""
    spec = get_scenario(scenario)
    rows = []
    for point in points:
        knobs = dict(point.design)
        try:
            design = spec.design(knobs)
            spec.refuse_unfit(cloud, design, topology)
            summary = spec.simulate(cloud, design, point.seed, topology).summary
        except Exception as exc:
            raise SweepError(f"sweep {scenario}: the run at {point.describe()} failed: {exc}") from exc
        row: dict[str, Any] = {"scenario": scenario, "topology": topology, **knobs}
        row.update(seed=point.seed, repeat=point.repeat)
        row.update({k: v for k, v in summary.items() if _is_scalar(v) and k not in row})
        rows.append(row)
    return rows


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


# --- the sweep ------------------------------------------------------------------------------------------


def run(
    scenario: str,
    vary: Vary,
    fixed: Optional[Knobs] = None,
    *,
    repeats: int = 1,
    seed: int = 1,
    topology: Optional[Union[str, Path]] = None,
    out: Optional[Union[str, Path]] = None,
    scheduler: str = "local",
    workers: Optional[int] = None,
    progress: Optional[Progress] = None,
) -> SweepResult:
    """Run *scenario*'s model over the grid (see the module's docstring); *out*: a Parquet file to resume
    from and write; *workers*: the LocalCluster's worker processes (default: one per core)."""
    grid = make_grid(scenario, vary, fixed, repeats, seed, topology)
    cloud = _load_cloud(grid, topology)
    out_path = Path(out) if out is not None else None
    earlier = _read_table(out_path)
    done = _keys_in(earlier, grid)
    points = grid.points()
    todo = [p for p in points if grid.key(p) not in done]
    reused = len(points) - len(todo)
    rows: list[dict] = []
    writer = _Checkpoint(out_path, earlier)
    try:
        for batch_rows in _execute(grid, cloud, todo, scheduler, workers):
            rows += batch_rows
            if progress is not None:
                progress(len(rows), len(todo))
            writer.maybe_write(rows)
    finally:
        writer.write(rows)
    table = _of_grid(_concat(earlier, rows), grid, points)
    return SweepResult(grid, table, ran=len(rows), reused=reused, out=out_path)


def compare(
    scenario: str,
    designs: Mapping[str, Knobs],
    vary: Vary,
    fixed: Optional[Knobs] = None,
    **options: Any,
) -> pd.DataFrame:
    """The same grid under several designs: one :func:`run` per labelled design (its knobs over *fixed*),
    their tables stacked with the label as the first column, ``design``. *options* as :func:`run` takes them
    (a file given as ``out`` keeps every design's rows)."""
    import pandas as pd

    tables = [
        run(scenario, vary, {**(fixed or {}), **knobs}, **options).table.assign(design=label)
        for label, knobs in designs.items()
    ]
    table = pd.concat(tables, ignore_index=True)
    return table[["design", *(c for c in table.columns if c != "design")]]


def _load_cloud(grid: Grid, topology: Optional[Union[str, Path]]) -> Optional[Cloud]:
    spec = get_scenario(grid.scenario)
    if topology is None and not spec.needs_topology:
        return None
    cloud, _ = spec.cloud(str(topology) if topology is not None else None)
    return cloud


def _execute(
    grid: Grid, cloud: Optional[Cloud], points: list[Point], scheduler: str, workers: Optional[int]
) -> Iterator[list[dict]]:
    """Rows of *points*, a batch at a time as batches finish (in any order)."""
    if not points:
        return
    if scheduler == "serial":
        for batch in _batches(points, 1):
            yield run_points(grid.scenario, cloud, grid.topology, batch)
        return
    from dask.distributed import as_completed

    with _client(scheduler, workers) as client:
        cores = sum(client.ncores().values()) or 1
        shared = client.scatter(cloud, broadcast=True) if cloud is not None else None
        futures = [
            client.submit(run_points, grid.scenario, shared, grid.topology, batch, pure=False)
            for batch in _batches(points, cores)
        ]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            client.cancel(futures)


def _batches(points: list[Point], cores: int) -> list[list[Point]]:
    """Batches of at most 200 runs, about ten per core: few enough that a task's overhead (milliseconds)
    is small beside its runs, enough that the cores stay busy to the end and the progress bar moves."""
    size = max(1, min(200, math.ceil(len(points) / (10 * cores))))
    return [points[i : i + size] for i in range(0, len(points), size)]


@contextlib.contextmanager
def _client(scheduler: str, workers: Optional[int]) -> Iterator[Any]:
    import logging

    from dask.distributed import Client, LocalCluster

    if scheduler == "local":
        n = workers or os.cpu_count() or 1
        with (
            LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    if not scheduler.startswith(("tcp://", "tls://", "inproc://", "ws://", "wss://")):
        raise ScenarioError(
            f"--scheduler takes local, serial or a Dask scheduler's address (tcp://host:8786), got {scheduler!r}"
        )
    try:
        client = Client(scheduler, timeout="10s")
    except OSError as exc:
        raise ScenarioError(f"--scheduler {scheduler}: no Dask scheduler answers there ({exc})") from exc
    with client:
        yield client


# --- the table and its file -----------------------------------------------------------------------------


class _Checkpoint:
    """Writes the file (*earlier* rows, then the new ones) atomically, at most every few seconds."""

    def __init__(self, out: Optional[Path], earlier: Optional[pd.DataFrame]) -> None:
        self.out, self.earlier = out, earlier
        self.written_rows = 0
        self.last = time.monotonic()

    def maybe_write(self, rows: list[dict]) -> None:
        if time.monotonic() - self.last >= CHECKPOINT_EVERY_S:
            self.write(rows)

    def write(self, rows: list[dict]) -> None:
        if self.out is None or len(rows) == self.written_rows:
            return
        self.out.parent.mkdir(parents=True, exist_ok=True)
        partial = self.out.with_name(f".{self.out.name}.partial")
        _concat(self.earlier, rows).to_parquet(partial, index=False)
        os.replace(partial, self.out)
        self.written_rows, self.last = len(rows), time.monotonic()


def _read_table(out: Optional[Path]) -> Optional[pd.DataFrame]:
    if out is None or not out.exists():
        return None
    import pandas as pd

    try:
        return pd.read_parquet(out)
    except Exception as exc:
        raise ScenarioError(f"{out}: not a sweep's Parquet file ({exc}); name another --out or remove it") from exc


def _keys_in(table: Optional[pd.DataFrame], grid: Grid) -> set[tuple]:
    """The grid keys of *table*'s rows (none when it lacks one of the grid's key columns)."""
    if table is None or not set(grid.key_columns) <= set(table.columns):
        return set()
    return {tuple(_plain(v) for v in row) for row in table[grid.key_columns].itertuples(index=False)}


def _plain(value: Any) -> Any:
    """A cell read back from Parquet as the Python value a grid key holds (numpy scalars unwrapped)."""
    return value.item() if hasattr(value, "item") else value


def _concat(earlier: Optional[pd.DataFrame], rows: list[dict]) -> pd.DataFrame:
    import pandas as pd

    new = _consistent(pd.DataFrame(rows))
    if earlier is None or earlier.empty:
        return new
    return _consistent(pd.concat([earlier, new], ignore_index=True)) if rows else earlier


def _consistent(table: pd.DataFrame) -> pd.DataFrame:
    """One type per column, as Parquet needs: a column mixing text and numbers (a summary value that is
    ``"n/a"`` in one run and 3.2 in another) is kept as text."""
    for column in table.columns:
        if table[column].dtype == object:
            kinds = {type(v) for v in table[column] if v is not None and v == v}
            if len(kinds - {int, float}) > 1 or (str in kinds and kinds & {int, float, bool}):
                table[column] = [None if v is None else str(v) for v in table[column]]
    return table


def _of_grid(table: pd.DataFrame, grid: Grid, points: list[Point]) -> pd.DataFrame:
    """The rows of *table* that are runs of *points* (all of *grid*'s), in the grid's order."""
    order = {grid.key(p): i for i, p in enumerate(points)}
    if table.empty:
        return table
    keys = [tuple(_plain(v) for v in row) for row in table[grid.key_columns].itertuples(index=False)]
    position = [order.get(k) for k in keys]
    mine = table.assign(_position=position).dropna(subset=["_position"])
    return mine.sort_values("_position").drop(columns="_position").reset_index(drop=True)


def summarize(table: pd.DataFrame, axes: list[str], exclude: Sequence[str] = ()) -> pd.DataFrame:
    """The mean of every numeric result per grid point (the varied knobs), with how many runs each has;
    *exclude*: columns to leave out (the knobs not varied)."""
    skip = {*META, *axes, *exclude}
    numeric = [c for c in table.columns if c not in skip and table[c].dtype.kind in "iuf"]
    groups = table.groupby(axes, sort=False)
    summary = groups[numeric].mean()
    summary.insert(0, "runs", groups.size())
    return summary.reset_index()


__all__ = [
    "Grid",
    "Point",
    "SweepError",
    "SweepResult",
    "compare",
    "make_grid",
    "parse_axes",
    "run",
    "run_points",
    "summarize",
]
