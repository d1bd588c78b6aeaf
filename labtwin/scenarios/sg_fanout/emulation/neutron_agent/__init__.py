"""``control=neutron``: each emulated host's firewall is programmed by Neutron 29's own agent code.

One worker process per host (:mod:`.worker`: Neutron's ``SecurityGroupAgentRpc``
with the hybrid iptables driver, and ipset when ``firewall=ipset``), started by
the run and listed in its ledger, working on the host's namespace under a
run-private name (Neutron runs its commands with ``ip netns exec <name>``).
:class:`NeutronHostAgent` has the labtwin agent's interface
(``converge``/``join``/``leave``/``read_state``), so the workload, the kernel
reader and the probes are the same for both controls; what differs is who
decides what to write: Neutron's code, from what the server tells it.

The server's side is labtwin's (:class:`ServerView` here, :mod:`.server` in the
worker): the layout's ports and groups as Neutron objects. A join is a port
create pushed to every host; a leave is a port delete pushed to every host, and
on the port's own host the device goes (``remove_devices_filter``). Neutron's
cache never takes a deleted id back, so when a timing repeat brings a port
back, it comes as a new port: a fresh id sharing the first 11 characters (the
same tap device, the same chains), as a re-created VM's port would be.

Simplification, stated: the outsider's group is Neutron's default rule set for
a non-default group (egress anywhere, IPv4 and IPv6), whatever groups the
topology gives it.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

from labtwin.description.schema import NEUTRON_DEFAULT_RULES, derived_id
from labtwin.emulation.ledger import Item
from labtwin.emulation.runner import Runner, Step, in_netns
from labtwin.emulation.snapshot import NEUTRON_LOCKS

from ...spec import Layout
from .. import kernel
from ..rules import EPort

#: The group the outsider port is in (not the studied group).
OUTSIDER_GROUP = "labtwin-outsider"
WORKER_MODULE = "labtwin.scenarios.sg_fanout.emulation.neutron_agent.worker"
#: Starting a worker imports Neutron (~3-5 s on this kind of machine); more is a hang.
START_TIMEOUT_S = 120.0


class NeutronAgentError(RuntimeError):
    """A worker failed: Neutron's traceback, or the worker died (its stderr's tail)."""


@dataclass
class ServerView:
    """The server's objects as every host's worker must see them: one id per port, the groups' rules."""

    layout: Layout
    ports: dict[str, EPort]
    generation: dict[str, int] = field(default_factory=dict)
    deleted: set = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def port_id(self, name: str) -> str:
        """The port's current Neutron id: its own, or after a delete a fresh one with the same first 11 characters."""
        base = self.ports[name].port_id
        gen = self.generation.get(name, 0)
        return base if gen == 0 else base[:-4] + f"{gen:04x}"

    def recreate(self, name: str) -> str:
        """The id a (re)created port gets: a new one when its last id was deleted (thread-safe, idempotent)."""
        with self.lock:
            if name in self.deleted:
                self.deleted.discard(name)
                self.generation[name] = self.generation.get(name, 0) + 1
            return self.port_id(name)

    def delete(self, name: str) -> str:
        with self.lock:
            self.deleted.add(name)
            return self.port_id(name)

    def port(self, eport: EPort, port_id: Optional[str] = None) -> dict:
        group = self.layout.group if eport.member else OUTSIDER_GROUP
        return {
            "id": port_id or self.port_id(eport.name),
            "mac": eport.mac,
            "ips": [eport.ip],
            "host": eport.host,
            "security_groups": [derived_id("security-group", group)],
        }

    def groups(self) -> list[dict]:
        studied = [r.model_dump(mode="json") for r in self.layout.rules]
        outsider = [
            r.for_group(OUTSIDER_GROUP).model_dump(mode="json")
            for r in NEUTRON_DEFAULT_RULES
            if r.used_in_non_default_sg
        ]
        return [_group(self.layout.group, studied), _group(OUTSIDER_GROUP, outsider)]


def _group(name: str, rule_dicts: list[dict]) -> dict:
    """A group as the worker's server takes it: remote groups and protocols as Neutron stores them."""
    gid = derived_id("security-group", name)
    out = []
    for i, r in enumerate(rule_dicts):
        protocol = None if r["protocol"] == "any" else r["protocol"]
        remote = r.get("remote_group_id")
        out.append(
            {
                "id": derived_id("security-group-rule", f"{name}/{i}"),
                "direction": r["direction"],
                "ethertype": r["ethertype"],
                "protocol": protocol,
                "port_range_min": r.get("port_range_min"),
                "port_range_max": r.get("port_range_max"),
                "remote_ip_prefix": r.get("remote_ip_prefix"),
                "remote_group_id": derived_id("security-group", remote) if remote else None,
            }
        )
    return {"id": gid, "name": name, "rules": out}


@dataclass
class NeutronHostAgent:
    """One host's Neutron agent, behind labtwin's agent interface (see the module docstring)."""

    host: str
    firewall: str
    layout: Layout
    runner: Runner
    pid: int  # the host namespace's holder (for reading the kernel)
    namespace: str  # its run-private name, for Neutron's ip netns exec
    server: ServerView
    proc: subprocess.Popen
    stderr_path: str
    local: list = field(default_factory=list)
    busy_s: float = 0.0
    calls: dict = field(default_factory=dict)  # method -> count, over the run's counted iterations

    def _ask(self, request: dict, timeout: float = 60.0) -> dict:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise NeutronAgentError(f"{self.host}: Neutron's agent process died: {self._stderr_tail()}") from None
        line = _read_line(self.proc, timeout)
        if not line:
            raise NeutronAgentError(
                f"{self.host}: Neutron's agent process gave no answer to {request['op']} "
                f"(exit {self.proc.poll()}): {self._stderr_tail()}"
            )
        answer = json.loads(line)
        if "error" in answer:
            raise NeutronAgentError(f"{self.host}: Neutron's agent failed on {request['op']}:\n{answer['error']}")
        return answer

    def _stderr_tail(self) -> str:
        try:
            with open(self.stderr_path) as fh:
                return fh.read()[-2000:]
        except OSError as exc:
            return f"(its stderr {self.stderr_path} is unreadable: {exc})"

    # --- the agent interface --------------------------------------------------
    def converge(self, ports: list, ips: frozenset) -> None:
        """Start Neutron's agent on this host with the server's objects; it prepares its existing ports."""
        present = [p for p in self.server.ports.values() if p.name not in {j.name for j in self.layout.joins}]
        self._ask(
            {
                "op": "start",
                "namespace": self.namespace,
                "lock_dir": os.path.join(NEUTRON_LOCKS, self.namespace),
                "ipset": self.firewall == "ipset",
                "groups": self.server.groups(),
                "ports": [self.server.port(p) for p in present],
            },
            timeout=START_TIMEOUT_S,
        )
        self.local = list(ports)
        self._iteration([], [self.server.port_id(p.name) for p in ports], [], counted=False)

    def join(self, port: EPort, ips: frozenset) -> tuple[float, float]:
        """*port* created in the group: pushed to this host; on its own host its device appears too."""
        port_id = self.server.recreate(port.name)
        local = port.host == self.host
        start, took = self._iteration([{"update": self.server.port(port, port_id)}], [port_id] if local else [], [])
        if local:
            # port_bound after the filter: the tap was down until now (see the labtwin agent's join)
            self.runner.run(
                Step(in_netns(self.pid, ("ip", "link", "set", port.tap, "up")), what=f"{self.host}: wire port")
            )
            self.local.append(port)
            took = time.perf_counter() - start
        self.busy_s += took
        return start, took

    def leave(self, port: EPort, ips: frozenset) -> tuple[float, float]:
        """*port* deleted: pushed to this host; on its own host its device and filter go."""
        port_id = self.server.delete(port.name)
        local = port.host == self.host
        if local:
            self.local = [p for p in self.local if p.name != port.name]
        start, took = self._iteration([{"delete": port_id}], [], [port_id] if local else [])
        self.busy_s += took
        return start, took

    def read_state(self) -> dict:
        return kernel.read_hybrid(self.host, self.runner, self.pid)

    # --- helpers --------------------------------------------------------------------
    def _iteration(self, pushes: list, added: list, removed: list, counted: bool = True) -> tuple[float, float]:
        answer = self._ask({"op": "iteration", "pushes": pushes, "added": added, "removed": removed})
        if counted:
            for method, n in answer["calls"].items():
                self.calls[method] = self.calls.get(method, 0) + n
        return float(answer["start"]), float(answer["took"])


def start_agents(real, shape, layout: Layout, firewall: str, ports: dict[str, EPort], joining: set) -> dict:
    """One Neutron agent per host, each converged on its existing ports (workers started side by side)."""
    server = ServerView(layout, ports)
    agents = {host: _spawn(real, shape, host, firewall, layout, server) for host in layout.hosts}
    failures: list[BaseException] = []

    def converge(agent: NeutronHostAgent) -> None:
        try:
            agent.converge([p for p in ports.values() if p.host == agent.host and p.name not in joining], frozenset())
        except BaseException as exc:  # noqa: BLE001 -- raised below, in this thread
            failures.append(exc)

    threads = [threading.Thread(target=converge, args=(a,)) for a in agents.values()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]
    return agents


def _spawn(real, shape, host: str, firewall: str, layout: Layout, server: ServerView) -> NeutronHostAgent:
    """Name the host's namespace for Neutron, make its lock directory, start its worker: all ledgered first."""
    key = shape.host_ns[host]
    pid = real.pid(key)
    node = real.plan.ns(key).node
    name = f"labtwin-{node}"  # never one of Neutron's prefixes (qrouter-, snat-, fip-, qdhcp-)
    real.runner.run(
        Step(
            ("ip", "netns", "attach", name, str(pid)),
            what=f"{host}: name its namespace {name} for Neutron",
            creates=(Item(f"netns-name:{name}", "netns-name", name, undo=("ip", "netns", "delete", name)),),
        )
    )
    locks = os.path.join(NEUTRON_LOCKS, name)
    real.ledger.append([Item(f"dir:{locks}", "directory", locks, undo=("rm", "-rf", "--", locks))])
    os.makedirs(locks, exist_ok=True)
    argv = (sys.executable, "-m", WORKER_MODULE, "--run", real.plan.run_id, "--host", node)
    item = Item(f"proc:neutron-agent:{node}", "process", f"Neutron agent of {host}", match=argv)
    stderr_path = os.path.join(locks, "stderr.log")
    with open(stderr_path, "w") as stderr:
        proc = real.runner.spawn(
            Step(argv, what=f"{host}: Neutron's agent", creates=(item,)), talk=True, stderr_to=stderr
        )
    return NeutronHostAgent(host, firewall, layout, real.runner, pid, name, server, proc, stderr_path)


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    """One answer line from a worker, or '' when it closed its stdout; NeutronAgentError after *timeout*."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise NeutronAgentError(f"Neutron's agent process gave no answer within {timeout:.0f} s")
    return proc.stdout.readline()
