"""``control=neutron``: Neutron 29's own L3 agent builds the routers of the dvr emulation (issue 15, legacy first).

The emulated hosts, bridges, VMs, the DHCP stand-in and the outside world are the
labtwin emulation's (:mod:`.plan`, :mod:`.labtwin_agent.routing`); the router is
not. On the network node, a worker process runs Neutron's
``L3NATAgentWithStateReport`` in ``agent_mode=legacy``
(:mod:`labtwin.emulation.neutron_agent.l3_worker`). Its server answers
``sync_routers`` from the rows :func:`sync_rows` makes of the topology (the
layout's ports, MACs and addresses, so the devices are named as the model names
them); Neutron's own code then makes the qrouter namespace's devices, addresses,
routes, sysctls, NAT chains and floating IPs, and plugs its qr-/qg- devices with
:class:`~labtwin.emulation.neutron_agent.l3_driver.EmulatedBridgeDriver` into
the host's br-int, as the labtwin emulation plugs its own. The probes, captures
and the reading of paths are the same as under ``control=labtwin``.

The run's private namespace prefix: Neutron's agent deletes, at its first fullsync,
every ``qrouter-``/``snat-``/``fip-`` namespace it does not own. Here its
prefixes are ``lt<rid>l<n>qrouter-`` and so on (:func:`agent_prefix`), so
nothing outside the run has a name it manages. The namespace itself is held by
the run (a Mininet host, named for Neutron with ``ip netns attach``, ledgered):
Neutron's ``Namespace.create`` finds it existing (``IPWrapper.ensure_namespace``)
and builds in it; the captures and the probe agent enter it by its holder's pid,
and a crash followed by ``labtwin clean`` removes it with the holder.

Simplifications, stated: the agent hears only its fullsync (no RPC
notifications); it stops once the router is built (the kernel state stays);
Neutron's GARPs are sent by labtwin's probe agent (``arping`` is not installed:
:mod:`~labtwin.emulation.neutron_agent.l3_worker` records what Neutron asked for);
DHCP is the labtwin emulation's stand-in, not Neutron's DHCP agent; one agent
(the network node's) and legacy routers only: DVR (``dvr``/``dvr_snat`` agents,
fip- and snat- namespaces) is the next slice.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Optional

from labtwin.description import Cloud
from labtwin.description.objects import derived_id
from labtwin.emulation.ledger import ROOT, Item
from labtwin.emulation.naming import node_name
from labtwin.emulation.runner import Step
from labtwin.emulation.snapshot import NEUTRON_LOCKS

from ..knobs import DvrDesign
from . import layout as L
from .labtwin_agent.flows import bridge_flows
from .labtwin_agent.routing import dhcp_standin, external, qdhcp
from .plan import CapturePoint, DvrPlan, add_ns, new_plan

L3_WORKER_MODULE = "labtwin.emulation.neutron_agent.l3_worker"
#: Importing Neutron's L3 agent and constructing it: ~5 s here; more is a hang.
START_TIMEOUT_S = 180.0
#: One fullsync building one legacy router: 11-25 s measured in the feasibility study; more is a hang.
SYNC_TIMEOUT_S = 300.0
#: Neutron's ``DEVICE_OWNER_ROUTER_INTF`` / ``_GW`` / ``FLOATINGIP_STATUS_ACTIVE``.
ROUTER_INTF, ROUTER_GW = "network:router_interface", "network:router_gateway"
PROJECT = "labtwin"


@dataclass
class AgentHost:
    """One host's L3 agent as planned: its private prefix, its namespaces (plan key -> Neutron's name with the
    prefix) and the ports its interface driver may plug (port id -> dev, root end, bridge, tag)."""

    host: str
    mode: str
    prefix: str
    namespaces: dict[str, str] = field(default_factory=dict)
    plugs: dict[str, dict] = field(default_factory=dict)
    #: Every other name the agent could give a namespace of this router (its snat- and its external network's
    #: fip-): ledgered too, so that one made unplanned is still removed; the build fails if one appears.
    unplanned: tuple[str, ...] = ()


def agent_prefix(run_id: str, index: int) -> str:
    """The private namespace prefix of the run's *index*-th L3 agent (``lt<rid>l<n>``: letters and digits,
    no ``-``, so Neutron's ``get_prefix_from_ns_name`` reads ``lt<rid>l<n>qrouter-`` as one prefix).

    >>> agent_prefix("k2ll", 0) + "qrouter-"
    'ltk2lll0qrouter-'
    """
    return node_name(run_id, "l", index)


def plan_neutron(cloud: Cloud, design: DvrDesign, run_id: str) -> tuple[DvrPlan, list[AgentHost]]:
    """The dvr plan without labtwin's routers: for each qrouter host a bare namespace Neutron's agent builds in,
    and the capture points of the devices it will make."""
    dp = new_plan(cloud, design, run_id)
    lay = dp.layout
    if lay.dvr:
        raise ValueError("control=neutron builds legacy routers only (DVR is the next slice)")
    agents = [_agent_namespace(dp, host, agent_prefix(run_id, i)) for i, host in enumerate(lay.qrouter_hosts())]
    if not design.distributed_dhcp:
        for network in lay.dhcp:
            qdhcp(dp, network)
    else:
        for host in [h.name for h in cloud.hosts if any(v.host == h.name for v in lay.vms)]:
            dhcp_standin(dp, host)
    external(dp)
    dp.flows = bridge_flows(dp)
    return dp, agents


def _agent_namespace(dp: DvrPlan, host: str, prefix: str) -> AgentHost:
    """``qrouter-<router>`` on *host*, bare (loopback up, as ``IPWrapper.ensure_namespace`` leaves a new one):
    Neutron sets its sysctls, devices, addresses, routes and NAT."""
    lay = dp.layout
    key, label = f"qrouter:{host}", L.qrouter_ns(lay)
    cfg = add_ns(dp, key, "r", label)
    cfg.sysctls = []
    unplanned = (prefix + L.snat_ns(lay), prefix + L.fip_ns(lay))
    agent = AgentHost(host, "legacy", prefix, {key: prefix + label}, unplanned=unplanned)
    for port in [*lay.qr.values(), lay.qg]:
        assert port is not None
        end = dp.root_end()
        agent.plugs[port.port_id] = {
            "dev": port.dev,
            "root": end,
            "bridge": dp.bridges[(host, "br-int")],
            "tag": L.vlan_of(lay.cloud, port.network),
        }
        dp.captures += [
            CapturePoint(key, port.dev, L.hop(host, label, port.dev)),
            CapturePoint(ROOT, end, f"{host}:br-int"),
        ]
    return agent


# -- the server's rows --------------------------------------------------------------
def sync_rows(lay: L.Layout) -> dict:
    """What Neutron's database gives ``get_sync_data`` for the layout's router (plain data, JSON-able):
    ``routers`` (``_make_router_dict_with_gw_port``: the router, its ``external_gateway_info`` with
    ``enable_snat`` (l3_gwmode_db), and ``gw_port``), ``interfaces`` (``_get_sync_interfaces``: the router's
    ports, ``_make_port_dict``), ``floatingips`` (``_make_floatingip_dict_with_scope``), ``subnets`` by network
    id (``_get_subnets_by_network_list``'s fields) and ``mtus`` by network id. The worker runs Neutron's
    ``get_sync_data`` steps over them (:class:`~labtwin.emulation.neutron_agent.l3_worker.L3Server`).

    Ids are the topology's (the router's, networks', subnets'); the router's ports are the layout's
    (:func:`~.layout.layout`: ids, MACs and addresses from the topology's IPAM)."""
    cloud, router = lay.cloud, lay.router
    assert lay.qg is not None and router.external_gateway_info is not None
    rid = str(router.id)
    interfaces = [_port(lay, port, rid, ROUTER_INTF) for port in lay.qr.values()]
    gw_port = _port(lay, lay.qg, rid, ROUTER_GW)
    gateway = router.external_gateway_info
    routers = [
        {
            "id": rid,
            "name": router.name,
            "tenant_id": PROJECT,
            "project_id": PROJECT,
            "admin_state_up": True,
            "status": "ACTIVE",
            "external_gateway_info": {
                "network_id": str(lay.ext.id),
                "enable_snat": gateway.enable_snat,
                "external_fixed_ips": [
                    {"subnet_id": f["subnet_id"], "ip_address": f["ip_address"]} for f in gw_port["fixed_ips"]
                ],
            },
            "gw_port_id": gw_port["id"],
            "gw_port": gw_port,
            "distributed": False,
            "ha": False,
            "routes": [],
            "enable_ndp_proxy": False,
        }
    ]
    floatingips = [
        {
            "id": derived_id("floatingip", port_name),
            "tenant_id": PROJECT,
            "project_id": PROJECT,
            "floating_ip_address": str(fip),
            "floating_network_id": str(lay.ext.id),
            "router_id": rid,
            "port_id": str(cloud.port[port_name].id),
            "fixed_ip_address": str(_v4(cloud, cloud.port[port_name])),
            "status": "DOWN",
            "fixed_ip_address_scope": None,
        }
        for port_name, fip in lay.fips.items()
    ]
    networks = {
        str(cloud.network[n].id): cloud.network[n] for n in {lay.ext.name, *(p.network for p in lay.qr.values())}
    }
    subnets = {
        nid: [_subnet(cloud, s) for s in cloud.subnets if s.network_id == network.name]
        for nid, network in networks.items()
    }
    return {
        "routers": routers,
        "interfaces": interfaces,
        "floatingips": floatingips,
        "subnets": subnets,
        "mtus": {nid: network.mtu for nid, network in networks.items()},
    }


def _port(lay: L.Layout, port: L.RouterPort, router_id: str, owner: str) -> dict:
    cloud = lay.cloud
    by_cidr = {s.name: s for s in cloud.subnets if s.network_id == port.network}
    fixed = []
    for addr in port.addrs:
        subnet = next(s for s in by_cidr.values() if addr.ip in s.cidr)
        fixed.append({"subnet_id": str(subnet.id), "ip_address": str(addr.ip)})
    return {
        "id": port.port_id,
        "name": "",
        "network_id": str(cloud.network[port.network].id),
        "tenant_id": PROJECT,
        "project_id": PROJECT,
        "mac_address": port.mac,
        "admin_state_up": True,
        "status": "ACTIVE",
        "fixed_ips": fixed,
        "device_id": router_id,
        "device_owner": owner,
        "binding:host_id": lay.network_node,
    }


def _subnet(cloud: Cloud, subnet) -> dict:
    return {
        "id": str(subnet.id),
        "cidr": str(subnet.cidr),
        "gateway_ip": None if subnet.gateway_ip is None else str(subnet.gateway_ip),
        "dns_nameservers": [],
        "network_id": str(cloud.network[subnet.network_id].id),
        "ipv6_ra_mode": subnet.ipv6_ra_mode,
        "subnetpool_id": None,
        "segment_id": None,
        "address_scope_id": None,
    }


def _v4(cloud: Cloud, port) -> Optional[ipaddress.IPv4Address]:
    return next((a.ip for a in L.fixed_interfaces(cloud, port) if a.version == 4), None)


# -- running the agents ---------------------------------------------------------------
def build_routers(real, dp: DvrPlan, agents: list[AgentHost]) -> dict:
    """Start each host's L3 worker, let Neutron's agent build its routers, stop it. Neutron's GARPs join the
    plan's speakers. Returns what the run summary says of Neutron's agents."""
    rows = sync_rows(dp.layout)
    out: dict = {"agents": {}}
    for agent in agents:
        worker = _start(real, agent)
        try:
            started = worker.ask(_start_request(real, agent, rows), timeout=START_TIMEOUT_S)
            synced = worker.ask({"op": "sync"}, timeout=SYNC_TIMEOUT_S)
        finally:
            _stop(worker)
        _check_namespaces(agent)
        _speakers(dp, agent, synced["garps"])
        state = {key: namespace_state(real, key) for key in agent.namespaces}
        out["agents"][agent.host] = {
            "agent_mode": agent.mode,
            "prefix": agent.prefix,
            "start_s": round(started["took"], 3),
            "router_build_s": round(synced["took"], 3),
            "namespaces_managed": synced["seen"],
            "routers": synced["routers"],
            "floatingip_statuses": synced["fip_statuses"],
            "garps": len(synced["garps"]),
            "state": state,
        }
    out["router_build_s"] = round(sum(a["router_build_s"] for a in out["agents"].values()), 3)
    return out


def namespace_state(real, key: str) -> dict[str, list[str]]:
    """What Neutron's agent left in namespace *key*: addresses (``ip -o addr``), routes (IPv4 main table),
    sysctls it sets (``Namespace.create``), and the rules of each iptables table (``-A`` lines of
    ``iptables-save``)."""

    def run(argv) -> list[str]:
        done = real.runner.run(Step(real.exec_argv(key, argv), what=f"read {key}"))
        return [line.strip() for line in done.stdout.splitlines() if line.strip()]

    rules = run(["iptables-save"])
    return {
        "addresses": [" ".join(line.split()[1:4]) for line in run(["ip", "-o", "addr", "show"])],
        "routes": run(["ip", "route", "show"]),
        "sysctls": run(["sysctl", "net.ipv4.ip_forward", "net.ipv4.conf.all.arp_ignore"]),
        "iptables": [line for line in rules if line.startswith(("*", "-A", ":neutron"))],
    }


def _start_request(real, agent: AgentHost, rows: dict) -> dict:
    return {
        "op": "start",
        "lock_dir": _lock_dir(agent),
        "host": agent.host,
        "agent_mode": agent.mode,
        "prefix": agent.prefix,
        "plugs": agent.plugs,
        "rows": rows,
    }


def _lock_dir(agent: AgentHost) -> str:
    return os.path.join(NEUTRON_LOCKS, agent.prefix)


def _start(real, agent: AgentHost):
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
    locks = _lock_dir(agent)
    real.ledger.append([Item(f"dir:{locks}", "directory", locks, undo=("rm", "-rf", "--", locks))])
    os.makedirs(locks, exist_ok=True)
    argv = (sys.executable, "-m", L3_WORKER_MODULE, "--run", real.plan.run_id, "--host", agent.host)
    item = Item(f"proc:neutron-l3-agent:{agent.host}", "process", f"Neutron L3 agent of {agent.host}", match=argv)
    stderr_path = os.path.join(locks, "stderr.log")
    with open(stderr_path, "w") as stderr:
        proc = real.runner.spawn(
            Step(argv, what=f"{agent.host}: Neutron's L3 agent", creates=(item,)), talk=True, stderr_to=stderr
        )
    return NeutronWorker(agent.host, next(iter(agent.namespaces.values())), proc, stderr_path)


def _check_namespaces(agent: AgentHost) -> None:
    """Every namespace with the agent's prefix is one the run planned (a fail-loud check: the teardown removes
    the others it ledgered, :attr:`AgentHost.unplanned`)."""
    listed = subprocess.run(("ip", "netns", "list"), capture_output=True, text=True, check=True, timeout=30).stdout
    names = {line.split()[0] for line in listed.splitlines() if line.strip()}
    extra = sorted(n for n in names if n.startswith(agent.prefix) and n not in agent.namespaces.values())
    if extra:
        raise RuntimeError(f"{agent.host}: Neutron's L3 agent made namespaces the run did not plan: {extra}")


def _stop(worker) -> None:
    """Ask the worker to end; kill it when it does not within ten seconds (its ledger item also ends it)."""
    try:
        assert worker.proc.stdin is not None
        worker.proc.stdin.write('{"op": "stop"}\n')
        worker.proc.stdin.flush()
        worker.proc.wait(timeout=10)
    except (BrokenPipeError, subprocess.TimeoutExpired, OSError):
        worker.proc.kill()
        worker.proc.wait(timeout=10)


def _speakers(dp: DvrPlan, agent: AgentHost, garps: list) -> None:
    """Each GARP Neutron's agent asked for (namespace, device, address) as a speaker of the plan, with the
    device's MAC: the probe agent sends them before the first probe, as arping would have."""
    keys = {name: key for key, name in agent.namespaces.items()}
    macs = {plug["dev"]: _mac(dp, port_id) for port_id, plug in agent.plugs.items()}
    for ns_name, dev, address in garps:
        if ns_name not in keys or dev not in macs:
            raise RuntimeError(f"Neutron's agent asked for a GARP on {ns_name}:{dev}, which the run does not hold")
        if ipaddress.ip_address(address).version == 4:  # Neutron's arping sends IPv4 only (send_ip_addr_adv_notif)
            dp.speakers.append((keys[ns_name], dev, macs[dev], address))


def _mac(dp: DvrPlan, port_id: str) -> str:
    lay = dp.layout
    ports = [*lay.qr.values(), lay.qg]
    return next(p.mac for p in ports if p is not None and p.port_id == port_id)
