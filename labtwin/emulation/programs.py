"""Every external program labtwin runs, declared once: program, Debian package, what needs it.

This list is the single source for three things:

- ``make setup`` installs the packages (``python3 labtwin/emulation/programs.py
  --packages`` prints them; this file imports only the standard library so the
  Makefile can run it before the virtual environment exists);
- ``labtwin doctor`` checks each program and names the missing ones with their
  package (:func:`missing`);
- the :class:`~labtwin.emulation.runner.Runner` refuses to run a program that is
  not declared here (:func:`declared`), and turns a program that is declared but
  absent into an error naming its package, never into empty output.

A test scans the emulation code for every program it invokes and checks it is here.

>>> program("nft").package
'nftables'
>>> [p.name for p in declared(("nsenter", "--net=/proc/1/ns/net", "--", "ipset", "save"))]
['nsenter', 'ipset']
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
from dataclasses import dataclass
from typing import Optional, Sequence


@dataclass(frozen=True)
class Program:
    """One external program: its name on PATH (or absolute path), its Debian package, who needs it."""

    name: str
    package: str
    needed_for: str
    #: Unpacked by ``make setup`` into the venv, never installed (OVN: :mod:`.ovn_install` says why); not in
    #: :func:`packages`, and not required for emulation in general (``labtwin doctor`` reports it apart).
    unpacked: bool = False
    #: Needed to emulate. False for a program only the tests need (the browser): ``labtwin doctor`` still
    #: checks it and exits 1 without it, but emulation does not need it (``doctor.emulation_possible``).
    emulation: bool = True

    def path(self) -> Optional[str]:
        """Where it is installed, or None."""
        if os.path.isabs(self.name):
            return self.name if os.access(self.name, os.X_OK) else None
        return shutil.which(self.name)


OVS_CTL = "/usr/share/openvswitch/scripts/ovs-ctl"
#: Debian's Chromium, the browser the browser tests drive (Playwright cannot download its own here).
CHROMIUM = "/usr/bin/chromium"

PROGRAMS: tuple[Program, ...] = (
    Program("ip", "iproute2", "namespaces' links, addresses, routes and policy rules; listing root links"),
    Program("nsenter", "util-linux", "running a command inside an emulated host's network namespace"),
    Program("sysctl", "procps", "per-namespace kernel settings (forwarding, ARP, DAD)"),
    Program("ps", "procps", "machine snapshots before and after a run (tests, benchmarks)"),
    Program("mnexec", "mininet", "emulated hosts (Mininet Host: a shell holding a network namespace)"),
    Program("ovs-vsctl", "openvswitch-switch", "OVS bridges and ports"),
    Program("ovs-ofctl", "openvswitch-switch", "OpenFlow rules (DVR MAC rewriting, OVS firewall), flow dumps"),
    Program("ovs-vswitchd", "openvswitch-switch", "the OVS datapath (userspace); its version goes into each run"),
    Program(OVS_CTL, "openvswitch-switch", "starting Open vSwitch (labtwin doctor --fix, make setup)"),
    Program("iptables-restore", "iptables", "security-group and NAT rules inside namespaces"),
    Program("ip6tables-restore", "iptables", "IPv6 security-group rules inside namespaces"),
    Program("iptables", "iptables", "the iptables backend (nf_tables or legacy) in a calibration's fingerprint"),
    Program("iptables-save", "iptables", "reading rules back (sg-fanout counts, machine snapshots)"),
    Program("nft", "nftables", "sg-fanout: rule handles of iptables-nft, to count rewritten port filters"),
    Program("ipset", "ipset", "remote-group address sets (sg-fanout ipset, reachability)"),
    Program("tcpdump", "tcpdump", "packet captures that show the path a probe took"),
    Program("conntrack", "conntrack", "Neutron's agent (control=neutron) deleting a departed member's connections"),
    Program("rm", "coreutils", "removing a run's Neutron lock directory"),
    Program("keepalived", "keepalived", "control=neutron: HA routers' VRRP, run by Neutron's own L3 agent"),
    Program(
        "conntrackd", "conntrackd", "control=neutron: HA routers' connection-state sync, run by Neutron's L3 agent"
    ),
    Program("radvd", "radvd", "control=neutron: IPv6 router advertisements, run by Neutron's own L3 agent"),
    Program(
        "arping", "iputils-arping", "control=neutron: the gratuitous ARPs Neutron's L3 agent sends for new addresses"
    ),
    Program("env", "coreutils", "starting a private ovs-vswitchd with its own run directory (OVS_RUNDIR)"),
    Program("ovsdb-tool", "openvswitch-common", "creating a private OVS database (control=neutron, firewall=ovs)"),
    Program("ovsdb-server", "openvswitch-common", "a host's private OVS database (control=neutron, firewall=ovs)"),
    Program(
        "ovsdb-client",
        "openvswitch-common",
        "reading OVN's NB and SB rows (control=ovn); Neutron's OVN driver creates its drop port group with it",
    ),
    Program(
        CHROMIUM,
        "chromium",
        "browser tests: notebooks run and their widgets moved in a real browser (tests/browser, Playwright)",
        emulation=False,
    ),
)

#: OVN's programs, unpacked under ``<venv>/ovn`` (labtwin/emulation/ovn_install.py; the same names there).
_OVN_BIN = os.path.join(sys.prefix, "ovn", "usr", "bin")
PROGRAMS += tuple(
    Program(os.path.join(_OVN_BIN, name), package, f"control=ovn: {role}", unpacked=True)
    for name, package, role in (
        ("ovn-northd", "ovn-central", "the run's northd"),
        ("ovn-controller", "ovn-host", "each chassis's controller"),
        ("ovn-nbctl", "ovn-common", "writing the run's northbound database"),
        ("ovn-sbctl", "ovn-common", "reading the run's southbound database"),
    )
)

#: Packages the build needs besides the programs above: a venv, headers and a compiler for wheels that build.
#: (npm, for the offline slide assets, is installed by the Makefile only where no npm is on PATH.)
BUILD_PACKAGES = ("python3-venv", "python3-dev", "gcc")

_BY_NAME = {p.name: p for p in PROGRAMS}


class UndeclaredProgram(RuntimeError):
    """Code asked the runner for a program this registry does not declare (a bug in labtwin)."""


class MissingProgram(RuntimeError):
    """A declared program is not installed on this machine."""

    def __init__(self, prog: Program) -> None:
        super().__init__(
            f"{prog.name} is not installed (Debian package {prog.package}, needed for "
            f"{prog.needed_for}): run `make setup` as root, or apt-get install {prog.package}"
        )
        self.program = prog


def program(name: str) -> Program:
    """The declared program called *name* (PATH name, or absolute path)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UndeclaredProgram(
            f"{name!r} is not declared in labtwin/emulation/programs.py; add it with its Debian package"
        ) from None


def declared(argv: Sequence[str]) -> list[Program]:
    """The programs *argv* runs (``nsenter`` and the program after its ``--``; ``env`` and its program),
    each checked against the registry.

    This Python interpreter (labtwin's own helper processes) is part of the
    virtual environment, not of a Debian package, and is not listed.
    """
    names = [argv[0]]
    if argv[0] == "nsenter" and "--" in argv:
        names.append(argv[list(argv).index("--") + 1])
    if names[-1] == "env":  # env NAME=value ... program
        rest = list(argv)[list(argv).index("env") + 1 :]
        names += [a for a in rest if "=" not in a][:1]
    return [program(name) for name in names if name != sys.executable]


def require(argv: Sequence[str]) -> None:
    """Raise :class:`MissingProgram` unless every program *argv* runs is declared and installed."""
    for prog in declared(argv):
        if not _installed(prog):
            raise MissingProgram(prog)


@functools.lru_cache(maxsize=None)
def _installed(prog: Program) -> bool:
    return prog.path() is not None


def missing() -> list[Program]:
    """The declared programs this machine lacks (the unpacked ones apart: see :class:`Program`)."""
    return [p for p in PROGRAMS if p.path() is None and not p.unpacked]


def packages() -> list[str]:
    """Every Debian package ``make setup`` installs: the programs' packages, then the build's (never OVN's)."""
    return sorted({p.package for p in PROGRAMS if not p.unpacked}) + [p for p in BUILD_PACKAGES]


if __name__ == "__main__":  # `python3 labtwin/emulation/programs.py --packages` (the Makefile)
    if sys.argv[1:] != ["--packages"]:
        sys.exit("usage: programs.py --packages")
    print(" ".join(packages()))
