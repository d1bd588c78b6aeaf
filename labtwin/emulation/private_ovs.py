"""A private Open vSwitch inside one emulated host's namespace: its own database, its own vswitchd.

Neutron's OVS agent code expects to own the OVS it talks to: it adds bridges,
writes ``other_config`` and, pointed at the default ``tcp:127.0.0.1:6640``,
even adds a Manager to whatever OVS answers. It must never reach the
machine's own OVS (``/var/run/openvswitch``). So a host whose OVS is
programmed by Neutron gets one of its own, as each real compute node has:

- a run directory ``/run/labtwin/ovs/<node>`` holding the database file, its
  unix socket, the control sockets and every bridge's OpenFlow socket
  (``<bridge>.mgmt``: ``ovs-vswitchd`` puts them in ``$OVS_RUNDIR``);
- ``ovsdb-server`` on a fresh ``vswitch.ovsschema`` database;
- ``ovs-vswitchd --disable-system``: userspace (netdev) datapath only, run
  inside the host's namespace, so the devices it opens are the host's.

Each is ledgered before it exists (the directory, and both processes by
their argv, which names the run directory), so a crash followed by
``labtwin clean`` removes them. Facts from ``../shared/reference/real-parts.md``
(parts A and B): userspace OVS in a namespace per chassis, absolute socket
paths everywhere.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from typing import Optional

from labtwin.emulation.ledger import Item
from labtwin.emulation.runner import Step, in_netns
from labtwin.emulation.snapshot import PRIVATE_OVS_ROOT  # one run directory per host that has its own OVS

SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
#: A daemon creates its socket within milliseconds; more than this is a failure to start.
SOCKET_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class PrivateOvs:
    """One host's private OVS: where its sockets are, and how to address it."""

    host: str
    rundir: str

    @property
    def db(self) -> str:
        """The database's OVSDB address (``--db=`` of ovs-vsctl, ``[OVS] ovsdb_connection`` of Neutron)."""
        return f"unix:{self.rundir}/db.sock"

    def mgmt(self, bridge: str) -> str:
        """The OpenFlow address of *bridge* (for ``ovs-ofctl``)."""
        return f"unix:{self.rundir}/{bridge}.mgmt"

    @classmethod
    def for_node(cls, host: str, node: str) -> "PrivateOvs":
        """The private OVS of *host*, whose namespace is the run's node *node* (known before it exists)."""
        return cls(host, os.path.join(PRIVATE_OVS_ROOT, node))

    def vsctl(self, *args: str) -> tuple[str, ...]:
        """An ``ovs-vsctl`` command against this OVS (never the machine's own)."""
        return ("ovs-vsctl", f"--db={self.db}", "--timeout=10", *args)


def start_private_ovs(real, key: str, ovs: PrivateOvs) -> PrivateOvs:
    """Start *ovs* in the namespace *key* of realisation *real*; everything ledgered first."""
    host, rundir = ovs.host, ovs.rundir
    if os.path.dirname(rundir) != PRIVATE_OVS_ROOT:
        raise ValueError(f"{host}: a private OVS lives under {PRIVATE_OVS_ROOT}, not in {rundir}")
    real.ledger.append([Item(f"dir:{rundir}", "directory", rundir, undo=("rm", "-rf", "--", rundir))])
    os.makedirs(rundir, exist_ok=True)
    real.runner.run(Step(("ovsdb-tool", "create", f"{rundir}/conf.db", SCHEMA), what=f"{host}: its own OVS database"))
    pid = real.pid(key)
    database = (
        "ovsdb-server",
        f"{rundir}/conf.db",
        f"--remote=punix:{rundir}/db.sock",
        f"--unixctl={rundir}/ovsdb-server.ctl",
        f"--log-file={rundir}/ovsdb-server.log",
    )
    _spawn(real, pid, database, "ovsdb-server", ovs)
    _wait_for(f"{rundir}/db.sock", host)  # until it accepts a connection, not only until the file exists
    real.runner.run(Step(ovs.vsctl("--no-wait", "init"), what=f"{host}: initialise its OVS database"))
    switch = (
        "ovs-vswitchd",
        ovs.db,
        "--disable-system",
        f"--unixctl={rundir}/ovs-vswitchd.ctl",
        f"--log-file={rundir}/ovs-vswitchd.log",
    )
    # $OVS_RUNDIR: where vswitchd puts each bridge's OpenFlow socket (else the machine's /var/run/openvswitch)
    _spawn(real, pid, ("env", f"OVS_RUNDIR={rundir}", *switch), "ovs-vswitchd", ovs, match=switch)
    return ovs


def _spawn(real, pid: int, argv: tuple, daemon: str, ovs: PrivateOvs, match: tuple = ()) -> None:
    """*daemon* in the namespace of *pid*; nsenter (and env) exec it, so its argv is *match* (else *argv*)."""
    node = os.path.basename(ovs.rundir)
    spawn_daemon(real, argv, f"proc:{daemon}:{node}", f"{ovs.host}: its own {daemon}", ovs.rundir, daemon, pid, match)


def spawn_daemon(
    real, argv: tuple, key: str, what: str, logdir: str, name: str, pid: Optional[int] = None, match: tuple = ()
) -> None:
    """A long-lived daemon of the run, ledgered by its argv (*match*: its argv once nsenter and env have exec'd
    it) before it starts, its stderr in ``<logdir>/<name>.stderr``; in the namespace of *pid* when given."""
    item = Item(key, "process", what, match=match or argv)
    with open(os.path.join(logdir, f"{name}.stderr"), "w") as stderr:
        step_argv = in_netns(pid, argv) if pid is not None else argv
        real.runner.spawn(Step(step_argv, what=what, creates=(item,)), stderr_to=stderr)


def _wait_for(path: str, host: str) -> None:
    wait_for_socket(path, f"{host}: its ovsdb-server", os.path.join(os.path.dirname(path), "ovsdb-server.stderr"))


def wait_for_socket(path: str, who: str, stderr_path: str) -> None:
    """Wait until a daemon's Unix socket accepts a connection (the file exists once the daemon bound it, a moment
    before it listens: a client in between is refused); a failure names it and shows what the daemon said."""
    deadline = time.monotonic() + SOCKET_TIMEOUT_S
    while not _accepts(path):
        if time.monotonic() > deadline:
            try:
                with open(stderr_path) as fh:
                    tail = fh.read()[-1000:].strip() or "(nothing)"
            except OSError as exc:
                tail = f"(its stderr {stderr_path} is unreadable: {exc})"
            raise RuntimeError(
                f"{who} accepted no connection on {path} within {SOCKET_TIMEOUT_S:.0f} s; it said: {tail}"
            )
        time.sleep(0.01)


def _accepts(path: str) -> bool:
    """Whether the Unix socket at *path* exists and accepts a connection."""
    if not os.path.exists(path):
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except OSError:
            return False
    return True
