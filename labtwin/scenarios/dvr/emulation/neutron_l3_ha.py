"""``control=neutron`` HA routers: Neutron 29's own L3 agents on every network node, keepalived, VRRP failover.

A router with ``ha: true`` (legacy mode; DVR+HA is refused) is built by a ``legacy`` L3 agent on each network
node (``max_l3_agents_per_router``, default 3, of them, in file order), each in its own worker as
:mod:`.neutron_l3_run` starts them. What Neutron's server adds for an HA router (``l3_hamode_db``) is planned
here as rows: the project's HA network (``HA network project <project>``, a tenant network carried between
the network nodes on a fabric tag of its own, as the emulation carries every tenant network), its subnet
``l3_ha_net_cidr`` (169.254.192.0/18, no gateway), one HA port per agent (``network:router_ha_interface``,
``device_id`` the router, bound to the agent's host), the router's ``ha_vr_id``; the worker's server answers
``sync_routers`` with them through ``L3_HA_NAT_db_mixin._process_sync_ha_data`` itself (``_ha_interface``
with its subnets and MTU, ``_ha_state``).

From there everything is Neutron's and Debian's: ``HaRouter`` plugs the ``ha-`` port, writes keepalived's
and conntrackd's configuration under ``ha_confs_path`` (the agent's private state directory, its lock
directory: nothing outside the run), starts ``conntrackd`` (``ha_conntrackd_enabled``, which Neutron 29 has),
``keepalived`` and its ``neutron-keepalived-state-change`` monitor (Neutron 29's shell script: ``ip -o monitor
address`` in the namespace, the state file, a POST to the agent's state-change socket); keepalived puts the
router's addresses (its VIPs) and default route on the master only and sends its gratuitous ARPs; the agent
hears the state changes on its socket and reports them to its server (``update_ha_routers_states``,
recorded). The workers stay up until the run ends, so that the agents hear the failover too.

Which instance is master: keepalived's, with Neutron's settings (every instance ``BACKUP``, priority 50,
``nopreempt``): the first to start becomes master after ``Master_Down_Interval``, and the others, hearing
its adverts by then, stay backups. The run syncs the first network node's agent first, then the others (each
spawns keepalived at the end of its router's processing), and checks that the first is master and the others
backups: the model draws the router's paths on the first network node
(:func:`~labtwin.scenarios.dvr.spec.router_mode`).

The failover (:meth:`HaRouters.fail_over`): a VM that leaves by SNAT pings the outside world every 0.1 s; half
a second in, the master's ``ha-`` link is set down in its namespace (keepalived tracks it: the instance goes to
FAULT and drops its VIPs; the backups stop hearing adverts and one takes over after ``3 * advert_int +
(256 - priority) / 256`` from the last advert it heard). Measured: seconds from the cut to the first answered
ping sent after it, and when the new master's state file says ``primary``. Configured, not measured:
``ha_vrrp_advert_int`` (the design's knob, :func:`options`: Neutron's default 2 s; the live test sets 1 s, to
be short) and the priority (Neutron's ``HA_DEFAULT_PRIORITY``). The summary's ``ha_failover_s`` is compared
with the model's (:mod:`labtwin.scenarios.dvr.model.ha_router`, the same timers).

Processes: keepalived (two: its parent and VRRP child), conntrackd and the state-change script (two shells)
have argvs naming files under the agent's lock directory, known before the agent starts
(:func:`daemon_argvs`): each is ledgered first and ended by exact argv; a build leaving any other process with
the lock directory in its argv fails. The script's ``ip -o monitor address`` (argv not the run's own) dies
with its fifo's reader: ledgered after the root veth ends, the daemons are ended before the links go, whose
removal makes it write and end.

Simplifications, stated: HA port addresses are the subnet's first ones in host order and ``ha_vr_id`` is drawn
from the router id (Neutron's IPAM and ``_get_vr_id`` draw at random); the HA network's MTU is a VXLAN tenant
network's (1450); no ``radvd`` on HA routers (IPv4 only); no metadata proxy; GARPs for the router's addresses
are keepalived's (Neutron's agent sends none from Python for an HA router).
"""

from __future__ import annotations

import ipaddress
import os
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Optional

from labtwin.description.objects import derived_id
from labtwin.emulation.ledger import ROOT, Item, process_table
from labtwin.emulation.runner import Step

from .. import neutron_names as names
from . import layout as L
from .neutron_l3 import AgentHost, _namespace, agent_prefix
from .neutron_l3_rows import PROJECT, sync_rows
from .neutron_l3_run import (
    START_TIMEOUT_S,
    SYNC_TIMEOUT_S,
    check_namespaces,
    lock_dir,
    namespace_state,
    start,
    start_request,
    stop,
)
from .plan import CapturePoint, DvrPlan

#: ``l3_ha_net_cidr`` (neutron/conf/db/l3_hamode_db.py), the HA subnet of every project.
HA_NET_CIDR = ipaddress.ip_network("169.254.192.0/18")
#: ``max_l3_agents_per_router`` (same file): how many agents an HA router is scheduled to.
MAX_AGENTS = 3
#: ``DEVICE_OWNER_ROUTER_HA_INTF`` (neutron_lib.constants).
HA_INTF = "network:router_ha_interface"
#: ``HA_DEV_PREFIX`` (neutron/agent/l3/ha_router.py) and ``LinuxInterfaceDriver.DEV_NAME_LEN``.
HA_DEV_PREFIX, DEV_NAME_LEN = "ha-", 14
#: The HA network is a tenant network (``l3_ha_network_type`` unset: the first tenant type, VXLAN): 1500 - 50.
HA_MTU = 1450


def options(design) -> dict:
    """Neutron options the run sets for its HA agents (the rest are Neutron's defaults): the design's
    ``ha_vrrp_advert_int`` (Neutron's default 2 s; the live test sets 1 s, to be short) and conntrackd on."""
    return {"ha_vrrp_advert_int": design.ha_vrrp_advert_int, "ha_conntrackd_enabled": True}


#: ``keepalived.HA_DEFAULT_PRIORITY``: every instance's priority (the server sets none).
PRIORITY = 50
#: How long a keepalived may take to become master, or a state file to appear: more is a failure.
STATE_TIMEOUT_S = 30.0
#: The failover's ping stream (as :mod:`.ovn_failover`'s): its agent's lead, the pings' interval, seconds
#: of pings before the cut, settle time and horizon after it, and its marker.
LEAD_S, INTERVAL_S, FAIL_AT_S, SETTLED_S, HORIZON_S, STREAM_TOKEN = 2.0, 0.1, 0.5, 0.5, 10.0, 201


@dataclass
class HaPlan:
    """The HA network as the server makes it, and each agent host's HA port."""

    network_id: str
    subnet_id: str
    tag: int
    vr_id: int
    ports: dict[str, L.RouterPort] = field(default_factory=dict)  # by host


def ha_hosts(lay: L.Layout) -> list[str]:
    """The hosts whose L3 agents hold the HA router: the network nodes, in file order, at most MAX_AGENTS
    (``l3_agent_scheduler.chance``/``leastrouters`` pick among them; here the file's order)."""
    return [h.name for h in lay.cloud.hosts if h.role == "network"][:MAX_AGENTS]


def ha_tag(cloud) -> int:
    """The HA network's fabric tag: the first free one from 4000 down, as :func:`~.layout.fabric_tags` gives
    a tunnel network whose id is taken."""
    used = set(L.fabric_tags(cloud).values())
    return next(t for t in range(4000, 1, -1) if t not in used)


def ha_network(lay: L.Layout) -> HaPlan:
    """The HA network, subnet, VRID and each HA host's port, as ``l3_hamode_db`` makes them for the router
    (``_create_ha_network``, ``_create_ha_subnet``, ``add_ha_port``, ``_ensure_vr_id``)."""
    rid = str(lay.router.id)
    ha = HaPlan(
        network_id=derived_id("network", f"HA network project {PROJECT}"),
        subnet_id=derived_id("subnet", f"HA subnet project {PROJECT}"),
        tag=ha_tag(lay.cloud),
        vr_id=1 + zlib.crc32(rid.encode()) % 254,  # l3_hamode_db.VR_ID_RANGE is 1..254
    )
    for i, host in enumerate(ha_hosts(lay)):
        pid = derived_id("port", f"HA port {rid} {host}")
        addr = ipaddress.ip_interface(f"{HA_NET_CIDR[1 + i]}/{HA_NET_CIDR.prefixlen}")
        ha.ports[host] = L.RouterPort("ha", pid, (HA_DEV_PREFIX + pid)[:DEV_NAME_LEN], names.mac_of(pid), "", (addr,))
    return ha


def ha_agents(dp: DvrPlan, run_id: str) -> list[AgentHost]:
    """A ``legacy`` agent per HA host with its ``qrouter-`` (qr-, qg- and its own ha- port), and the HA network
    on every br-int-to-br-tun trunk."""
    lay = dp.layout
    ha = ha_network(lay)
    agents = []
    for i, host in enumerate(ha_hosts(lay)):
        prefix = agent_prefix(run_id, i)
        agent = AgentHost(host, "legacy", prefix, unplanned=(prefix + L.snat_ns(lay), prefix + L.fip_ns(lay)))
        key = f"qrouter:{host}"
        _namespace(dp, agent, key, L.qrouter_ns(lay), [*lay.qr.values(), lay.qg])
        _plug_ha(dp, agent, key, ha.ports[host], ha.tag)
        agents.append(agent)
    _trunk(dp, ha.tag)
    return agents


def _plug_ha(dp: DvrPlan, agent: AgentHost, key: str, port: L.RouterPort, tag: int) -> None:
    end = dp.root_end()
    bridge = dp.bridges[(agent.host, "br-int")]
    agent.plugs[port.port_id] = {"dev": port.dev, "root": end, "bridge": bridge, "tag": tag}
    dp.captures += [
        CapturePoint(key, port.dev, L.hop(agent.host, L.qrouter_ns(dp.layout), port.dev)),
        CapturePoint(ROOT, end, f"{agent.host}:br-int"),
    ]


def _trunk(dp: DvrPlan, tag: int) -> None:
    """The HA network's tag on every host's br-int side of patch-tun (the overlay's trunk)."""
    ends = {dp.ports[(h.name, "patch-tun")] for h in dp.layout.cloud.hosts}
    dp.plan.ovs_ports[:] = [
        replace(p, trunks=tuple(sorted({*p.trunks, tag}))) if p.dev in ends and p.trunks else p
        for p in dp.plan.ovs_ports
    ]


def ha_rows(lay: L.Layout, ha: HaPlan, host: str) -> dict:
    """:func:`~.neutron_l3_rows.sync_rows` for *host*'s agent, with what ``l3_hamode_db`` adds: the router's ``ha``
    and ``ha_vr_id``, the host's HA port binding (``ha_interfaces``; state ``standby`` until an agent reports),
    the HA subnet and the HA network's MTU (``_populate_mtu_and_subnets_for_ports`` reads them)."""
    rows = sync_rows(lay, host)
    (router,) = rows["routers"]
    router.update(ha=True, ha_vr_id=ha.vr_id)
    port = ha.ports[host]
    rows["ha_interfaces"] = [
        {
            "id": port.port_id,
            "name": f"HA port project {PROJECT}",
            "network_id": ha.network_id,
            "tenant_id": "",
            "project_id": "",
            "mac_address": port.mac,
            "admin_state_up": True,
            "status": "ACTIVE",  # HaRouter.process starts keepalived only for an ACTIVE HA port
            "fixed_ips": [{"subnet_id": ha.subnet_id, "ip_address": str(port.addrs[0].ip)}],
            "device_id": router["id"],
            "device_owner": HA_INTF,
            "binding:host_id": host,
            "_ha_state": "standby",
        }
    ]
    rows["subnets"][ha.network_id] = [
        {
            "id": ha.subnet_id,
            "cidr": str(HA_NET_CIDR),
            "gateway_ip": None,
            "dns_nameservers": [],
            "network_id": ha.network_id,
            "ipv6_ra_mode": None,
            "subnetpool_id": None,
            "segment_id": None,
            "address_scope_id": None,
        }
    ]
    rows["mtus"][ha.network_id] = HA_MTU
    return rows


def daemon_argvs(
    agent: AgentHost, router_id: str, vr_id: int, ha_dev: str, namespace: str
) -> dict[str, tuple[str, ...]]:
    """The argvs of the daemons Neutron's agent starts for an HA router, known before it starts.

    Neutron 29: ``KeepalivedManager.spawn`` (neutron/agent/linux/keepalived.py) runs ``keepalived -P -f
    <conf> -p <pid> -r <pid>-vrrp`` with its pid files in ``ha_confs_path`` (``<router>.pid.keepalived``:
    ``ProcessManager``'s file name for the ``keepalived`` service); ``ConntrackdManager.spawn``
    (conntrackd.py) ``conntrackd -d -C <conf>``; ``HaRouter._get_state_change_monitor_callback`` the
    state-change script (the venv's ``neutron-keepalived-state-change``, a ``/bin/sh`` script, run by its
    path) with the router, namespace, conf dir, log file, HA device, the primary VIP
    (``KeepalivedInstance.get_primary_vip``: the VRID in 169.254.0.0/24, the first free /24 of 169.254.0.0/16
    outside the metadata, DVR link-local and HA ranges), pid file, state path and
    the agent's uid/gid. ``ha_confs_path`` and ``external_pids`` default under ``state_path``, the agent's
    lock directory."""
    import sys

    locks = lock_dir(agent)
    conf = f"{locks}/ha_confs/{router_id}"
    script = os.path.join(os.path.dirname(sys.executable), "neutron-keepalived-state-change")
    return {
        "keepalived": (
            "keepalived",
            "-P",
            "-f",
            f"{conf}/keepalived.conf",
            "-p",
            f"{locks}/ha_confs/{router_id}.pid.keepalived",
            "-r",
            f"{locks}/ha_confs/{router_id}.pid.keepalived-vrrp",
        ),
        "conntrackd": ("conntrackd", "-d", "-C", f"{conf}/conntrackd.conf"),
        "state-change": (
            "/bin/sh",
            script,
            "--router_id",
            router_id,
            "--namespace",
            namespace,
            "--conf_dir",
            conf,
            "--log-file",
            f"{conf}/neutron-keepalived-state-change.log",
            "--monitor_interface",
            ha_dev,
            "--monitor_cidr",
            f"169.254.0.{vr_id}/24",
            "--pid_file",
            f"{locks}/external/pids/{router_id}.monitor.pid.neutron-keepalived-state-change-monitor",
            "--state_path",
            locks,
            "--user",
            str(os.geteuid()),
            "--group",
            str(os.getegid()),
            "--enable_conntrackd",
        ),
    }


def script_command(argv: tuple[str, ...]) -> bool:
    """One of the short commands ``neutron-keepalived-state-change`` runs and waits for: ``conntrackd -C <conf>
    <option>`` (``sync_conntrack``, through ``ip netns exec``) and the ``curl`` of ``notify_agent``.

    >>> script_command(("conntrackd", "-C", "/x/conntrackd.conf", "-f"))
    True
    >>> script_command(("conntrackd", "-d", "-C", "/x/conntrackd.conf"))
    False
    """
    if argv[:3] == ("ip", "netns", "exec"):
        argv = argv[4:]
    return (argv[:2] == ("conntrackd", "-C") and "-d" not in argv) or argv[:1] == ("curl",)


class HaRouters:
    """The HA router's agents, built one after another, kept up through the failover, stopped at the end."""

    def __init__(self, real, dp: DvrPlan, agents: list[AgentHost]) -> None:
        self.real, self.dp, self.agents = real, dp, agents
        self.ha = ha = ha_network(dp.layout)
        self.options = options(dp.layout.design)
        self.rid = str(dp.layout.router.id)
        self.workers: dict[str, object] = {}
        self.argvs = {
            a.host: daemon_argvs(a, self.rid, ha.vr_id, ha.ports[a.host].dev, a.namespaces[f"qrouter:{a.host}"])
            for a in agents
        }

    def state_file(self, agent: AgentHost) -> str:
        """Neutron's state file of the router on *agent* (``HaRouter.ha_state_path``: the script writes it)."""
        return f"{lock_dir(agent)}/ha_confs/{self.rid}/state"

    def state(self, agent: AgentHost) -> str:
        try:
            with open(self.state_file(agent)) as f:
                return f.read().strip()
        except FileNotFoundError:
            return ""

    def wait_state(self, agent: AgentHost, wanted: str, timeout: float = STATE_TIMEOUT_S) -> float:
        """Wall-clock time at which *agent*'s state file said *wanted* (polled every 20 ms)."""
        deadline = time.time() + timeout
        while self.state(agent) != wanted:
            if time.time() > deadline:
                raise RuntimeError(
                    f"{agent.host}: Neutron's HA router {self.rid} is {self.state(agent) or 'without a state'}, "
                    f"not {wanted}, {timeout:.0f} s on (keepalived: {self.state_file(agent)})"
                )
            time.sleep(0.02)
        return time.time()

    def build(self) -> dict:
        """Start every agent's worker side by side; sync the first network node's, then the others'; wait for
        the first's keepalived to be master and the others' backups. What the run summary says of them."""
        from labtwin.emulation.neutron_agent import in_parallel

        started: dict[str, dict] = {}

        def start_agent(agent: AgentHost) -> None:
            worker = self.workers[agent.host] = start(self.real, agent)
            self._ledger(agent)
            request = start_request(self.real, agent, ha_rows(self.dp.layout, self.ha, agent.host))
            started[agent.host] = worker.ask({**request, "options": self.options}, START_TIMEOUT_S)

        t0 = time.perf_counter()
        in_parallel(start_agent, self.agents)
        out: dict = {"agents": {}, "ha": {"vr_id": self.ha.vr_id, "options": self.options, "priority": PRIORITY}}
        synced: dict[str, dict] = {}
        for agent in self.agents:  # one after another: the first network node's keepalived starts first
            synced[agent.host] = self.workers[agent.host].ask({"op": "sync"}, timeout=SYNC_TIMEOUT_S)  # type: ignore[attr-defined]
        t_synced = time.perf_counter()
        for i, agent in enumerate(self.agents):
            self.wait_state(agent, "primary" if i == 0 else "backup")
            check_namespaces(agent)
            out["agents"][agent.host] = {
                "agent_mode": agent.mode,
                "prefix": agent.prefix,
                "start_s": round(started[agent.host]["took"], 3),
                "router_build_s": round(synced[agent.host]["took"], 3),
                "namespaces_managed": synced[agent.host]["seen"],
                "routers": synced[agent.host]["routers"],
                "floatingip_statuses": synced[agent.host]["fip_statuses"],
                "garps": len(synced[agent.host]["garps"]),
            }
        out["ha"]["master_after_s"] = round(time.perf_counter() - t_synced, 3)
        out["build_wall_s"] = round(time.perf_counter() - t0, 3)
        self._check_daemons()
        states = self.states()
        if [states[a.host] for a in self.agents] != ["primary"] + ["backup"] * (len(self.agents) - 1):
            raise RuntimeError(
                f"HA router {self.rid}: keepalived made {states} once built, not the first network node the master "
                "(the model draws the router there): did the HA network carry the first one's adverts?"
            )
        for agent in self.agents:
            out["agents"][agent.host]["ha_state"] = states[agent.host]
            out["agents"][agent.host]["state"] = {key: namespace_state(self.real, key) for key in agent.namespaces}
        return out

    def _ledger(self, agent: AgentHost) -> None:
        """The agent's daemons, after its root ends and lock directory (the teardown, in reverse, ends them first)."""
        self.real.ledger.append(
            [
                Item(f"proc:{name}:{agent.host}", "process", f"{name} of {agent.host}", match=argv)
                for name, argv in self.argvs[agent.host].items()
            ]
        )

    def _check_daemons(self) -> None:
        """Every ledgered daemon runs, and any other process naming an agent's lock directory is one of the
        state-change script's own short commands (:func:`script_command`); else the build fails (fail loud: an
        unledgered process would outlive the run)."""
        table = process_table()
        for agent in self.agents:
            locks = lock_dir(agent) + "/"
            running = {argv for argv in table.values() if any(locks in a for a in argv)}
            expected = set(self.argvs[agent.host].values())
            stray = sorted(argv for argv in running - expected if not script_command(argv))
            if stray or not expected <= running:
                raise RuntimeError(
                    f"{agent.host}: Neutron's L3 agent runs {sorted(running)} for its HA router; the run ledgered "
                    f"{sorted(expected)} (missing: {sorted(expected - running)}, not ledgered: {stray})"
                )

    def states(self) -> dict[str, str]:
        return {a.host: self.state(a) for a in self.agents}

    def fail_over(self, client_key: Optional[str], target: str) -> Optional[dict]:
        """Cut the master's ha- link while the VM in *client_key* pings *target* (the outside world); None with
        one agent or no SNAT client. Seconds from the cut to the first answered ping after it, to the new
        master's state file, and what the agents told their servers."""
        from .ovn_failover import recovery
        from .probing import run_agent

        if len(self.agents) < 2 or client_key is None:
            return None
        before = self.states()
        master = next(a for a in self.agents if before[a.host] == "primary")
        if sorted(before.values()).count("primary") != 1:
            raise RuntimeError(f"HA router {self.rid}: not one master before the failover: {before}")
        start_at = time.time() + LEAD_S
        cut_at = start_at + FAIL_AT_S
        stream = {
            "pid": self.real.pid(client_key),
            "kind": "stream",
            "dst": target,
            "interval": INTERVAL_S,
            "start_at": start_at,
            "cut_at": cut_at,
            "settled": SETTLED_S,
            "horizon": HORIZON_S,
            "token": STREAM_TOKEN,
        }
        key = f"qrouter:{master.host}"
        cut = ["ip", "link", "set", self.ha.ports[master.host].dev, "down"]
        others = [a for a in self.agents if a is not master]
        with ThreadPoolExecutor(max_workers=1 + len(others)) as pool:
            pinging = pool.submit(run_agent, self.real, [stream])
            time.sleep(max(0.0, cut_at - time.time()))
            self.real.runner.run(Step(self.real.exec_argv(key, cut), what=f"cut {master.host}'s HA port link"))
            cut_done = time.time()
            watch = {a.host: pool.submit(self._first_state, a, ("primary",), cut_done + HORIZON_S) for a in others}
            pings = pinging.result()[0]["pings"]
            seen = {h: f.result() for h, f in watch.items()}
        took_over = [h for h, at in seen.items() if at is not None]
        gateway_after = [  # where the router's gateway addresses are now (keepalived's VIPs on qg-)
            a
            for h in took_over
            for a in namespace_state(self.real, f"qrouter:{h}")["addresses"]
            if a.startswith("qg-") and " inet " in a
        ]
        return {
            "ha_failover_s": recovery(pings, cut_done),
            "cut": master.host,
            "took_over": took_over,
            "state_file_primary_s": {h: round(at - cut_done, 3) for h, at in seen.items() if at is not None},
            "states_after": self.states(),
            "gateway_after": gateway_after,
            # what each agent has told its server so far (a new master reports after 2 x advert_int: the
            # agent's own delay, then its BatchNotifier's; the run does not wait for it)
            "server_states": {
                a.host: self.workers[a.host].ask({"op": "ha_states"})["states"]  # type: ignore[attr-defined]
                for a in self.agents
            },
            "pings": len(pings),
            "answered_before_cut": sum(1 for p in pings if p["sent"] < cut_done and p["answered"] is not None),
        }

    def _first_state(self, agent: AgentHost, wanted: tuple[str, ...], until: float) -> Optional[float]:
        while time.time() < until:
            if self.state(agent) in wanted:
                return time.time()
            time.sleep(0.02)
        return None

    def stop(self) -> None:
        """Stop every worker (the daemons stay for the teardown, which ends them by their ledgered argvs)."""
        for worker in self.workers.values():
            stop(worker)
