"""OVN for control=ovn (issue 13) comes unpacked into the venv by `make setup`, never installed: no OVN service
may attach to the machine's own OVS. `labtwin doctor` reports its presence and version."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from labtwin.emulation import programs
from labtwin.emulation.ovn_install import OVN_PACKAGES, OVN_PROGRAMS, OvnMissing, ovn_program, ovn_root, ovn_version

ROOT = Path(__file__).resolve().parents[2]


def test_apt_never_installs_ovn_and_the_makefile_unpacks_exactly_its_packages():
    assert not set(OVN_PACKAGES) & set(programs.packages())  # make setup's apt-get install list
    assert set(OVN_PROGRAMS.values()) <= set(OVN_PACKAGES)
    printed = subprocess.run(
        [sys.executable, "labtwin/emulation/ovn_install.py", "--packages"], cwd=ROOT, capture_output=True, text=True
    )
    assert printed.stdout.split() == list(OVN_PACKAGES)
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^setup: .*\bovn\b", makefile, re.M) and "dpkg -x" in makefile
    assert "apt-get install" not in makefile.split("\novn: ", 1)[1].split("\ntest: ", 1)[0]


def test_a_missing_ovn_names_the_fix(tmp_path):
    with pytest.raises(OvnMissing, match=r"ovn-northd is not unpacked at .*make setup"):
        ovn_program("ovn-northd", prefix=str(tmp_path))
    with pytest.raises(ValueError, match="not one of OVN's programs"):
        ovn_program("ovs-vsctl")


def test_make_setup_unpacked_ovn_23_03_and_started_nothing():
    if not (ovn_root() / "usr/bin/ovn-nbctl").exists():
        pytest.skip(f"OVN is not unpacked in {ovn_root()} (make setup unpacks it)")
    assert ovn_version().startswith("23.03")
    for name in OVN_PROGRAMS:
        assert ovn_program(name).is_file()
    running = subprocess.run(["ps", "-eo", "comm"], capture_output=True, text=True, check=True).stdout.split()
    assert not {"ovn-controller", "ovn-northd"} & set(running)


def test_doctor_reports_ovn():
    done = subprocess.run([sys.executable, "-m", "labtwin.cli", "doctor"], cwd=ROOT, capture_output=True, text=True)
    line = next(line for line in done.stdout.splitlines() if "OVN" in line)
    assert ("23.03" in line and line.startswith("ok")) or ("make setup" in line and line.startswith("MISSING"))
