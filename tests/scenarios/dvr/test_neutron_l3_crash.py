"""control=neutron: a run SIGKILLed with Neutron's L3 agents built (DVR: three agents and radvd; HA: two legacy
agents and their keepalived, conntrackd and state-change daemons), then ``labtwin clean``, leaves the machine
exactly as before (issue 15: "a crash followed by ``labtwin clean`` leaves the machine exactly as before").

The cloud (``neutron-l3-crash.yaml``, dual-stack) is the smallest with every kind of thing such a run leaves:
a ``dvr_snat`` agent on network-1 (``qrouter-``, ``snat-``, ``fip-``) and a ``dvr`` agent on compute-1 and
compute-2 (``qrouter-``, ``fip-``), each in a worker process of its own with its own private namespace prefix
and lock directory, started side by side as :func:`~labtwin.scenarios.dvr.emulation.neutron_l3_run.build_routers`
starts them, but never stopped: the run's process is killed while every worker still runs, and the radvd each
agent started for the router's IPv6 ``qr-`` port (daemonized). The snapshot
(:func:`~labtwin.emulation.snapshot.machine_state`) covers links, ``ip netns``, OVS bridges, the root
``iptables-save``, processes and lock directories. Between them the two tests cover what the single legacy
agent's SIGKILL test (removed) covered.
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
from labtwin.emulation.naming import new_run_id
from labtwin.scenarios.dvr.emulation.neutron_l3 import agent_prefix

TOPOLOGY = Path(__file__).with_name("neutron-l3-crash.yaml")
RUN = "k5ll"
#: The agents' hosts and modes, and their private prefixes (``agent_prefix(RUN, i)``, in this order).
AGENTS = {"network-1": "dvr_snat", "compute-1": "dvr", "compute-2": "dvr"}
PREFIXES = [f"lt{RUN}l{i}" for i in range(len(AGENTS))]

KILLED = f"""
import sys, time
from labtwin.description import load_cloud
from labtwin.emulation.neutron_agent import in_parallel
from labtwin.emulation.realise import Realisation
from labtwin.scenarios.dvr.emulation import neutron_l3, neutron_l3_rows, neutron_l3_run
from labtwin.scenarios.dvr.knobs import DvrDesign
cloud = load_cloud(sys.argv[1])
dp, agents = neutron_l3.plan_neutron(cloud, DvrDesign.of({{"control": "neutron"}}), {RUN!r})
real = Realisation(dp.plan)
real._guard()
real.up()
workers = {{}}
def build(agent):
    worker = workers[agent.host] = neutron_l3_run.start(real, agent)
    worker.ask(neutron_l3_run.start_request(real, agent, neutron_l3_rows.agent_rows(dp, agent)), timeout=180)
    worker.ask({{"op": "sync"}}, timeout=300)
in_parallel(build, agents)
print("up", *(f"{{a.host}}={{a.mode}}={{workers[a.host].proc.pid}}" for a in agents), flush=True)
time.sleep(120)
"""


@pytest.mark.emulation
def test_sigkill_with_neutrons_dvr_agents_then_clean_restores(live, ledger_dir, snapshot):
    before = snapshot()
    env = {**os.environ, "LABTWIN_LEDGER_DIR": str(ledger_dir)}
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(TOPOLOGY)], env=env, stdout=subprocess.PIPE, text=True)
    report: list[str] = []
    try:
        up, *agents = proc.stdout.readline().split()
        assert up == "up", up
        during = snapshot()
        workers = {host: (mode, pid) for host, mode, pid in (a.split("=") for a in agents)}
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
    assert {h: m for h, (m, _) in workers.items()} == AGENTS
    assert sum("neutron_agent.l3_worker" in p for p in during["procs"]) == len(AGENTS)
    # the built agents' only children are the arpings of their gratuitous ARPs (Neutron 29 ip_lib._arping: one
    # `arping -U|-A -I <dev> -c 1 -w 2 <address>` at a time, each over within 2 s); no metadata proxy or
    # keepalived here, and radvd daemonizes; "[arping]" is one that ended and is not reaped yet
    arping = ("arping ", "[arping]")
    others = {host: [p for p in out.splitlines() if not p.startswith(arping)] for host, out in children.items()}
    assert others == {host: [] for host in workers}, children
    assert during["neutron_locks"] == sorted([*before["neutron_locks"], *PREFIXES])
    made = [line.split()[0] for line in during["netns"].splitlines() if line.startswith(tuple(PREFIXES))]
    kinds = sorted(n[len(PREFIXES[0]) :].split("-")[0] for n in made)
    assert kinds == ["fip"] * 3 + ["qrouter"] * 3 + ["snat"], made
    # a radvd (and its privileged helper) per qrouter-, its config and pid files in the agent's lock directory
    radvd = [p for p in during["procs"] if p.startswith("radvd -C /run/labtwin/neutron-locks/ltk5lll")]
    assert len(radvd) == 2 * len(AGENTS), during["procs"]
    assert not any("privsep-helper" in p for p in during["procs"])  # privileged calls ran in the workers
    removed = [line for line in report if "removed: netns-name" in line]
    assert len(removed) == 7, report  # every name the agents built in; the dvr agents' snat- names never made
    assert sum("already gone: netns-name" in line for line in report) == 2, report
    assert sum("removed: process radvd of" in line for line in report) == len(AGENTS), report


HA_TOPOLOGY = Path(__file__).with_name("neutron-l3-ha.yaml")
#: The HA router's daemons on each network node (``neutron_l3_ha.daemon_argvs``' names), each ledgered.
HA_DAEMONS = ("keepalived", "conntrackd", "state-change")

KILLED_HA = """
import sys, time
from labtwin.description import load_cloud
from labtwin.emulation.realise import Realisation
from labtwin.scenarios.dvr.emulation import _flows, neutron_l3
from labtwin.scenarios.dvr.emulation.neutron_l3_ha import HaRouters
from labtwin.scenarios.dvr.knobs import DvrDesign
cloud = load_cloud(sys.argv[1])
dp, agents = neutron_l3.plan_neutron(cloud, DvrDesign.of({"control": "neutron"}), sys.argv[2])
real = Realisation(dp.plan)
real._guard()
real.up()
_flows(dp, real)
ha = HaRouters(real, dp, agents)
ha.build()
print("up", *(f"{a.host}={a.mode}={ha.workers[a.host].proc.pid}" for a in agents), flush=True)
time.sleep(120)
"""


@pytest.mark.emulation
def test_sigkill_with_neutrons_ha_agents_then_clean_restores(live, ledger_dir, snapshot):
    """An HA router's run SIGKILLed once keepalived is master on network-1 and backup on network-2: the daemons
    Neutron's agents started (keepalived, conntrackd, neutron-keepalived-state-change: not the workers' children,
    so the kill does not end them) are ended by ``labtwin clean`` from their ledgered argvs, and the machine is
    as before. With the legacy agents' qrouter- and lock directories, this covers what the legacy SIGKILL test
    covered (a legacy agent per host), radvd apart, which the DVR test above covers."""
    before = snapshot()
    env = {**os.environ, "LABTWIN_LEDGER_DIR": str(ledger_dir)}
    rid = new_run_id()
    prefixes = [agent_prefix(rid, i) for i in range(2)]
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_HA, str(HA_TOPOLOGY), rid], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        up, *agents = proc.stdout.readline().split()
        during = snapshot()
    finally:  # killed and cleaned whatever happens, before any check
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        report = clean(directory=ledger_dir)
    time.sleep(0.2)
    assert snapshot() == before
    assert up == "up", up
    assert [a.rsplit("=", 1)[0] for a in agents] == ["network-1=legacy", "network-2=legacy"]
    assert during["neutron_locks"] == sorted([*before["neutron_locks"], *prefixes])
    for prefix in prefixes:
        assert sum(p.startswith(f"keepalived -P -f /run/labtwin/neutron-locks/{prefix}/") for p in during["procs"])
        assert sum(p.startswith(f"conntrackd -d -C /run/labtwin/neutron-locks/{prefix}/") for p in during["procs"])
    for host in ("network-1", "network-2"):
        for daemon in HA_DAEMONS:
            assert sum(f"removed: process {daemon} of {host}" in line for line in report) == 1, (daemon, report)
    assert sum(f"removed: netns-name {p}qrouter-" in line for p in prefixes for line in report) == 2, report
