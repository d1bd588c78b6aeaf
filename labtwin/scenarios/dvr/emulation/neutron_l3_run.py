"""``control=neutron``: running Neutron 29's own L3 agents (:mod:`.neutron_l3` plans them,
:mod:`.neutron_l3_rows` holds what their server answers).

Each agent's namespaces are named for Neutron (``ip netns attach``), the root ends its driver will make, its
lock directory and its radvd argvs are ledgered, then its worker starts (:func:`start`), builds the routers at
its fullsync and stops (:func:`build_routers`: every host's side by side); the run then checks that the agent
made no namespace it did not plan (:func:`check_namespaces`), left exactly the ledgered radvd running
(:func:`check_radvd`) and sent its GARPs only on the run's devices, and reads the kernel state it left
(:func:`namespace_state`).

Simplifications, stated: the agents hear only their fullsync (no RPC
notifications) and stop once the routers are built (the kernel state stays);
Neutron's GARPs are sent by its own ``_arping`` (with Debian's arping) from the
worker, only as far as the agent runs (:mod:`~labtwin.emulation.neutron_agent.l3_worker`:
the first of the three rounds, as the router is built); the probes wait for IPv6
duplicate address detection in Neutron's namespaces to end (:func:`wait_for_dad`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from labtwin.emulation.ledger import Item
from labtwin.emulation.runner import Step
from labtwin.emulation.snapshot import NEUTRON_LOCKS

from .neutron_l3 import AgentHost, radvd_argvs
from .neutron_l3_rows import agent_rows
from .plan import DvrPlan

L3_WORKER_MODULE = "labtwin.emulation.neutron_agent.l3_worker"
#: Importing Neutron's L3 agent and constructing it: ~5 s here; more is a hang.
START_TIMEOUT_S = 180.0
#: One fullsync building one legacy router: 11-25 s measured in the feasibility study; more is a hang.
SYNC_TIMEOUT_S = 300.0


def build_routers(real, dp: DvrPlan, agents: list[AgentHost]) -> dict:
    """Start every host's L3 worker side by side (each emulated host is a machine of its own), let Neutron's
    agents build the routers, stop them. Neutron's agents send their GARPs themselves. Returns what the run summary
    says of Neutron's agents: per agent its start and build seconds, what its namespace cleanup managed, its
    floating IP statuses and the kernel state of its namespaces; ``build_wall_s`` for them all."""
    from labtwin.emulation.neutron_agent import in_parallel

    answers: dict[str, tuple[dict, dict]] = {}

    def build(agent: AgentHost) -> None:
        worker = start(real, agent)
        try:
            started = worker.ask(start_request(real, agent, agent_rows(dp, agent)), START_TIMEOUT_S)
            answers[agent.host] = (started, worker.ask({"op": "sync"}, timeout=SYNC_TIMEOUT_S))
        finally:
            stop(worker)

    t0 = time.perf_counter()
    in_parallel(build, agents)
    out: dict = {"agents": {}, "build_wall_s": round(time.perf_counter() - t0, 3)}
    out["dad_wait_s"] = wait_for_dad(real, [key for agent in agents for key in agent.namespaces])
    for agent in agents:  # in plan order: checks, speakers and state come out the same every run
        started, synced = answers[agent.host]
        check_namespaces(agent)
        check_radvd(agent)
        _check_garps(agent, synced["garps"])
        out["agents"][agent.host] = {
            "agent_mode": agent.mode,
            "prefix": agent.prefix,
            "start_s": round(started["took"], 3),
            "router_build_s": round(synced["took"], 3),
            "namespaces_managed": synced["seen"],
            "routers": synced["routers"],
            "floatingip_statuses": synced["fip_statuses"],
            "garps": len(synced["garps"]),
            "state": {key: namespace_state(real, key) for key in agent.namespaces},
        }
    return out


#: How long the kernel's IPv6 duplicate address detection may take on Neutron's devices (1 s per address by
#: default, ``net.ipv6.conf.*.dad_transmits`` x ``retrans_timer``), with a margin; more is a fault.
DAD_TIMEOUT_S = 10.0


def wait_for_dad(real, keys: list[str]) -> float:
    """Wait until no IPv6 address in the namespaces *keys* is still tentative (duplicate address detection
    running: the kernel neither answers nor sends from it), and return how long that took.

    Neutron's namespaces keep the kernel's DAD (``Namespace.create`` does not turn it off), and its agent does
    not wait for it; a real router's addresses finished it long before traffic comes, a probe sent right after
    the build would find its qg-'s IPv6 address tentative. Addresses whose DAD failed (``dadfailed``: the
    link-local address of a distributed qr- port, whose MAC every DVR host shares) are left as they are."""
    start = time.perf_counter()
    pending = list(keys)
    while pending:
        pending = [
            key
            for key in pending
            if real.runner.run(
                Step(
                    real.exec_argv(key, ["ip", "-6", "-o", "addr", "show", "tentative", "-dadfailed"]),
                    what=f"DAD {key}",
                )
            ).stdout.strip()
        ]
        if pending and time.perf_counter() - start > DAD_TIMEOUT_S:
            raise RuntimeError(f"IPv6 addresses still tentative after {DAD_TIMEOUT_S} s in {pending}")
        if pending:
            time.sleep(0.1)
    return round(time.perf_counter() - start, 3)


def namespace_state(real, key: str) -> dict[str, list[str]]:
    """What Neutron's agent left in namespace *key*: addresses (``ip -o addr``), routes (IPv4 main table; IPv6
    every table), policy rules (IPv4, IPv6), sysctls it sets (``Namespace.create``), and the rules of each
    iptables table (``-A`` lines of ``iptables-save``)."""

    def run(argv) -> list[str]:
        done = real.runner.run(Step(real.exec_argv(key, argv), what=f"read {key}"))
        return [line.strip() for line in done.stdout.splitlines() if line.strip()]

    rules = run(["iptables-save"])
    return {
        "addresses": [" ".join(line.split()[1:4]) for line in run(["ip", "-o", "addr", "show"])],
        "routes": run(["ip", "route", "show"]),
        "rules": run(["ip", "rule", "show"]),
        "routes6": run(["ip", "-6", "route", "show", "table", "all"]),
        "rules6": run(["ip", "-6", "rule", "show"]),
        "sysctls": run(["sysctl", "net.ipv4.ip_forward", "net.ipv4.conf.all.arp_ignore"]),
        "iptables": [line for line in rules if line.startswith(("*", "-A", ":neutron"))],
    }


def start_request(real, agent: AgentHost, rows: dict) -> dict:
    return {
        "op": "start",
        "lock_dir": lock_dir(agent),
        "host": agent.host,
        "agent_mode": agent.mode,
        "prefix": agent.prefix,
        "plugs": agent.plugs,
        "rows": rows,
    }


def lock_dir(agent: AgentHost) -> str:
    return os.path.join(NEUTRON_LOCKS, agent.prefix)


def start(real, agent: AgentHost):
    """Name the agent's namespaces for Neutron, ledger the root ends its driver will make and its lock
    directory, start its worker: each ledgered before it exists."""
    from labtwin.emulation.neutron_agent import NeutronWorker

    for key, name in agent.namespaces.items():
        real.runner.run(
            Step(
                ("ip", "netns", "attach", name, str(real.pid(key))),
                what=f"{agent.host}: name {key} {name} for Neutron's L3 agent",
                creates=(Item(f"netns-name:{name}", "netns-name", name, undo=("ip", "netns", "delete", name)),),
            )
        )
    real.ledger.append(
        [
            Item(f"netns-name:{name}", "netns-name", name, undo=("ip", "netns", "delete", name))
            for name in agent.unplanned
        ]
        + [
            Item(f"veth:root:{plug['root']}", "link", plug["root"], undo=("ip", "link", "del", plug["root"]))
            for plug in agent.plugs.values()
        ]
    )
    locks = lock_dir(agent)
    real.ledger.append([Item(f"dir:{locks}", "directory", locks, undo=("rm", "-rf", "--", locks))])
    # after the directory: the teardown (in reverse) ends radvd before removing its files
    real.ledger.append(
        [
            Item(f"proc:radvd:{agent.host}:{argv[2]}", "process", f"radvd of {agent.host}", match=argv)
            for argv in radvd_argvs(agent)
        ]
    )
    os.makedirs(locks, exist_ok=True)
    argv = (sys.executable, "-m", L3_WORKER_MODULE, "--run", real.plan.run_id, "--host", agent.host)
    item = Item(f"proc:neutron-l3-agent:{agent.host}", "process", f"Neutron L3 agent of {agent.host}", match=argv)
    stderr_path = os.path.join(locks, "stderr.log")
    with open(stderr_path, "w") as stderr:
        proc = real.runner.spawn(
            Step(argv, what=f"{agent.host}: Neutron's L3 agent", creates=(item,)), talk=True, stderr_to=stderr
        )
    return NeutronWorker(agent.host, next(iter(agent.namespaces.values())), proc, stderr_path)


def check_namespaces(agent: AgentHost) -> None:
    """Every namespace with the agent's prefix is one the run planned (a fail-loud check: the teardown removes
    the others it ledgered, :attr:`AgentHost.unplanned`)."""
    listed = subprocess.run(("ip", "netns", "list"), capture_output=True, text=True, check=True, timeout=30).stdout
    names = {line.split()[0] for line in listed.splitlines() if line.strip()}
    extra = sorted(n for n in names if n.startswith(agent.prefix) and n not in agent.namespaces.values())
    if extra:
        raise RuntimeError(f"{agent.host}: Neutron's L3 agent made namespaces the run did not plan: {extra}")


def check_radvd(agent: AgentHost) -> None:
    """The radvd processes Neutron's agent left running are the ledgered argvs, each of them running (fail loud:
    an unledgered process would outlive the run)."""
    from labtwin.emulation.ledger import process_table

    locks = lock_dir(agent) + "/"
    running = [argv for argv in process_table().values() if any(locks in a for a in argv)]
    expected = radvd_argvs(agent)
    if set(running) != set(expected):
        raise RuntimeError(
            f"{agent.host}: Neutron's L3 agent left {running or 'no process'} running; the run ledgered "
            f"{expected or 'none'}"
        )


def stop(worker) -> None:
    """Ask the worker to end; kill it when it does not within ten seconds (its ledger item also ends it)."""
    try:
        assert worker.proc.stdin is not None
        worker.proc.stdin.write('{"op": "stop"}\n')
        worker.proc.stdin.flush()
        worker.proc.wait(timeout=10)
    except (BrokenPipeError, subprocess.TimeoutExpired, OSError):
        worker.proc.kill()
        worker.proc.wait(timeout=10)


def _check_garps(agent: AgentHost, garps: list) -> None:
    """Each GARP Neutron's agent sent (namespace, device, address; its worker ran Neutron's own ``_arping``) was
    on a device of the run's namespaces (fail loud otherwise)."""
    devs = {plug["dev"] for plug in agent.plugs.values()}
    for ns_name, dev, _ in garps:
        if ns_name not in agent.namespaces.values() or dev not in devs:
            raise RuntimeError(f"Neutron's agent sent a GARP on {ns_name}:{dev}, which the run does not hold")
