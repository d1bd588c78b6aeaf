"""Live emulation (root + OVS): real packets, and teardown that leaves the machine as it was."""

import os
import signal
import subprocess
import sys
import time

import pytest

from labtwin.description import load_cloud
from labtwin.emulation.clean import clean
from labtwin.scenarios.reachability.emulation import emulate
from labtwin.scenarios.reachability.model import simulate

pytestmark = pytest.mark.emulation


def test_emulated_verdicts_equal_the_model_and_teardown_restores(live, ledger_dir, snapshot, topologies, tmp_path):
    before = snapshot()
    cloud = load_cloud(topologies / "minimal.yaml")
    design = {"probes": "icmp,tcp:22,udp:53"}
    run = emulate(cloud, design, 0, "minimal.yaml", out_dir=tmp_path / "run")
    assert snapshot() == before
    assert not list(ledger_dir.glob("*.jsonl"))
    model = simulate(cloud, design, 0).probes
    joined = model.merge(run.probes, on=["src", "dst", "protocol", "port"])
    assert len(joined) == len(model) == len(run.probes) == 36
    assert (joined.verdict_x == joined.verdict_y).all()
    allowed = run.probes[run.probes.verdict == "allowed"]
    assert allowed.latency_s.max() < 0.5
    assert list((tmp_path / "run" / "pcap").glob("*.pcap"))
    captures = run.events[run.events.kind == "capture"]
    assert any(row["seen"] for row in captures.detail)


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
    assert sum("netns" in line for line in report) == 8
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
