"""The conformance suite: outcomes Neutron's own documentation states, checked against labtwin's answers.

A case is a folder (``tests/conformance/<NN-name>/``) holding ``topology.yaml``, the smallest cloud
that reproduces a documented setup, and ``case.yaml``: the page and section it comes from, a quote of
the documented outcome, a ``code_note`` where Neutron's code decides or contradicts the page (the code
wins), the ``kind`` and what is ``expect``-ed:

- ``addresses``: the addresses each port is given (exact, or ``pool:START-END`` where Neutron's IPAM picks
  at random among the first free ones), the ports whose allocation is deferred, floating IPs;
- ``refusal``: the object Neutron refuses and the exception it names (``status`` is kept as documentation);
- ``security_groups``: which ports are filtered and in which groups, how many rules each group ends with,
  and verdicts (src, dst, protocol, port, ethertype; ``src_ip`` sends from an allowed address pair);
- ``path``: a documented packet walk through the ``dvr`` scenario's model: the class, router mode,
  firewall, whether it crosses the network node, NAT, the documented steps (host, namespace, device, in
  order), the legs between hosts (network type, segmentation id, MACs where the code states them) and
  the routers that decrement the TTL.

A case that labtwin cannot answer yet says so with ``known_gap: <why>``: it is reported as a gap, never as
a pass, and :func:`check` still runs it so a gap that closes is noticed (:attr:`Result.status`
``gap-closed``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

#: Where the suite lives in the repository.
SUITE = Path(__file__).resolve().parents[2] / "tests" / "conformance"
KINDS = ("addresses", "refusal", "security_groups", "path")


class CaseError(ValueError):
    """A case file that cannot be read: names the file and the field."""


@dataclass(frozen=True)
class Case:
    name: str
    folder: Path
    title: str
    kind: str
    page: str
    section: str
    url: str
    expect: dict
    knobs: dict = field(default_factory=dict)
    known_gap: Optional[str] = None

    @property
    def topology(self) -> Path:
        return self.folder / "topology.yaml"

    @property
    def source(self) -> str:
        return f"{self.page}#{self.section}"


@dataclass(frozen=True)
class Result:
    """What labtwin answered for one case: differences from the documented outcome, and what was not
    checked (documented details labtwin does not model, e.g. patch ports), each named."""

    case: Case
    differences: tuple[str, ...]
    not_checked: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.differences

    @property
    def status(self) -> str:
        if self.case.known_gap is None:
            return "pass" if self.passed else "FAIL"
        return "gap-closed" if self.passed else "known gap"


def load_case(folder: Path) -> Case:
    path = folder / "case.yaml"
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CaseError(f"{path}: cannot read: {exc}") from exc
    if not isinstance(data, dict):
        raise CaseError(f"{path}: a case is a mapping")
    source = _field(data, "source", dict, path)
    kind = _field(data, "kind", str, path)
    if kind not in KINDS:
        raise CaseError(f"{path}: kind: {kind!r} is not one of {', '.join(KINDS)}")
    if not (folder / "topology.yaml").is_file():
        raise CaseError(f"{folder / 'topology.yaml'}: missing (every case has its topology)")
    return Case(
        name=folder.name,
        folder=folder,
        title=_field(data, "title", str, path),
        kind=kind,
        page=_field(source, "page", str, path, "source.page"),
        section=_field(source, "section", str, path, "source.section"),
        url=_field(source, "url", str, path, "source.url"),
        expect=_field(data, "expect", dict, path),
        knobs=dict(data.get("knobs") or {}),
        known_gap=data.get("known_gap"),
    )


def _field(data: dict, key: str, kind: type, path: Path, name: str = "") -> Any:
    if key not in data:
        raise CaseError(f"{path}: {name or key}: missing")
    if not isinstance(data[key], kind):
        raise CaseError(f"{path}: {name or key}: expected {kind.__name__}, got {type(data[key]).__name__}")
    return data[key]


def load_cases(root: Path = SUITE) -> list[Case]:
    """Every case under *root*, in folder order."""
    folders = sorted(p for p in Path(root).iterdir() if (p / "case.yaml").is_file())
    if not folders:
        raise CaseError(f"{root}: no case folders (each holds case.yaml and topology.yaml)")
    return [load_case(folder) for folder in folders]


def check(case: Case) -> Result:
    """labtwin's answer to *case*, compared with the documented outcome."""
    from . import checks

    differences, not_checked = checks.BY_KIND[case.kind](case)
    return Result(case, tuple(differences), tuple(not_checked))


def run(root: Path = SUITE):
    """The whole suite as a table: one row per case with its source, status and differences."""
    import pandas as pd

    rows = []
    for case in load_cases(root):
        result = check(case)
        rows.append(
            {
                "case": case.name,
                "kind": case.kind,
                "source": case.source,
                "status": result.status,
                "differences": "; ".join(result.differences),
                "known gap": case.known_gap or "",
            }
        )
    return pd.DataFrame(rows)


__all__ = ["Case", "CaseError", "KINDS", "Result", "SUITE", "check", "load_case", "load_cases", "run"]
