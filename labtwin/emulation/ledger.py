"""The ledger: what a run may have created, written down before it is created.

One JSON-lines file per run under ``/run/labtwin/ledgers/<run-id>.jsonl``
(``/var/lib/labtwin/ledgers`` when ``/run`` is missing; ``$LABTWIN_LEDGER_DIR``
overrides both). Each line is fsync'ed before the runner creates the thing it
names, so after any death, even SIGKILL, the file lists every namespace,
link, bridge, OVS bridge/port, rule set and process the run may have left.

Removal (:func:`remove`) walks the items in reverse order and tolerates
things already gone:

- ``netns`` / ``process`` items carry the exact argv (``match``) of the
  process that holds the namespace or does the work (Mininet's ``mnexec``
  shells, tcpdump); they are found by that argv in ``/proc`` and killed.
  Nothing else is ever signalled.
- items with a ``parent`` namespace that the ledger also lists (links,
  bridges, iptables/ipset state inside a host's namespace) go with that
  namespace: the kernel destroys a network namespace's devices and netfilter
  state when its last process exits.
- other items (root-namespace veth ends, OVS bridges) have an ``undo`` argv.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Protocol, Sequence

from .programs import MissingProgram


class Undoer(Protocol):
    """What teardown needs of a runner (:class:`~labtwin.emulation.runner.Runner` is one): the runner
    ledgers what it creates, so the ledger takes it as an argument rather than importing it."""

    def undo(self, argv: Sequence[str], what: str) -> Any: ...


ROOT = "root"


@dataclass(frozen=True)
class Item:
    """One thing a run creates: what it is, where, and how to remove it."""

    key: str
    kind: str
    name: str
    where: str = ROOT
    parent: Optional[str] = None
    undo: Optional[tuple[str, ...]] = None
    match: Optional[tuple[str, ...]] = None

    @classmethod
    def from_json(cls, data: dict) -> "Item":
        for name in ("undo", "match"):
            if data.get(name) is not None:
                data[name] = tuple(data[name])
        return cls(**data)


def ledger_dir() -> Path:
    env = os.environ.get("LABTWIN_LEDGER_DIR")
    if env:
        return Path(env)
    base = Path("/run") if Path("/run").is_dir() else Path("/var/lib")
    return base / "labtwin" / "ledgers"


class Ledger:
    """Append-only record of one run's creations (fsync per append)."""

    def __init__(self, run_id: str, directory: Optional[Path] = None) -> None:
        self.run_id = run_id
        self.path = Path(directory or ledger_dir()) / f"{run_id}.jsonl"
        self.items: list[Item] = []
        self.pids: dict[str, int] = {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = os.getpid()
        self._write(
            [
                {
                    "type": "run",
                    "run_id": run_id,
                    "owner_pid": me,
                    "owner_start": process_start(me),
                    "created": time.time(),
                }
            ],
            mode="x",
        )

    def append(self, items: Iterable[Item]) -> None:
        items = list(items)
        if not items:
            return
        self.items.extend(items)
        self._write([{"type": "item", **asdict(i)} for i in items])

    def note_pid(self, item: Item, pid: int) -> None:
        self.pids[item.key] = pid
        self._write([{"type": "pid", "key": item.key, "pid": pid}])

    def teardown(self, runner: Undoer, handles: Optional[dict[str, Callable[[], None]]] = None) -> list[str]:
        """Remove every item (reverse order, undo steps through *runner*), then delete the ledger file."""
        done = remove(self.items, self.pids, handles or {}, runner)
        self.close()
        return done

    def close(self) -> None:
        self.path.unlink(missing_ok=True)

    def _write(self, rows: list[dict], mode: str = "a") -> None:
        with open(self.path, mode) as fh:
            fh.write("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
            fh.flush()
            os.fsync(fh.fileno())


def read(path: Path) -> tuple[dict, list[Item], dict[str, int]]:
    """A ledger file's header, items and noted pids (a torn last line is ignored)."""
    header: dict = {}
    items: list[Item] = []
    pids: dict[str, int] = {}
    for line in Path(path).read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        kind = row.pop("type", None)
        if kind == "run":
            header = row
        elif kind == "item":
            items.append(Item.from_json(row))
        elif kind == "pid":
            pids[row["key"]] = int(row["pid"])
    return header, items, pids


def remove(
    items: list[Item], pids: dict[str, int], handles: dict[str, Callable[[], None]], runner: Undoer
) -> list[str]:
    """Remove *items* in reverse order (undo steps through *runner*); one line per item saying what happened."""
    namespaces = {i.key for i in items if i.kind == "netns"}
    table = process_table()
    report: list[str] = []
    for item in reversed(items):
        label = f"{item.kind} {item.name} ({item.where})"
        if item.match is not None:
            gone = _end_process(item, pids.get(item.key), table, handles.get(item.key))
            report.append(f"{'removed' if gone else 'already gone'}: {label}")
        elif item.parent in namespaces:
            report.append(f"removed with namespace {item.parent}: {label}")
        elif item.undo:
            try:
                result = runner.undo(item.undo, what=f"undo {label}")
            except MissingProgram as exc:  # keep removing the rest; say loudly what stays
                report.append(f"NOT removed: {label}: {exc}")
                continue
            if item.kind == "link" and item.where == ROOT:
                _wait_link_gone(item.name)
            report.append(f"{'removed' if result.ok else 'already gone'}: {label}")
        else:
            report.append(f"nothing to undo: {label}")
    return report


def _end_process(
    item: Item, pid: Optional[int], table: dict[int, tuple[str, ...]], handle: Optional[Callable[[], None]]
) -> bool:
    """End the process running exactly ``item.match``; True if one was running.

    The noted pid when the run noted one (another run may run the same argv);
    otherwise (killed between ledgering and starting it) any process with that
    exact argv -- every argv a run starts carries its run id or its own paths.
    """
    if pid is not None:
        candidates = {pid} if table.get(pid) == item.match else set()
    else:
        candidates = {p for p, argv in table.items() if argv == item.match}
    if handle is not None:
        handle()
    for p in candidates:
        if _cmdline(p) == item.match:  # re-check: never signal a recycled pid
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
    _wait_gone(candidates)
    return bool(candidates)


def _wait_gone(pids: set[int], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    for p in pids:
        while time.monotonic() < deadline and _cmdline(p) is not None and not _zombie(p):
            time.sleep(0.005)


def _wait_link_gone(name: str, timeout: float = 3.0) -> None:
    """Root links can outlive their deletion briefly (namespace cleanup is asynchronous)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and Path("/sys/class/net", name).exists():
        time.sleep(0.01)


def process_table() -> dict[int, tuple[str, ...]]:
    """pid -> argv of every process on the machine (from /proc)."""
    table = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            argv = _cmdline(int(entry.name))
            if argv:
                table[int(entry.name)] = argv
    return table


def _cmdline(pid: int) -> Optional[tuple[str, ...]]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return tuple(part.decode(errors="replace") for part in raw.split(b"\0")[:-1])


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def process_start(pid: int) -> Optional[int]:
    """The start time of *pid* in clock ticks (with the pid, identifies a process)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def owner_alive(header: dict) -> bool:
    """True while the process that wrote the ledger still runs (same pid and start time)."""
    pid, start = header.get("owner_pid"), header.get("owner_start")
    return pid is not None and start is not None and process_start(int(pid)) == start
