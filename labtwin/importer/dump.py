"""Reading a dump: a directory of the JSON Neutron's API answers, each file checked and every object located.

An operator without special rights can save what ``GET /v2.0/<collection>`` answers, e.g.
``openstack --os-cloud mine network list`` is not enough (its table leaves out the provider fields), but
``curl -H "X-Auth-Token: $TOKEN" $NEUTRON/v2.0/networks > networks.json`` is; ``openstack ... show -f json``
style single objects (``{"router": {...}}``) are read too. Each file holds one collection (its top-level key
names it: ``networks``, ``segments``, ``subnets``, ``ports``, ``routers``, ``security_groups``,
``security_group_rules``, ``floatingips``, ``agents``) or one object of such a kind; the file names do not
matter. A file that is not JSON, is cut short, or holds something else is a located error (the file, the line
and column or the JSON path, what is wrong) and nothing is imported.

The ``openstack ... list -f json`` tables (a JSON list of rows with column titles) and ``openstack router
show -f json`` are read too (:mod:`.tables`); they carry less than the API, and the report says what.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .tables import TABLES, router_show, table_of

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
    "hypervisors": "hypervisor",  # Nova's GET /os-hypervisors
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
    "hypervisor": ("id", "hypervisor_hostname"),
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
    #: read from an ``openstack ... -f json`` table (which carries less than the API)
    table: bool = False

    def at(self, path: str) -> str:
        """Where a field of this object is: ``ports.json: $.ports[3].fixed_ips[0]``."""
        return f"{self.where}.{path}" if path else self.where


@dataclass
class Dump:
    """Every object of a dump by kind, in file order (files in name order), and the files read."""

    items: dict[str, list[Item]] = field(default_factory=lambda: {kind: [] for kind in KINDS})
    files: list[Path] = field(default_factory=list)
    #: what the files lack, per file (an ``openstack ... -f json`` table carries less than the API)
    notes: list[str] = field(default_factory=list)

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
    _merge_repeated(dump)
    _networks_of_ports(dump)
    for kind, items in dump.items.items():
        for item in items:
            problems += [f"{item.where}: no {key}" for key in REQUIRED[kind] if item.data.get(key) in (None, "")]
    if problems:
        raise DumpError(problems)
    return dump


def _read_table(path: Path, rows: list, dump: Dump) -> list[str]:
    """An ``openstack ... list -f json`` table (:mod:`.tables`), its rows read as the API's fields."""
    table = table_of(rows)
    if table is None:
        known = "; ".join(command for command, *_ in TABLES)
        return [f"{path}: $: a JSON list, but not a table labtwin reads (the `-f json` output of: {known})"]
    command, kind, required, reader, lacks = table
    problems = []
    for i, row in enumerate(rows):
        missing = sorted(required - set(row))
        if missing:
            problems.append(f"{path}: $[{i}]: no {missing[0]!r} column (an `openstack {command} -f json` table)")
            continue
        try:
            dump.items[kind].append(Item(kind, reader(row), f"{path.name}: $[{i}]", table=True))
        except (KeyError, ValueError) as exc:
            problems.append(f"{path}: $[{i}]: {exc!r} in a row of an `openstack {command} -f json` table")
    dump.notes.append(f"{path.name}: `openstack {command} -f json`" + (f": {lacks}" if lacks else ""))
    return problems


def _merge_repeated(dump: Dump) -> None:
    """One object per id: an object in two files (``router list`` and ``router show``, or a collection and a
    ``show`` answer) is one, its fields merged in file order (a later file's non-empty value wins)."""
    for kind, items in dump.items.items():
        first: dict[str, Item] = {}
        merged: list[Item] = []
        for item in items:
            key = str(item.data.get("id"))
            if key in first and item.data.get("id") is not None:
                first[key].data.update({k: v for k, v in item.data.items() if v not in (None, "", [], {})})
                continue
            first[key] = Item(item.kind, dict(item.data), item.where, item.table)
            merged.append(first[key])
        dump.items[kind] = merged


def _networks_of_ports(dump: Dump) -> None:
    """A port read from a table has no network: the network of the subnet of its first fixed IP."""
    network_of = {str(s.data["id"]): s.data.get("network_id") for s in dump.of("subnet")}
    for port in dump.of("port"):
        fixed = port.data.get("fixed_ips") or []
        if port.table and not port.data.get("network_id") and fixed and isinstance(fixed[0], dict):
            port.data["network_id"] = network_of.get(str(fixed[0].get("subnet_id")))


def _read_file(path: Path, dump: Dump) -> list[str]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        return [f"{path}:{exc.lineno}:{exc.colno}: not JSON ({exc.msg}): a dump cut short or not saved as JSON"]
    except (OSError, UnicodeDecodeError) as exc:
        return [f"{path}: cannot read it ({exc})"]
    dump.files.append(path)
    if isinstance(data, list):
        return _read_table(path, data, dump)
    if isinstance(data, dict) and router_show(data) is not None:
        dump.items["router"].append(Item("router", data, f"{path.name}: $"))
        dump.notes.append(f"{path.name}: `openstack router show -f json`")
        return []
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
