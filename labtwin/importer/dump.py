"""Reading a dump: a directory of the JSON Neutron's API answers, each file checked and every object located.

An operator without special rights can save what ``GET /v2.0/<collection>`` answers, e.g.
``openstack --os-cloud mine network list`` is not enough (its table leaves out the provider fields), but
``curl -H "X-Auth-Token: $TOKEN" $NEUTRON/v2.0/networks > networks.json`` is; ``openstack ... show -f json``
style single objects (``{"router": {...}}``) are read too. Each file holds one collection (its top-level key
names it: ``networks``, ``segments``, ``subnets``, ``ports``, ``routers``, ``security_groups``,
``security_group_rules``, ``floatingips``, ``agents``) or one object of such a kind; the file names do not
matter. A file that is not JSON, is cut short, or holds something else is a located error (the file, the line
and column or the JSON path, what is wrong) and nothing is imported.

Simplification (stated): the ``openstack ... list -f json`` tables (a JSON list of rows with column titles)
are recognised and refused with a message saying which API call gives the same content; reading them is the
next slice of issue 17.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Collection key -> the kind of one object in it (its key in a ``show`` answer).
COLLECTIONS = {
    "networks": "network",
    "segments": "segment",
    "subnets": "subnet",
    "ports": "port",
    "routers": "router",
    "security_groups": "security_group",
    "security_group_rules": "security_group_rule",
    "floatingips": "floatingip",
    "agents": "agent",
}
KINDS = {kind: collection for collection, kind in COLLECTIONS.items()}

#: What each kind must carry for the import to place it (the rest has Neutron's defaults).
REQUIRED = {
    "network": ("id",),
    "segment": ("id", "network_id", "network_type"),
    "subnet": ("id", "network_id", "cidr"),
    "port": ("id", "network_id"),
    "router": ("id",),
    "security_group": ("id",),
    "security_group_rule": ("id", "security_group_id", "direction"),
    "floatingip": ("id", "floating_network_id"),
    "agent": ("id", "agent_type", "host"),
}


class DumpError(ValueError):
    """Problems found in a dump, each located (``file: $.ports[3].network_id: what is wrong``)."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Item:
    """One Neutron object of a dump and where it was read (``ports.json: $.ports[3]``)."""

    kind: str
    data: dict[str, Any]
    where: str

    def at(self, path: str) -> str:
        """Where a field of this object is: ``ports.json: $.ports[3].fixed_ips[0]``."""
        return f"{self.where}.{path}" if path else self.where


@dataclass
class Dump:
    """Every object of a dump by kind, in file order (files in name order), and the files read."""

    items: dict[str, list[Item]] = field(default_factory=lambda: {kind: [] for kind in KINDS})
    files: list[Path] = field(default_factory=list)

    def of(self, kind: str) -> list[Item]:
        return self.items[kind]


def read_dump(directory: Path) -> Dump:
    """Every JSON file of *directory*, checked; :class:`DumpError` with every problem found, located."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DumpError([f"{directory}: not a directory (labtwin import --from DIR reads the JSON files in DIR)"])
    paths = sorted(directory.glob("*.json"))
    if not paths:
        raise DumpError([f"{directory}: no *.json file (save what GET /v2.0/networks, /ports, ... answer there)"])
    dump, problems = Dump(), []
    for path in paths:
        problems += _read_file(path, dump)
    for kind, items in dump.items.items():
        for item in items:
            problems += [f"{item.where}: no {key}" for key in REQUIRED[kind] if item.data.get(key) in (None, "")]
    if problems:
        raise DumpError(problems)
    return dump


def _read_file(path: Path, dump: Dump) -> list[str]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        return [f"{path}:{exc.lineno}:{exc.colno}: not JSON ({exc.msg}): a dump cut short or not saved as JSON"]
    except (OSError, UnicodeDecodeError) as exc:
        return [f"{path}: cannot read it ({exc})"]
    dump.files.append(path)
    if isinstance(data, list):
        return [
            f"{path}: $: a table (a JSON list of rows), as `openstack ... list -f json` prints it: not read yet; "
            "save what the API answers instead (GET /v2.0/<collection>: an object with one key, e.g. "
            '{"networks": [...]})'
        ]
    if not isinstance(data, dict) or len(data) != 1:
        keys = ", ".join(sorted(data)) if isinstance(data, dict) else type(data).__name__
        return [
            f"{path}: $: expected one top-level key naming a Neutron collection ({', '.join(COLLECTIONS)}); got {keys}"
        ]
    ((key, value),) = data.items()
    if key in COLLECTIONS:
        if not isinstance(value, list):
            return [f"{path}: $.{key}: expected a list of {key}, got {type(value).__name__}"]
        kind, rows = COLLECTIONS[key], [(f"$.{key}[{i}]", row) for i, row in enumerate(value)]
    elif key in KINDS:
        kind, rows = key, [(f"$.{key}", value)]
    else:
        return [f"{path}: $.{key}: not a Neutron collection labtwin imports ({', '.join(COLLECTIONS)})"]
    problems = []
    for where, row in rows:
        if not isinstance(row, dict):
            problems.append(f"{path}: {where}: expected an object, got {type(row).__name__}")
        else:
            dump.items[kind].append(Item(kind, row, f"{path.name}: {where}"))
    return problems


__all__ = ["COLLECTIONS", "Dump", "DumpError", "Item", "read_dump"]
