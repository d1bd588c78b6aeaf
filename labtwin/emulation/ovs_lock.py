"""Runs side by side: a run changes Open vSwitch only while no other run measures.

Each run has its own names (:mod:`.naming`), namespaces, bridges, ports,
captures, processes and ledger. But Open vSwitch is one daemon for the whole
machine, and two things a run does to it reach every other run's bridges:

- removing a port (teardown, ``labtwin clean``, a namespace whose veth goes)
  makes *every* bridge forget the MACs learned on that port (ofproto-dpif's
  ``bundle_flush_macs(bundle, all_ofprotos=true)``, meant for VM migration).
  Two runs of one topology have the same MACs and VLANs, so one run's
  teardown made the other's bridges forget where its VMs and routers are:
  its next probes flooded to every host (``labtwin twin dvr`` next to
  ``--set router=legacy``: a path through every device, the network-node
  share 0.399 instead of 0.379);
- adding or removing bridges and ports stalls forwarding on all bridges (the
  userspace datapath forwards veth ports in ovs-vswitchd's main thread, which
  also does the reconfiguring): measured here, a ping through an untouched
  bridge went from p99 2 ms to 85 ms while another bridge got 48 ports.

So a run holds this machine-wide lock exclusively to bring up and to tear
down, and shared while it measures: measurements of several runs may overlap,
but no run reconfigures OVS while another one measures. The lock is a
``flock`` (released by the kernel when its holder dies, even by SIGKILL) on
``/run/labtwin/ovs.lock``; acquiring polls, so a wait has a limit and names
the processes that hold the lock. flock converts a lock by dropping the old
one first, so a run goes from shared to alone only once it is done measuring.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import Optional

#: How long a run waits for its turn (another run's measurement can take minutes: a calibration).
WAIT_S = 900.0
_POLL_S = 0.02


class OvsLockTimeout(RuntimeError):
    """Waited too long for the other runs on this machine."""


def lock_path() -> Path:
    """The machine-wide lock file (``/var/lib`` where there is no ``/run``, as for ledgers)."""
    base = Path("/run") if Path("/run").is_dir() else Path("/var/lib")
    return base / "labtwin" / "ovs.lock"


class OvsLock:
    """One run's hold on the machine's Open vSwitch: ``change()`` (exclusive), ``measure()`` (shared).

    Each instance opens the file itself, so two runs in one process (threads)
    contend like two processes do.
    """

    def __init__(self, path: Optional[Path] = None) -> None:
        self.path = Path(path or lock_path())
        self._fh = None
        self.waited_s = 0.0

    def change(self, wait_s: float = WAIT_S) -> None:
        """Hold the lock alone (bring-up, teardown, clean): no other run measures meanwhile."""
        self._take(fcntl.LOCK_EX, "change Open vSwitch", wait_s)

    def measure(self, wait_s: float = WAIT_S) -> None:
        """Hold the lock shared with other measuring runs (nobody changes OVS meanwhile)."""
        self._take(fcntl.LOCK_SH, "measure", wait_s)

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()  # closing drops the flock
            self._fh = None

    def _take(self, mode: int, what: str, wait_s: float) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a")
        start = time.monotonic()
        while True:
            try:
                fcntl.flock(self._fh.fileno(), mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() - start > wait_s:
                    raise OvsLockTimeout(
                        f"waited {wait_s:.0f} s to {what}: other labtwin runs hold {self.path} "
                        f"(pids {', '.join(map(str, holders(self.path))) or 'unknown'}); "
                        "if one is stuck, end it and run `labtwin clean`"
                    ) from None
                time.sleep(_POLL_S)
        self.waited_s += time.monotonic() - start


def holders(path: Path) -> list[int]:
    """Pids holding a flock on *path* (from ``/proc/locks``); empty when unreadable."""
    try:
        inode = os.stat(path).st_ino
        rows = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return []
    pids = []
    for row in rows:
        parts = row.split()
        if "FLOCK" in parts and len(parts) >= 6 and parts[-3].endswith(f":{inode}") and parts[-4].isdigit():
            pids.append(int(parts[-4]))
    return sorted(set(pids))
