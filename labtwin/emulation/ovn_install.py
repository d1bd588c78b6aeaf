"""OVN's programs, installed privately: Debian 12's OVN 23.03 unpacked into the project's venv, never installed.

ML2/OVN in the emulation (issue 13) runs real OVN: per run, private NB and SB
``ovsdb-server`` s and ``ovn-northd``; per emulated host, an ``ovn-controller``
beside the host's private OVS (:mod:`labtwin.emulation.private_ovs`). Nothing
of OVN may ever attach to the machine's own OVS, and Debian's ``ovn-host``
package would start an ``ovn-controller`` against it wherever its service
starts. So ``make setup`` does not install the packages: it downloads them
(``apt-get download``) and unpacks them (``dpkg -x``) under ``<venv>/ovn``
(:func:`ovn_root`), where no service manager looks. The packages' shared
libraries are the OVS ones Debian already has (the study found none missing:
``../shared/reference/real-parts.md`` part A).

This file imports only the standard library: the Makefile runs it
(``python3 labtwin/emulation/ovn_install.py --packages``) for the package list.

>>> OVN_PACKAGES
('ovn-common', 'ovn-central', 'ovn-host')
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

#: The Debian packages unpacked (ovn-common: the tools and schemas; ovn-central: ovn-northd; ovn-host:
#: ovn-controller).
OVN_PACKAGES = ("ovn-common", "ovn-central", "ovn-host")
#: The programs a run uses, and the package each comes from.
OVN_PROGRAMS = {
    "ovn-northd": "ovn-central",
    "ovn-controller": "ovn-host",
    "ovn-nbctl": "ovn-common",
    "ovn-sbctl": "ovn-common",
}


class OvnMissing(RuntimeError):
    """OVN's programs are not unpacked where labtwin looks for them."""


def ovn_root(prefix: Optional[str] = None) -> Path:
    """Where ``make setup`` unpacks OVN: ``<venv>/ovn`` (*prefix*: the venv, default this interpreter's)."""
    return Path(prefix or sys.prefix) / "ovn"


def ovn_program(name: str, prefix: Optional[str] = None) -> Path:
    """The unpacked program *name* (``ovn-northd``, ...); OvnMissing, naming the fix, when it is not there."""
    if name not in OVN_PROGRAMS:
        raise ValueError(f"{name!r} is not one of OVN's programs labtwin runs ({', '.join(OVN_PROGRAMS)})")
    path = ovn_root(prefix) / "usr" / "bin" / name
    if not os.access(path, os.X_OK):
        raise OvnMissing(
            f"{name} is not unpacked at {path} (Debian package {OVN_PROGRAMS[name]}, unpacked, never installed, "
            "so that no OVN service attaches to this machine's own OVS): run `make setup`"
        )
    return path


def ovn_version(prefix: Optional[str] = None) -> str:
    """The unpacked OVN's version (``ovn-nbctl --version``'s first line, e.g. ``23.03.1``)."""
    tool = ovn_program("ovn-nbctl", prefix)
    done = subprocess.run([str(tool), "--version"], capture_output=True, text=True, timeout=30)
    if done.returncode != 0 or not done.stdout.strip():
        raise OvnMissing(f"{tool} --version failed (exit {done.returncode}): {done.stderr.strip()[-300:]}")
    return done.stdout.splitlines()[0].split()[-1]


if __name__ == "__main__":
    if sys.argv[1:] == ["--packages"]:
        print(" ".join(OVN_PACKAGES))
    else:
        sys.exit(f"usage: {sys.argv[0]} --packages")
