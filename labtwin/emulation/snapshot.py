"""What an emulation run must leave as it found it: a snapshot of the machine's own state.

Interfaces of the root namespace, named namespaces, OVS bridges, the root
namespace's iptables rules, and labtwin's processes (Mininet shells of runs,
tcpdump, Neutron agent workers, private OVS daemons) and their directories, and the files Neutron's own code
leaves in the temporary directory. Two
snapshots taken before and after a run must be equal; the tests and the
emulation benchmark compare them. Read-only: it runs listing
commands and changes nothing.
"""

from __future__ import annotations

import os
import subprocess
import tempfile

from .programs import require


def _out(*argv: str) -> str:
    """What a listing command prints; a missing program or a failed listing is an error, never ''."""
    require(argv)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"machine snapshot: {' '.join(argv)} failed (exit {done.returncode}): {done.stderr.strip()}")
    return done.stdout


#: Processes a run starts: namespace holders, captures, Neutron's agent workers (and any privsep daemon),
#: private OVS daemons (their argv names their run directory), and the daemons Neutron's L3 agent starts (radvd,
#: whose argv names its files under the agent's lock directory, NEUTRON_LOCKS).
OURS = (
    "mininet:lt",
    "tcpdump",
    "neutron_agent.worker",
    "neutron_agent.l3_worker",
    "labtwin.emulation.ovn_server",
    "privsep-helper",
    "/run/labtwin/ovs/",
    "/run/labtwin/ovn/",
    "/run/labtwin/neutron-locks/",
)
#: Where control=neutron runs keep their Neutron lock directories, and their hosts' private OVS.
NEUTRON_LOCKS = "/run/labtwin/neutron-locks"
PRIVATE_OVS_ROOT = "/run/labtwin/ovs"
#: Where runs keep their OVN central (labtwin.emulation.ovn_run).
OVN_RUNS = "/run/labtwin/ovn"
#: Files Neutron's own code writes into the machine's temporary directory (its WSGI helpers' start time and
#: first-worker election, ``neutron/common/wsgi_utils.py``); a run's server must write them elsewhere.
NEUTRON_TEMP_FILES = ("neutron_start_time", "neutron_first_worker")


def machine_state() -> dict:
    """The machine-wide state a run may touch, as comparable plain data."""
    links = sorted(line.split(":")[1].strip().split("@")[0] for line in _out("ip", "-o", "link").splitlines())
    iptables = "\n".join(line for line in _out("iptables-save").splitlines() if not line.startswith("#"))
    procs = sorted(line for line in _out("ps", "-eww", "-o", "args").splitlines() if any(m in line for m in OURS))
    return {
        "links": links,
        "netns": _out("ip", "netns", "list"),
        "ovs": _out("ovs-vsctl", "--timeout=5", "list-br"),
        "iptables": iptables,
        "procs": procs,
        "neutron_locks": sorted(os.listdir(NEUTRON_LOCKS)) if os.path.isdir(NEUTRON_LOCKS) else [],
        "private_ovs": sorted(os.listdir(PRIVATE_OVS_ROOT)) if os.path.isdir(PRIVATE_OVS_ROOT) else [],
        "ovn_runs": sorted(os.listdir(OVN_RUNS)) if os.path.isdir(OVN_RUNS) else [],
        "neutron_temp_files": sorted(f for f in os.listdir(tempfile.gettempdir()) if f.startswith(NEUTRON_TEMP_FILES)),
    }


def differences(before: dict, after: dict) -> dict:
    """What changed between two snapshots: {part: (before, after)}; empty when restored."""
    return {key: (before[key], after[key]) for key in before if before[key] != after.get(key)}
