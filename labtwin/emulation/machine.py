"""What machine is this? The fingerprint a calibration carries (DESIGN.md rule 7).

Timing fitted on one machine says nothing about another: a calibration
records the CPU model, the number of cores, the kernel, the Open vSwitch
version and the iptables backend it was measured with, and the twin compares
timing only against a calibration whose fingerprint equals this machine's.
Reading a version that fails is an error naming the program, never a blank.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
from pathlib import Path

from .programs import require


def fingerprint() -> dict[str, str]:
    """This machine's timing-relevant facts, as plain strings."""
    return {
        "cpu_model": cpu_model(),
        "cores": str(os.cpu_count()),
        "kernel": platform.release(),
        "ovs": _version_line(("ovs-vswitchd", "--version")).rsplit(" ", 1)[-1],
        "iptables_backend": iptables_backend(),
    }


def machine_key(facts: dict[str, str]) -> str:
    """A short stable name for a fingerprint (a cache file name).

    >>> machine_key({"cores": "2"}) == machine_key({"cores": "2"}) != machine_key({"cores": "4"})
    True
    """
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:12]


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    for line in cpuinfo.read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "cpu model"):
            return value.strip()
    return platform.machine()  # some ARM kernels name no model; the architecture is the best we have


def iptables_backend() -> str:
    """``nf_tables`` or ``legacy``, from ``iptables --version`` (e.g. ``iptables v1.8.9 (nf_tables)``)."""
    line = _version_line(("iptables", "--version"))
    found = re.search(r"\((\w+)\)", line)
    if not found:
        raise RuntimeError(f"iptables --version printed no backend: {line!r}")
    return found.group(1)


def _version_line(argv: tuple[str, ...]) -> str:
    require(argv)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(argv)} failed (exit {done.returncode}): {done.stderr.strip()}")
    return lines[0]
