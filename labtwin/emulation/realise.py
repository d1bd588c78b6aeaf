"""Apply a :class:`~labtwin.emulation.plan.Plan` with Mininet as the engine; tear it down.

Namespaces are Mininet :class:`mininet.node.Host` objects (an ``mnexec``
shell holding an unnamed network namespace). Everything else is done with
argv lists through the :class:`~labtwin.emulation.runner.Runner`, entering a
namespace with ``nsenter --net=/proc/<pid>/ns/net`` (never through Mininet's
``cmd()`` shell strings): veths straight into their two namespaces from one
``ip -batch``, then per namespace ``sysctl``, ``ip -batch``, ``ipset restore``,
``iptables-restore`` in parallel across namespaces.

We build Hosts directly instead of through ``Mininet()``: ``Mininet.init()``
raises machine-wide sysctls and rlimits (``fixLimits``), which would change
the machine. OVS bridges, when a plan has them, are ``ovs-vsctl add-br`` with
``datapath_type=netdev`` (what ``OVSSwitch(datapath='user')`` sets), without
a controller (``fail_mode=standalone``).

Teardown is the ledger's (reverse order, tolerant), run on normal exit, on
exceptions, on SIGINT/SIGTERM (handlers raise, ``finally`` tears down; a second
signal during the teardown waits for it to finish) and at interpreter exit (atexit).

Runs side by side: bring-up and teardown hold the machine-wide
:class:`~labtwin.emulation.ovs_lock.OvsLock` alone, and the time between
(the run's measurements) holds it shared, because one run's OVS changes
reach every other run's bridges (see :mod:`.ovs_lock`). A run that measures
time (``measures_time``) keeps it alone throughout: another run's packets and
agents on the same two cores would be in its timings. It also runs ahead of
the machine's other work (:data:`TIMING_NICE`, restored at teardown): its
threads and every process it starts inherit the priority, so a busy core
elsewhere on the machine does not enter its timings either. (ovs-vswitchd is
the machine's own daemon and keeps its priority.)
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from .ledger import ROOT, Item, Ledger
from .ovs_lock import OvsLock, OvsLockTimeout
from .plan import Plan
from .runner import Runner, Step, in_netns


#: The argv an mnexec shell ends up running (how the ledger finds it again).
def holder_argv(node: str) -> tuple[str, ...]:
    return ("bash", "--norc", "--noediting", "-is", f"mininet:{node}")


#: The nice value of a run that measures time (root may go below 0): ahead of ordinary work (nice 0) by a
#: factor of about 9 in the scheduler's weights, yet behind the kernel's own threads and real-time tasks.
TIMING_NICE = -10


def mute_in_root(devices: list[str]) -> list[str]:
    """Per-device sysctls that keep the root namespace's own IP stack out of our veth ends there (fabric and
    bridge ports). With the userspace datapath the kernel still sees every frame OVS reads, so without
    them the machine would answer ARP for its own addresses on our fabrics (a tenant subnet equal to the
    machine's network then gets the machine's MAC for a VM's address) and, with forwarding on, could route
    our traffic. Only our devices are touched, and the settings go with them.

    >>> mute_in_root(["lt7mfvu52"])[:2]
    ['net/ipv4/conf/lt7mfvu52/arp_ignore=8', 'net/ipv4/conf/lt7mfvu52/forwarding=0']
    """
    out = []
    for dev in devices:
        out += [f"net/ipv4/conf/{dev}/arp_ignore=8", f"net/ipv4/conf/{dev}/forwarding=0"]
        out.append(f"net/ipv6/conf/{dev}/disable_ipv6=1")
    return out


class Realisation:
    """A plan made real on this machine: ``with Realisation(plan) as r: ... r.pid(key)``."""

    def __init__(
        self, plan: Plan, dry_run: bool = False, parallel: int = 8, ledger_dir=None, measures_time: bool = False
    ) -> None:
        self.plan = plan
        self.dry_run = dry_run
        self.parallel = parallel
        self.ledger = Ledger(plan.run_id, ledger_dir)
        self.runner = Runner(dry_run=dry_run, ledger=self.ledger)
        self.hosts: dict[str, object] = {}
        self.pids: dict[str, int] = {}
        self.timings: dict[str, float] = {}
        self._down = False
        self._old_handlers: dict[int, object] = {}
        self.ovs_lock = None if dry_run else OvsLock()
        self.measures_time = measures_time
        self._nice_before: int | None = None
        self._tearing_down = False
        self._deferred: int | None = None  # a signal that came during the teardown, raised after it

    # --- lifecycle --------------------------------------------------------
    def __enter__(self) -> "Realisation":
        self._guard()
        if self.measures_time and not self.dry_run:
            self._ahead_of_other_work()
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.down()

    def up(self) -> dict[str, float]:
        """Create everything in the plan (no other run measuring meanwhile); return seconds per phase."""
        if self.ovs_lock is not None:
            self.ovs_lock.change()
        self._phase("namespaces", self._namespaces)
        self._phase("veths", self._veths)
        self._phase("ovs", self._ovs)
        self._phase("sysctls", lambda: self._per_ns("sysctls"))
        self._phase("links", lambda: self._per_ns("links"))
        self._phase("filters", lambda: self._per_ns("filters"))
        if self.ovs_lock is not None and not self.measures_time:
            self.ovs_lock.measure()  # from alone to shared: never waits
        return self.timings

    def down(self) -> list[str]:
        """Remove exactly what the ledger lists (idempotent)."""
        if self._down:
            return []
        self._down = True
        interrupted = self._wait_to_change()
        self._tearing_down = True  # from here a Ctrl-C or SIGTERM waits for the teardown (see _on_signal)
        start = time.perf_counter()
        try:
            handles = {f"ns:{key}": host.terminate for key, host in self.hosts.items()}
            report = self.ledger.teardown(self.runner, handles) if not self.dry_run else []
            if self.dry_run:
                self.ledger.close()
        finally:
            if self.ovs_lock is not None:
                self.ovs_lock.release()
            self._unguard()
            self._back_to_normal_priority()
            self.timings["teardown"] = time.perf_counter() - start
        if interrupted is not None:
            raise interrupted
        if self._deferred is not None:
            raise _exception_for(self._deferred)
        return report

    def record_teardown(self, recorder, t0: float) -> None:
        """The teardown as an ``operation`` record on *recorder* (a run's clock starting at perf_counter
        *t0*): called after the ``with`` block, once its duration is known."""
        took = self.timings["teardown"]
        recorder.operation("teardown", "", time.perf_counter() - t0 - took, took, count=len(self.ledger.items))

    def _wait_to_change(self):
        """Wait until no other run measures; a timeout or Ctrl-C while waiting tears down at once (never leave
        things behind). Returns the interruption to re-raise after teardown, if any."""
        if self.ovs_lock is None:
            return None
        try:
            self.ovs_lock.change()
        except OvsLockTimeout as exc:
            print(f"labtwin: tearing down run {self.plan.run_id} anyway: {exc}", file=sys.stderr)
        except (KeyboardInterrupt, SystemExit) as exc:
            return exc
        return None

    def pid(self, key: str) -> int:
        return self.pids[key]

    def exec_argv(self, key: str, argv) -> tuple[str, ...]:
        """*argv* run inside namespace *key*."""
        return in_netns(self.pids[key], argv)

    # --- phases -----------------------------------------------------------
    def _phase(self, name: str, fn) -> None:
        start = time.perf_counter()
        fn()
        self.timings[name] = time.perf_counter() - start

    def _namespaces(self) -> None:
        items = [
            Item(f"ns:{n.key}", "netns", n.node, where=n.key, match=holder_argv(n.node)) for n in self.plan.namespaces
        ]
        self.ledger.append(items)
        if self.dry_run:
            self.pids = {n.key: 100000 + i for i, n in enumerate(self.plan.namespaces)}
            return
        from mininet.node import Host

        def make(ns):
            return ns.key, Host(ns.node, inNamespace=True)

        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            for key, host in pool.map(make, self.plan.namespaces):
                self.hosts[key] = host
                self.pids[key] = host.pid
                self.ledger.note_pid(Item(f"ns:{key}", "netns", host.name), host.pid)

    def _veths(self) -> None:
        if not self.plan.veths:
            return
        lines, items = [], []
        for v in self.plan.veths:
            lines.append(
                f"link add {v.a_dev} {self._netns(v.a)}type veth peer name {v.b_dev} {self._netns(v.b)}".strip()
            )
            if ROOT in (v.a, v.b):  # a root end is deleted explicitly (synchronously)
                dev = v.a_dev if v.a == ROOT else v.b_dev
                items.append(Item(f"veth:root:{dev}", "link", dev, undo=("ip", "link", "del", dev)))
            else:  # both ends inside our namespaces: the pair goes with either
                items.append(
                    Item(f"veth:{v.a}:{v.a_dev}", "link", f"{v.a_dev}/{v.b_dev}", where=v.a, parent=f"ns:{v.a}")
                )
        self.runner.run(
            Step(
                ("ip", "-batch", "-"),
                what="create veths",
                stdin="\n".join(lines) + "\n",
                creates=tuple(items),
                timeout=120,
            )
        )
        roots = [v.a_dev if v.a == ROOT else v.b_dev for v in self.plan.veths if ROOT in (v.a, v.b)]
        if roots:
            self.runner.run(Step(("sysctl", "-q", "-w", *mute_in_root(roots)), what="mute root veth ends"))

    def _netns(self, key: str) -> str:
        return "" if key == ROOT else f"netns {self.pids[key]} "

    def _ovs(self) -> None:
        for br in self.plan.ovs_bridges:
            item = Item(f"ovs:{br.name}", "ovs-bridge", br.name, undo=("ovs-vsctl", "--if-exists", "del-br", br.name))
            self.runner.run(
                Step(
                    (
                        "ovs-vsctl",
                        "add-br",
                        br.name,
                        "--",
                        "set",
                        "bridge",
                        br.name,
                        f"datapath_type={br.datapath_type}",
                        "fail_mode=standalone",
                    ),
                    what=f"create OVS bridge {br.name}",
                    creates=(item,),
                )
            )
            self.runner.run(Step(("ip", "link", "set", br.name, "up"), what=f"bring up {br.name}", check=False))
        for port in self.plan.ovs_ports:
            argv = ["ovs-vsctl", "add-port", port.bridge, port.dev]
            if port.tag is not None:
                argv.append(f"tag={int(port.tag)}")
                if port.native_untagged:
                    argv.append("vlan_mode=native-untagged")
            if port.trunks:
                argv.append("trunks=" + ",".join(str(int(t)) for t in port.trunks))
            item = Item(
                f"ovsport:{port.bridge}:{port.dev}",
                "ovs-port",
                port.dev,
                undo=("ovs-vsctl", "--if-exists", "del-port", port.bridge, port.dev),
            )
            self.runner.run(Step(tuple(argv), what=f"add {port.dev} to {port.bridge}", creates=(item,)))
            self.runner.run(Step(("ip", "link", "set", port.dev, "up"), what=f"bring up {port.dev}"))

    def _per_ns(self, what: str) -> None:
        steps = [s for key, cfg in self.plan.config.items() for s in self._steps(what, key, cfg)]
        # one namespace's steps stay in order: group them, run groups in parallel
        groups: dict[str, list[Step]] = {}
        for key, step in steps:
            groups.setdefault(key, []).append(step)
        if self.ledger is not None:
            self.ledger.append([i for _, s in steps for i in s.creates])
        plain = Runner(dry_run=self.dry_run)
        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            results = list(pool.map(lambda g: [plain.run(s) for s in g], groups.values()))
        self.runner.steps += plain.steps
        self.runner.results += plain.results
        return results

    def _steps(self, what: str, key: str, cfg):
        pid = self.pids[key]
        if what == "sysctls" and cfg.sysctls:
            yield key, Step(in_netns(pid, ["sysctl", "-q", "-w", *cfg.sysctls]), what=f"sysctls in {key}")
        elif what == "links" and cfg.ip_batch:
            items = tuple(
                Item(f"{kind}:{key}:{name}", kind, name, where=key, parent=f"ns:{key}") for kind, name in cfg.creates
            )
            yield (
                key,
                Step(
                    in_netns(pid, ["ip", "-batch", "-"]),
                    what=f"links in {key}",
                    stdin="\n".join(cfg.ip_batch) + "\n",
                    creates=items,
                ),
            )
        elif what == "filters" and cfg.rules is not None:
            rules = cfg.rules
            if rules.sets:
                yield (
                    key,
                    Step(
                        in_netns(pid, ["ipset", "restore"]),
                        what=f"ipsets in {key}",
                        stdin=rules.ipset,
                        creates=(Item(f"ipset:{key}", "ipset", f"{rules.sets} sets", where=key, parent=f"ns:{key}"),),
                    ),
                )
            yield (
                key,
                Step(
                    in_netns(pid, ["iptables-restore", "-w", "10"]),
                    what=f"iptables in {key}",
                    stdin=rules.iptables,
                    creates=(
                        Item(f"iptables:{key}", "iptables", f"{rules.rules_v4} rules", where=key, parent=f"ns:{key}"),
                    ),
                ),
            )
            yield (
                key,
                Step(
                    in_netns(pid, ["ip6tables-restore", "-w", "10"]),
                    what=f"ip6tables in {key}",
                    stdin=rules.ip6tables,
                    creates=(
                        Item(f"ip6tables:{key}", "ip6tables", f"{rules.rules_v6} rules", where=key, parent=f"ns:{key}"),
                    ),
                ),
            )

    # --- signals ----------------------------------------------------------
    def _guard(self) -> None:
        atexit.register(self.down)
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old_handlers[sig] = signal.signal(sig, self._on_signal)

    def _ahead_of_other_work(self) -> None:
        """This thread (and the threads and processes it starts from now on) at :data:`TIMING_NICE`."""
        self._nice_before = os.getpriority(os.PRIO_PROCESS, 0)
        os.setpriority(os.PRIO_PROCESS, 0, min(self._nice_before, TIMING_NICE))

    def _back_to_normal_priority(self) -> None:
        if self._nice_before is not None:
            os.setpriority(os.PRIO_PROCESS, 0, self._nice_before)
            self._nice_before = None

    def _on_signal(self, signum, frame) -> None:
        """Ctrl-C or SIGTERM: stop the run (the ``finally`` tears down). During the teardown itself, a second
        one (a second Ctrl-C, or a signal forwarded twice) must not cut it short and leave things behind:
        it is remembered and raised once everything is removed."""
        if self._tearing_down:
            if self._deferred is None:
                print(f"labtwin: removing what run {self.plan.run_id} created; it stops when done", file=sys.stderr)
            self._deferred = signum
            return
        raise _exception_for(signum)

    def _unguard(self) -> None:
        atexit.unregister(self.down)
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)
        self._old_handlers.clear()


def _exception_for(signum: int) -> BaseException:
    return KeyboardInterrupt() if signum == signal.SIGINT else SystemExit(128 + signum)
