"""A twin of your own cloud: import a deployment from what Neutron's API answers (issue 17, first slice).

``labtwin import --from DIR --out topologies/mycloud.yaml`` reads the JSON files in DIR (:mod:`.dump` says
which), builds a topology in labtwin's format (:mod:`.build` says how), checks it with labtwin's own loader,
and writes it with ``import-report.md`` beside it: what could not be expressed, per object, what Neutron
creates by itself, what was assumed, which names were mapped. Any problem (a malformed dump, a reference
to nothing, a topology labtwin's loader refuses) is a located error and nothing is written.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from labtwin.description import Cloud
from labtwin.description.errors import CloudError
from labtwin.description.loader import cloud_of
from labtwin.description.names import is_safe_name

from .build import build_topology
from .dump import DumpError, read_dump
from .report import Report

REPORT_NAME = "import-report.md"


@dataclass(frozen=True)
class Imported:
    """An imported cloud: the topology (labtwin's format), its YAML text, the loaded Cloud, the report and its
    text (``import-report.md``)."""

    topology: dict[str, Any]
    text: str
    cloud: Cloud
    report: Report
    report_text: str


SECTIONS = ("hosts", "networks", "segments", "subnets", "routers", "security_groups", "ports", "floatingips")


def import_cloud(source: Path, name: str | None = None, anonymize: bool = False) -> Imported:
    """Read the dump in *source* and build its topology (*anonymize*: see :mod:`.anonymize`); a
    :class:`DumpError` with every problem, located."""
    source = Path(source)
    dump = read_dump(source)
    topology, report = build_topology(dump, name or _cloud_name(source))
    counts = {kind: len(topology.get(kind, [])) for kind in SECTIONS}
    origin: Path | str = source
    if anonymize:
        from .anonymize import anonymize as anonymized

        origin = "an anonymized dump"
        topology, report_text = anonymized(topology, report.markdown(origin, counts, renamed=False))
        topology["name"] = name or topology["name"]
    else:
        report_text = report.markdown(str(source), counts)
    text, line_of = _yaml(topology, origin)
    try:
        cloud = cloud_of(topology, f"<the topology imported from {origin}>", line_of)
    except CloudError as exc:
        raise DumpError(
            [f"{origin}: labtwin's loader refuses the cloud this dump describes:", *(f"  {p}" for p in exc.problems)]
        ) from None
    return Imported(topology, text, cloud, report, report_text)


def write(imported: Imported, out: Path) -> tuple[Path, Path]:
    """Write the topology to *out* and the report beside it, each through a temporary file and a rename."""
    out = Path(out)
    report = out.with_name(REPORT_NAME)
    out.parent.mkdir(parents=True, exist_ok=True)
    for path, text in ((out, imported.text), (report, imported.report_text)):
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text(text)
        os.replace(partial, path)
    return out, report


def _cloud_name(source: Path) -> str:
    name = source.resolve().name
    return name[:15] if is_safe_name(name[:15]) else "imported"


def _yaml(topology: dict[str, Any], source: Path | str) -> tuple[str, Callable[[tuple], int]]:
    """The topology as YAML, one object per line (a JSON flow mapping, which YAML reads as it is), and where a
    field path is in it. Written by the C JSON encoder: 20,000 ports take milliseconds where a YAML emitter
    takes seconds; a problem in an object is located at its line."""
    lines = [
        f"# Imported by `labtwin import` from {source}: Neutron's objects in labtwin's format.",
        f"# What could not be expressed, and what was assumed: {REPORT_NAME} beside this file.",
    ]
    where: dict[tuple, int] = {}
    for key, value in topology.items():
        where[(key,)] = len(lines) + 1
        if isinstance(value, list):
            lines.append(f"{key}:")
            for i, item in enumerate(value):
                where[(key, i)] = len(lines) + 1
                lines.append(f"  - {json.dumps(item, ensure_ascii=False)}")
        else:
            lines.append(f"{key}: {json.dumps(value, ensure_ascii=False)}")

    def line_of(loc: tuple) -> int:
        return where.get(tuple(loc[:2]), where.get(tuple(loc[:1]), 0))

    return "\n".join(lines) + "\n", line_of


__all__ = ["CloudError", "DumpError", "Imported", "import_cloud", "write", "REPORT_NAME"]
