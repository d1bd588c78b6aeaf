"""Is emulation possible here? Each reason names what is missing and what to do.

:func:`emulation_possible` only looks: root, every program declared in
:mod:`~labtwin.emulation.programs` for emulation, the Python modules, a running Open vSwitch.
:func:`checks` also checks the programs only the tests need (the browser), which ``labtwin doctor`` requires.
It never starts or changes anything, so any caller (``labtwin doctor``, the
pytest plugin, the demo, an emulation's preflight) may ask it.
:func:`start_ovs` is the one explicit fix (``labtwin doctor --fix``, ``make setup``):
this machine has no systemd, so Open vSwitch is started with ``ovs-ctl``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
from dataclasses import dataclass

from .programs import OVS_CTL, PROGRAMS, MissingProgram, program

PYTHON_MODULES = (("mininet", "pip install mininet==2.3.0.dev6"), ("scapy", "pip install scapy"))


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    what: str
    ok: bool
    detail: str
    #: False for what only the tests need (the browser): reported, required by ``labtwin doctor``, but
    #: emulation is possible without it.
    emulation: bool = True


def checks() -> list[Check]:
    """Everything emulation needs, one check each, in the order a person fixes them."""
    found = [
        Check(
            "user",
            os.geteuid() == 0,
            "root" if os.geteuid() == 0 else "not root: run as root (namespaces, veth and OVS need it)",
        )
    ]
    for prog in (p for p in PROGRAMS if not p.unpacked):  # OVN's: ovn_check, reported apart
        path = prog.path()
        found.append(
            Check(
                prog.name,
                path is not None,
                path or f"missing: apt-get install {prog.package} (needed for {prog.needed_for})",
                emulation=prog.emulation,
            )
        )
    for module, hint in PYTHON_MODULES:
        present = importlib.util.find_spec(module) is not None
        found.append(Check(f"python: {module}", present, "importable" if present else f"missing: {hint}"))
    running = program("ovs-vsctl").path() is not None and ovs_running()
    found.append(
        Check(
            "Open vSwitch running",
            running,
            "ovs-vsctl show answers" if running else "not running: `labtwin doctor --fix` (or make setup) starts it",
        )
    )
    return found


def ovn_check() -> Check:
    """OVN's presence and version (unpacked by ``make setup``, :mod:`.ovn_install`). Reported, not required:
    no scenario runs OVN yet (``control=ovn``, issue 13)."""
    from .ovn_install import OvnMissing, ovn_root, ovn_version

    try:
        return Check("OVN (control=ovn)", True, f"{ovn_version()}, unpacked in {ovn_root()}")
    except OvnMissing as exc:
        return Check("OVN (control=ovn)", False, str(exc))


def emulation_possible() -> tuple[bool, list[str]]:
    """(possible, reasons it is not), without starting or changing anything."""
    reasons = [f"{c.what}: {c.detail}" for c in checks() if not c.ok and c.emulation]
    return not reasons, reasons


def ovs_running() -> bool:
    """True when ovsdb-server and ovs-vswitchd answer (read-only)."""
    try:
        done = subprocess.run(["ovs-vsctl", "--timeout=5", "show"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def start_ovs() -> None:
    """Start Open vSwitch (userspace datapath; no systemd here); an error if it does not come up."""
    ctl = program(OVS_CTL)
    if ctl.path() is None:
        raise MissingProgram(ctl)
    if ovs_running():
        return
    done = subprocess.run([OVS_CTL, "start", "--system-id=random"], capture_output=True, text=True, timeout=120)
    if not ovs_running():
        raise RuntimeError(
            f"{OVS_CTL} start did not bring Open vSwitch up (exit {done.returncode}): "
            f"{(done.stdout + done.stderr).strip()[-500:]}"
        )
