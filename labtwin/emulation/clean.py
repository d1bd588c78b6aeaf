"""``labtwin clean``: remove what dead runs' ledgers list, and nothing else.

After a run is killed with SIGKILL its ledger stays behind. :func:`clean`
reads each ledger whose owner process is gone, removes exactly the items it
lists (see :mod:`labtwin.emulation.ledger`), then deletes the ledger. Ledgers
of runs still alive are left alone. Unlike ``mn -c`` it never touches
anything a ledger does not name. Removing OVS ports reaches every bridge
(:mod:`.ovs_lock`), so it waits until no other run is measuring.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from .ledger import ledger_dir, owner_alive, read, remove
from .ovs_lock import OvsLock
from .runner import Runner


def clean(run_id: Optional[str] = None, directory: Optional[Path] = None) -> list[str]:
    """Remove the leftovers of dead runs (all, or the one named *run_id*); say what was done."""
    base = Path(directory or ledger_dir())
    if not base.is_dir():
        return []
    pattern = f"{run_id}.jsonl" if run_id else "*.jsonl"
    report: list[str] = []
    lock = None
    try:
        for path in sorted(base.glob(pattern)):
            header, items, pids = read(path)
            if owner_alive(header):
                report.append(f"skipped run {path.stem}: its process {header.get('owner_pid')} is still running")
                continue
            if lock is None:
                lock = OvsLock()
                lock.change()
            report.extend(f"run {path.stem}: {line}" for line in remove(items, pids, {}, Runner()))
            path.unlink(missing_ok=True)
    finally:
        if lock is not None:
            lock.release()
    return report


def pending(directory: Optional[Path] = None) -> list[str]:
    """Run ids that have a ledger (running now, or killed before teardown)."""
    base = Path(directory or ledger_dir())
    return sorted(p.stem for p in base.glob("*.jsonl")) if base.is_dir() else []
