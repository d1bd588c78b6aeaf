"""This repo's machine-wide lock for live emulation (see tests/emulation/conftest.py).

Not part of the design checks: the live emulation tests compare the whole
machine's state before and after, so an emulated design check from another
pytest process on this machine must not run in between.
"""

import fcntl
from pathlib import Path

import pytest

LIVE_LOCK = Path("/run/labtwin/live-tests.lock")


@pytest.fixture(autouse=True)
def _one_live_emulation_at_a_time(request):
    if request.node.get_closest_marker("emulation") is None:
        yield
        return
    LIVE_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(LIVE_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield
