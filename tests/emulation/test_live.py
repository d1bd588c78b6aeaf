"""Live emulation (root + OVS): teardown leaves the machine as it was, after SIGKILL (then `labtwin clean`) and
on signals. (Real packets and the twin of every scenario: tests/test_scenario_contract.py.)"""

import os
import signal
import subprocess
import sys
import time

import pytest

from labtwin.emulation.clean import clean

pytestmark = pytest.mark.emulation


KILLED = """
import sys, time
from labtwin.description import load_cloud
from labtwin.scenarios.reachability.emulation.plan import plan
from labtwin.emulation.realise import Realisation
real = Realisation(plan(load_cloud(sys.argv[1]), "{rid}"))
real._guard()
real.up()
print("up", flush=True)
time.sleep(120)
"""


def _start(code, topologies, ledger_dir):
    env = {**os.environ, "LABTWIN_LEDGER_DIR": str(ledger_dir)}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(topologies / "minimal.yaml")], env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "up"
    return proc


def test_sigkill_halfway_then_clean_restores(live, ledger_dir, snapshot, topologies):
    before = snapshot()
    proc = _start(KILLED.format(rid="k1ll"), topologies, ledger_dir)
    assert snapshot() != before
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert (ledger_dir / "k1ll.jsonl").exists()
    report = clean(directory=ledger_dir)
    # the holders may already be gone (their pty closed with the parent); OVS is not
    assert any(line.startswith("run k1ll: removed: ovs-bridge") for line in report)
    assert sum("netns" in line for line in report) == 9  # 3 hosts, 4 ports, router1 and the physical router
    time.sleep(0.2)
    assert snapshot() == before
    assert not (ledger_dir / "k1ll.jsonl").exists()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_tear_down(live, ledger_dir, snapshot, topologies, sig):
    before = snapshot()
    proc = _start(KILLED.format(rid="sg" + str(int(sig)).zfill(2)), topologies, ledger_dir)
    proc.send_signal(sig)
    proc.wait(timeout=20)
    time.sleep(0.2)
    assert snapshot() == before
    assert not list(ledger_dir.glob("*.jsonl"))


SLOW_TEARDOWN = KILLED.replace(
    "real._guard()",
    """teardown = real.ledger.teardown
def announced(*args, **kwargs):
    print("tearing down", flush=True)
    time.sleep(1.0)  # the parent's second signal lands here
    return teardown(*args, **kwargs)
real.ledger.teardown = announced
real._guard()""",
)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_second_signal_during_teardown_waits_for_it(live, ledger_dir, snapshot, topologies, sig):
    """Ctrl-C twice (or a SIGTERM forwarded twice, as `timeout` does) must not cut the teardown short."""
    before = snapshot()
    proc = _start(SLOW_TEARDOWN.format(rid="tw" + str(int(sig)).zfill(2)), topologies, ledger_dir)
    proc.send_signal(sig)
    assert proc.stdout.readline().strip() == "tearing down"
    proc.send_signal(sig)
    proc.wait(timeout=30)
    assert proc.returncode != 0  # it still stops, once everything is removed
    time.sleep(0.2)
    assert snapshot() == before
    assert not list(ledger_dir.glob("*.jsonl"))
