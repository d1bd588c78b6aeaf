"""Neutron's own security-group agent on an emulated host: start it, talk to it, and leave nothing behind.

One worker process per host (:mod:`.worker`: Neutron 29's ``SecurityGroupAgentRpc``
over Neutron's ``RemoteResourceCache``, with the hybrid iptables driver, or the
OVS firewall on the host's private OVS (:mod:`.ovs_host`); the server's side is
:mod:`.server`). :func:`start_worker` names the host's namespace
for Neutron (it runs its commands with ``ip netns exec <name>``), makes a lock
directory and starts the worker, each ledgered before it exists, so a crash
followed by ``labtwin clean`` removes them; :class:`NeutronWorker` sends it
requests. Scenarios say what the server holds (groups and ports as plain dicts,
see :mod:`.server`) and when the agent iterates.

Neutron's L3 agent runs in a worker of its own, :mod:`.l3_worker` (with the
interface driver :mod:`.l3_driver`), started by the dvr scenario
(:mod:`labtwin.scenarios.dvr.emulation.neutron_l3_run`) through the same
:class:`NeutronWorker` and :func:`serve_lines`.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import traceback
from dataclasses import dataclass
from typing import Optional

from labtwin.emulation.ledger import Item
from labtwin.emulation.runner import Step
from labtwin.emulation.snapshot import NEUTRON_LOCKS

WORKER_MODULE = "labtwin.emulation.neutron_agent.worker"
#: Starting a worker imports Neutron (~3-5 s on this kind of machine); more is a hang.
START_TIMEOUT_S = 120.0
#: One agent iteration: ~30 s at 300 members on one host here (iptables, and the OVS firewall), more on a
#: busy machine (a bench once passed 60 s); ten minutes without an answer is a hang.
ITERATION_TIMEOUT_S = 600.0


class NeutronAgentError(RuntimeError):
    """A worker failed: Neutron's traceback, or the worker died (its stderr's tail)."""


@dataclass
class NeutronWorker:
    """One started worker: the host it serves, its named namespace, its process and stderr file."""

    host: str
    namespace: str
    proc: subprocess.Popen
    stderr_path: str

    def ask(self, request: dict, timeout: float = 60.0) -> dict:
        """Send one request, return its answer; a Neutron error or a dead worker raises NeutronAgentError."""
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

    def start(self, groups: list[dict], ports: list[dict], firewall: str, ovs_rundir: Optional[str] = None) -> None:
        """Configure Neutron in the worker and give its server the objects it holds before the run.

        *firewall*: ``iptables``, ``ipset`` (the hybrid driver) or ``ovs`` (the OVS firewall on br-int of
        the host's private OVS in *ovs_rundir*, see :mod:`labtwin.emulation.private_ovs`).
        """
        self.ask(
            {
                "op": "start",
                "namespace": self.namespace,
                "lock_dir": os.path.join(NEUTRON_LOCKS, self.namespace),
                "firewall": firewall,
                "ovs_rundir": ovs_rundir,
                "groups": groups,
                "ports": ports,
            },
            timeout=START_TIMEOUT_S,
        )

    def iteration(self, pushes: list, added: list, removed: list) -> dict:
        """The server's *pushes*, then one rpc_loop iteration: ``{"start", "took", "calls"}``."""
        return self.ask(
            {"op": "iteration", "pushes": pushes, "added": added, "removed": removed}, timeout=ITERATION_TIMEOUT_S
        )

    def _stderr_tail(self) -> str:
        try:
            with open(self.stderr_path) as fh:
                return fh.read()[-2000:]
        except OSError as exc:
            return f"(its stderr {self.stderr_path} is unreadable: {exc})"


def start_worker(real, key: str, host: str) -> NeutronWorker:
    """Name namespace *key* for Neutron, make its lock directory, start its worker: all ledgered first."""
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
    return NeutronWorker(host, name, proc, stderr_path)


def serve_lines(lines, out, handle) -> int:
    """A worker's loop: each JSON line of *lines* is a request, answered on *out* with ``handle(request)``
    (one JSON line), or ``{"error": traceback}`` when it raises; ``{"op": "stop"}`` or the end of *lines*
    ends it (returns the exit code, 0)."""
    for line in lines:
        request = json.loads(line)
        if request.get("op") == "stop":
            return 0
        try:
            answer = handle(request)
        except Exception:  # noqa: BLE001 -- every failure goes back to the caller, which raises it
            answer = {"error": traceback.format_exc()}
        out.write(json.dumps(answer) + "\n")
        out.flush()
    return 0


def in_parallel(work, items) -> None:
    """``work(item)`` for every item, each in its own thread; the first failure is raised after all ended."""
    failures: list[BaseException] = []

    def run(item) -> None:
        try:
            work(item)
        except BaseException as exc:  # noqa: BLE001 -- raised below, in the caller's thread
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(item,)) for item in items]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]


def _read_line(proc: subprocess.Popen, timeout: Optional[float]) -> str:
    """One answer line from a worker, or '' when it closed its stdout; NeutronAgentError after *timeout*."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise NeutronAgentError(f"Neutron's agent process gave no answer within {timeout:.0f} s")
    return proc.stdout.readline()
