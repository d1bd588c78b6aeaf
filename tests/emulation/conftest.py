"""Emulation test helpers: skip live tests only where root or OVS is truly absent."""

import fcntl
from pathlib import Path

import pytest

from labtwin.api import emulation_possible
from labtwin.emulation.snapshot import machine_state


def live_reason():
    """Why live emulation cannot run here, or None when it can: ``labtwin doctor``'s answer."""
    ok, reasons = emulation_possible()
    return None if ok else "; ".join(reasons)


#: Live tests compare machine-wide state before and after, so two of them (from
#: two pytest processes, e.g. two developers' runs on one machine) must not
#: overlap. Ad-hoc emulation while tests run: `flock /run/labtwin/live-tests.lock CMD`.
LIVE_LOCK = Path("/run/labtwin/live-tests.lock")


@pytest.fixture
def live():
    reason = live_reason()
    if reason:
        pytest.skip(reason)
    LIVE_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(LIVE_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


@pytest.fixture
def ledger_dir(tmp_path, monkeypatch):
    path = tmp_path / "ledgers"
    monkeypatch.setenv("LABTWIN_LEDGER_DIR", str(path))
    return path


@pytest.fixture
def snapshot():
    return machine_state
