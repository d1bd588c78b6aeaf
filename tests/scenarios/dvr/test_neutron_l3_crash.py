"""control=neutron, DVR: a run SIGKILLed with Neutron's three L3 agents built, then ``labtwin clean``, leaves the
machine exactly as before (issue 15: "a crash followed by ``labtwin clean`` leaves the machine exactly as before").

The cloud is the live DVR test's (``neutron-l3-dvr.yaml``): a ``dvr_snat`` agent on network-1 (``qrouter-``,
``snat-``, ``fip-``) and a ``dvr`` agent on compute-1 and compute-2 (``qrouter-``, ``fip-``), each in a worker
process of its own with its own private namespace prefix and lock directory, started side by side as
:func:`~labtwin.scenarios.dvr.emulation.neutron_l3.build_routers` starts them, but never stopped: the run's
process is killed while every worker still runs. The snapshot (:func:`~labtwin.emulation.snapshot.machine_state`)
covers links, ``ip netns``, OVS bridges, the root ``iptables-save``, processes and lock directories.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labtwin.emulation.clean import clean

TOPOLOGY = Path(__file__).with_name("neutron-l3-dvr.yaml")
RUN = "k5ll"
#: The three agents' private prefixes (``agent_prefix(RUN, i)``: network node first, then compute nodes in order).
PREFIXES = [f"lt{RUN}l{i}" for i in range(3)]

KILLED = f"""
import sys, time
from labtwin.description import load_cloud
from labtwin.emulation.neutron_agent import in_parallel
from labtwin.emulation.realise import Realisation
from labtwin.scenarios.dvr.emulation import neutron_l3
from labtwin.scenarios.dvr.knobs import DvrDesign
cloud = load_cloud(sys.argv[1])
dp, agents = neutron_l3.plan_neutron(cloud, DvrDesign.of({{"control": "neutron"}}), {RUN!r})
real = Realisation(dp.plan)
real._guard()
real.up()
workers = {{}}
def build(agent):
    worker = workers[agent.host] = neutron_l3._start(real, agent)
    rows = neutron_l3.sync_rows(dp.layout, agent.host)
    worker.ask(neutron_l3._start_request(real, agent, rows), timeout=180)
    worker.ask({{"op": "sync"}}, timeout=300)
in_parallel(build, agents)
print("up", *(f"{{a.host}}={{a.mode}}={{workers[a.host].proc.pid}}" for a in agents), flush=True)
time.sleep(120)
"""


@pytest.mark.emulation
def test_sigkill_with_neutrons_three_dvr_agents_then_clean_restores(live, ledger_dir, snapshot):
    before = snapshot()
    env = {**os.environ, "LABTWIN_LEDGER_DIR": str(ledger_dir)}
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(TOPOLOGY)], env=env, stdout=subprocess.PIPE, text=True)
    report: list[str] = []
    try:
        up, *agents = proc.stdout.readline().split()
        assert up == "up", up
        during = snapshot()
        workers = {host: (mode, pid) for host, mode, pid in (a.split("=") for a in agents)}
        # the built agents leave no process of their own running (no metadata proxy here)
        children = {
            host: subprocess.run(["ps", "-o", "args=", "--ppid", pid], capture_output=True, text=True).stdout
            for host, (_, pid) in workers.items()
        }
    finally:  # killed and cleaned whatever happens: a failed check must not leave the run behind
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        report = clean(directory=ledger_dir)
    time.sleep(0.2)
    assert snapshot() == before
    assert {h: m for h, (m, _) in workers.items()} == {"network-1": "dvr_snat", "compute-1": "dvr", "compute-2": "dvr"}
    assert sum("neutron_agent.l3_worker" in p for p in during["procs"]) == 3
    assert children == {host: "" for host in workers}, children
    assert during["neutron_locks"] == sorted([*before["neutron_locks"], *PREFIXES])
    made = [line.split()[0] for line in during["netns"].splitlines() if line.startswith(tuple(PREFIXES))]
    kinds = sorted(n[len(PREFIXES[0]) :].split("-")[0] for n in made)
    assert kinds == ["fip", "fip", "fip", "qrouter", "qrouter", "qrouter", "snat"], made
    assert not any("privsep-helper" in p for p in during["procs"])  # privileged calls ran in the workers
    removed = [line for line in report if "removed: netns-name" in line]
    assert len(removed) == 7, report  # every name the agents built in; the dvr agents' snat- names never made
    assert sum("already gone: netns-name" in line for line in report) == 2, report
