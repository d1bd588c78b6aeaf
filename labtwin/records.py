"""The run-record schema both backends write, and its files.

A :class:`Run` is one execution of a scenario by one backend (``model`` or
``emulation``). It carries what was run (scenario, design knobs, seed,
topology, backend, versions of what it ran on), a ``summary`` of headline
numbers, and four kinds of records:

- :class:`Event`: something happened at time ``t`` (an RPC arrived, a loop ran);
- :class:`Operation`: work done on a host, with start and duration (a filter
  rewritten, a bridge created), and how many objects it wrote;
- :class:`Probe`: a question about the data plane and its answer (may ``src``
  reach ``dst`` on ``protocol``/``port``: allowed or blocked, and what was seen);
- :class:`Metric`: a named number.

Times are seconds from the start of the run (simulated time for the model,
wall time for the emulation), so the two backends compare with a join.

On disk a run is a directory with ``summary.json`` (everything but the
records) and ``records.jsonl`` (one record a line, ``{"type": ..., ...}``).
Model records contain no wall-clock data, so the same seed and inputs give a
byte-identical ``records.jsonl``.
"""

from __future__ import annotations

import functools
import json
import math
import platform
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Optional, Union

if TYPE_CHECKING:  # pandas is imported where a frame is made: a CLI that prints no frame never pays for it
    import pandas as pd

Backend = Literal["model", "emulation"]
Verdict = Literal["allowed", "blocked"]


@dataclass(frozen=True)
class Event:
    t: float
    kind: str
    host: str = ""
    subject: str = ""
    detail: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Operation:
    op: str
    host: str
    start: float
    duration: float
    count: int = 1
    subject: str = ""
    detail: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Probe:
    src: str
    dst: str
    protocol: str
    port: Optional[int]
    verdict: Verdict
    t: float = 0.0
    latency_s: Optional[float] = None
    detail: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Metric:
    name: str
    value: Union[float, int, str, None]
    unit: str = ""
    host: str = ""


Record = Union[Event, Operation, Probe, Metric]
RECORD_TYPES: dict[str, type[Record]] = {"event": Event, "operation": Operation, "probe": Probe, "metric": Metric}
_TYPE_OF = {cls: name for name, cls in RECORD_TYPES.items()}


class Recorder:
    """Collects records during a run; passed explicitly, never global."""

    def __init__(self) -> None:
        self.records: list = []

    def event(self, t: float, kind: str, host: str = "", subject: str = "", **detail) -> None:
        self.records.append(Event(t, kind, host, subject, detail))

    def operation(
        self, op: str, host: str, start: float, duration: float, count: int = 1, subject: str = "", **detail
    ) -> None:
        self.records.append(Operation(op, host, start, duration, count, subject, detail))

    def probe(
        self,
        src: str,
        dst: str,
        protocol: str,
        port: Optional[int],
        verdict: Verdict,
        t: float = 0.0,
        latency_s: Optional[float] = None,
        **detail,
    ) -> None:
        self.records.append(Probe(src, dst, protocol, port, verdict, t, latency_s, detail))

    def metric(self, name: str, value, unit: str = "", host: str = "") -> None:
        self.records.append(Metric(name, value, unit, host))


@dataclass
class Run:
    """One scenario run by one backend: inputs, versions, summary and records."""

    scenario: str
    backend: Backend
    design: dict[str, Any]
    seed: int
    topology: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    records: list = field(default_factory=list)
    versions: dict[str, Optional[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.versions:
            self.versions = collect_versions(self.backend)

    # --- tidy views -----------------------------------------------------
    def frame(self, kind: str) -> pd.DataFrame:
        """Records of one kind (``event``, ``operation``, ``probe``, ``metric``) as a DataFrame."""
        cls = RECORD_TYPES[kind]
        rows = [asdict(r) for r in self.records if type(r) is cls]
        columns = [f.name for f in fields(cls)]
        import pandas as pd

        df = pd.DataFrame(rows, columns=columns)
        df.insert(0, "backend", self.backend)
        df.insert(0, "scenario", self.scenario)
        return df

    @property
    def events(self) -> pd.DataFrame:
        return self.frame("event")

    @property
    def operations(self) -> pd.DataFrame:
        return self.frame("operation")

    @property
    def probes(self) -> pd.DataFrame:
        return self.frame("probe")

    @property
    def metrics(self) -> pd.DataFrame:
        return self.frame("metric")

    def header(self) -> dict[str, Any]:
        """Everything but the records: what ``summary.json`` holds."""
        return {
            "scenario": self.scenario,
            "backend": self.backend,
            "design": self.design,
            "seed": self.seed,
            "topology": self.topology,
            "versions": self.versions,
            "summary": self.summary,
            "counts": {kind: sum(type(r) is cls for r in self.records) for kind, cls in RECORD_TYPES.items()},
        }

    # --- files ------------------------------------------------------------
    def save(self, directory: Union[str, Path]) -> Path:
        """Write ``summary.json`` and ``records.jsonl`` under *directory*."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(to_json(self.header(), indent=2) + "\n")
        with open(out / "records.jsonl", "w") as fh:
            for record in self.records:
                fh.write(record_line(record) + "\n")
        return out

    @classmethod
    def load(cls, directory: Union[str, Path]) -> "Run":
        """Read a run saved by :meth:`save` (works without root or OVS)."""
        src = Path(directory)
        head = json.loads((src / "summary.json").read_text())
        records = [parse_record(line) for line in (src / "records.jsonl").read_text().splitlines() if line.strip()]
        return cls(
            scenario=head["scenario"],
            backend=head["backend"],
            design=head["design"],
            seed=head["seed"],
            topology=head.get("topology", ""),
            summary=head["summary"],
            records=records,
            versions=head.get("versions") or {"labtwin": None},
        )

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in self.summary.items() if not isinstance(v, (dict, list))
        )
        return (
            f"<b>{self.scenario}</b> ({self.backend}, seed {self.seed}) "
            f"<code>{', '.join(f'{k}={v}' for k, v in self.design.items())}</code><table>{rows}</table>"
        )


def percentile(values: list, q: float) -> float:
    """Linear-interpolated percentile (numpy's default), *values* sorted."""
    if len(values) == 1:
        return values[0]
    pos = (len(values) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (pos - low)


def record_line(record) -> str:
    payload = {"type": _TYPE_OF[type(record)], **asdict(record)}
    return to_json(payload)


def parse_record(line: str):
    data = json.loads(line)
    cls = RECORD_TYPES[data.pop("type")]
    return cls(**data)


def to_json(data, indent: Optional[int] = None) -> str:
    """Deterministic JSON: sorted keys; IPs, paths and other objects as strings."""
    return json.dumps(data, sort_keys=True, indent=indent, default=_jsonable, separators=None if indent else (",", ":"))


def _jsonable(value):
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value, key=str) if isinstance(value, (set, frozenset)) else list(value)
    return str(value)


def collect_versions(backend: str) -> dict[str, Optional[str]]:
    """Versions of the Python side a run ran on: labtwin, Python, SimPy, kernel (and scapy, mininet for an
    emulation). Runs no program: the emulation adds what it ran on (OVS, iptables backend, the machine's
    key) itself (``labtwin.api.emulate``), so the ground floor knows nothing of OVS."""
    versions = {
        "labtwin": _package_version("labtwin"),
        "python": platform.python_version(),
        "simpy": _package_version("simpy"),
        "kernel": platform.release(),
    }
    if backend == "emulation":
        versions.update(scapy=_package_version("scapy"), mininet=_package_version("mininet"))
    return versions


@functools.lru_cache(maxsize=None)  # read from the installed metadata once per process, not once per run
def _package_version(name: str) -> Optional[str]:
    from importlib import metadata  # 40 ms to import: only runs record versions

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
