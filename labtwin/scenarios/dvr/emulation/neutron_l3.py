"""``control=neutron``: Neutron 29's own L3 agents build the routers of the dvr emulation (issue 15).

The emulated hosts, bridges, VMs, the DHCP stand-in and the outside world are the
labtwin emulation's (:mod:`.plan`, :mod:`.labtwin_agent.routing`); the routers are
not. Each L3 agent host runs a worker process with Neutron's
``L3NATAgentWithStateReport`` (:mod:`labtwin.emulation.neutron_agent.l3_worker`):
a legacy router's in ``agent_mode=legacy`` on the network node; a DVR router's in
``dvr_snat`` on the network node and ``dvr`` on each compute node with the
router's VMs. Each agent's server answers ``sync_routers`` from the rows
:func:`sync_rows` makes of the topology for that host (the layout's ports, MACs and
addresses, so the devices are named as the model names them); Neutron's own code
then makes the namespaces' devices, addresses, routes, policy rules, sysctls,
NAT chains, floating IPs, ARP entries and rfp-/fpr- links, and plugs its
qr-/qg-/sg-/fg- devices with
:class:`~labtwin.emulation.neutron_agent.l3_driver.EmulatedBridgeDriver` into
the host's br-int, as the labtwin emulation plugs its own. The probes, captures
and the reading of paths are the same as under ``control=labtwin``.

The run's private namespace prefix: Neutron's agent deletes, at its first fullsync,
every ``qrouter-``/``snat-``/``fip-`` namespace it does not own. Here each
agent's prefixes are ``lt<rid>l<n>qrouter-`` and so on (:func:`agent_prefix`,
one per agent, as each host is a machine of its own), so nothing outside the
run, and nothing of another emulated host, has a name it manages. The
namespaces are held by the run (Mininet hosts, named for Neutron with ``ip netns
attach``, ledgered): Neutron's ``Namespace.create`` finds each existing
(``IPWrapper.ensure_namespace``) and builds in it; the captures and the probe
agent enter them by their holders' pids, and a crash followed by ``labtwin
clean`` removes them with their holders.

Where Neutron's agents differ from the labtwin emulation's plan, Neutron wins (it
is its code): under DVR every agent host with the router gets a ``fip-``
namespace with an agent gateway port (the network node too), not only hosts
with floating IPs, and the dvr_snat node a ``qrouter-`` as well.

Simplifications, stated: the agents hear only their fullsync (no RPC
notifications) and stop once the routers are built (the kernel state stays);
Neutron's GARPs are sent by its own ``_arping`` (with Debian's arping) from the
worker, only as far as the agent runs (:mod:`~labtwin.emulation.neutron_agent.l3_worker`:
the first of the three rounds, as the router is built);
DHCP is the labtwin emulation's stand-in, not Neutron's DHCP agent; the OVS
agent's DVR flows (DVR MAC rewriting) are :mod:`.labtwin_agent.flows`' (the L3
agent does not write them), on the network node too; the probes wait for IPv6
duplicate address detection in Neutron's namespaces to end (:func:`wait_for_dad`);
HA routers alone (:mod:`.neutron_l3_ha`), no PTG proposals. Several routers: one
agent per host builds every router Neutron's server gives that host
(:func:`plan_neutron_routers`).

IPv6: the rows carry the topology's IPv6 subnets as Neutron's server does (one qr- port per IPv4 subnet and one
for the IPv6 subnet, the gateway port's external IPv6 address, each subnet's ``ipv6_ra_mode``); Neutron's agent
starts radvd in every qrouter- with an IPv6 qr- port, ledgered before the agent starts (:func:`radvd_argvs`),
checked after the build (:func:`_check_radvd`) and ended with the run. The routes Neutron writes decide where
IPv6 goes: from a DVR host into its own fip- (the IPv6 default via fpr- in the qrouter- main table), not snat-
(/work/notes/finding-ipv6-dvr.md).
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Optional

from labtwin.description import Cloud
from labtwin.description.objects import derived_id
from labtwin.emulation.ledger import ROOT, Item
from labtwin.emulation.naming import node_name
from labtwin.emulation.runner import Step
from labtwin.emulation.snapshot import NEUTRON_LOCKS

from .. import neutron_names as names
from ..knobs import DvrDesign
from ..spec import studied_routers
from . import layout as L
from .labtwin_agent.flows import _dvr_process, bridge_flows
from .labtwin_agent.routing import dhcp_outside_and_flows
from .plan import CapturePoint, DvrPlan, add_ns, new_plan

L3_WORKER_MODULE = "labtwin.emulation.neutron_agent.l3_worker"
#: Importing Neutron's L3 agent and constructing it: ~5 s here; more is a hang.
START_TIMEOUT_S = 180.0
#: One fullsync building one legacy router: 11-25 s measured in the feasibility study; more is a hang.
SYNC_TIMEOUT_S = 300.0
#: Neutron's ``DEVICE_OWNER_ROUTER_INTF`` / ``_GW`` / ``FLOATINGIP_STATUS_ACTIVE``.
ROUTER_INTF, ROUTER_GW = "network:router_interface", "network:router_gateway"
#: ``DEVICE_OWNER_DVR_INTERFACE``, ``DEVICE_OWNER_ROUTER_SNAT``, ``DEVICE_OWNER_AGENT_GW``, ``DEVICE_OWNER_DHCP``.
DVR_INTF, SNAT_INTF = "network:router_interface_distributed", "network:router_centralized_snat"
FIP_AGENT_GW, DHCP = "network:floatingip_agent_gateway", "network:dhcp"
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
    #: The IDs of the routers whose qrouter- here has an IPv6 qr- port: Neutron's agent runs radvd for each
    #: (:func:`radvd_argvs`).
    radvd_routers: tuple[str, ...] = ()
    #: The routers this agent hosts (their layouts), as ``sync_routers`` gives them to its host; empty: the plan's.
    layouts: list = field(default_factory=list)


def agent_prefix(run_id: str, index: int) -> str:
    """The private namespace prefix of the run's *index*-th L3 agent (``lt<rid>l<n>``: letters and digits,
    no ``-``, so Neutron's ``get_prefix_from_ns_name`` reads ``lt<rid>l<n>qrouter-`` as one prefix).

    >>> agent_prefix("k2ll", 0) + "qrouter-"
    'ltk2lll0qrouter-'
    """
    return node_name(run_id, "l", index)


def radvd_argvs(agent: AgentHost) -> list[tuple[str, ...]]:
    """The argv of each radvd Neutron's agent starts in a qrouter- of its host (one per router with an IPv6 qr-
    port), known before the agent starts so that the ledger holds it first.

    Neutron 29 ``RouterInfo._process_internal_ports`` calls ``enable_radvd`` when an internal port has an IPv6
    subnet; ``ra.DaemonMonitor._spawn_radvd`` runs ``radvd -C <ra_confs>/<router>.radvd.conf -p
    <external_pids>/<router>.pid.radvd -m syslog -u <user>`` (``-u``: the agent's own user name when
    ``radvd_user`` is unset, as here) through ``external_process.ProcessManager`` in the namespace; both
    directories default under ``state_path`` (``neutron/conf/agent/common.py``), which is the agent's lock
    directory. radvd daemonizes (and forks a privileged helper with the same argv): the worker does not own it,
    so the ledger ends every process with exactly this argv."""
    import pwd

    locks, user = _lock_dir(agent), pwd.getpwuid(os.geteuid()).pw_name
    return [
        ("radvd", "-C", f"{locks}/ra/{rid}.radvd.conf", "-p", f"{locks}/external/pids/{rid}.pid.radvd")
        + ("-m", "syslog", "-u", user)
        for rid in agent.radvd_routers
    ]


def plan_neutron(cloud: Cloud, design: DvrDesign, run_id: str) -> tuple[DvrPlan, list[AgentHost]]:
    """The dvr plan without labtwin's routers: for each L3 agent host bare namespaces Neutron's agent builds in,
    and the capture points of the devices it will make (the first router's view of :func:`plan_neutron_routers`)."""
    views, agents = plan_neutron_routers(cloud, design, run_id)
    return views[0], agents


def plan_neutron_routers(cloud: Cloud, design: DvrDesign, run_id: str) -> tuple[list[DvrPlan], list[AgentHost]]:
    """:func:`plan_neutron` for every studied router (issue 15: several routers, a legacy and a distributed one
    side by side): one plan, one view of it per router (the plan with that router's layout: its probes, paths
    and walks are read through it), and one L3 agent per host, which builds every router Neutron's server
    gives that host.

    As Neutron 29 schedules them (``l3_agent_scheduler``, ``l3_dvrscheduler_db``): the network node's agent
    (``dvr_snat`` when any router is distributed, else ``legacy``) hosts every legacy router and each
    distributed router's SNAT part and qrouter-; a ``dvr`` agent on each host with a distributed router's
    ports (:meth:`~.layout.Layout.qrouter_hosts`) hosts that router. Simplifications, stated: one network
    node hosts every legacy router (Neutron's scheduler would spread them over several); at most one
    distributed router (two would share each host's fip- namespace and fg- port: ``check_emulable`` refuses
    them); an HA router is built alone (:mod:`.neutron_l3_ha`)."""
    dp = new_plan(cloud, design, run_id)
    lay = dp.layout
    layouts = [lay]
    if lay.router.ha and not lay.dvr:  # an HA router: an agent on each network node (.neutron_l3_ha)
        from .neutron_l3_ha import ha_agents

        agents = ha_agents(dp, run_id)
    else:
        layouts += [router_layout(cloud, design, r) for r in studied_routers(cloud) if r.name != lay.router.name]
        agents = _agents(dp, layouts, run_id)
    for agent in agents:
        hosted = agent.layouts or [lay]
        agent.radvd_routers = tuple(str(lo.router.id) for lo in hosted if any(s.ip_version == 6 for s in lo.subnets()))
    dhcp_outside_and_flows(dp)
    for other in layouts[1:]:
        _other_router(dp, other)
    for lo in layouts:
        if lo.dvr and lo.network_node not in lo.qrouter_hosts():
            # the OVS agent's DVR flows on the dvr_snat node too, whose qrouter- has the distributed qr- ports
            bridge = dp.bridges[(lo.network_node, "br-tun")]
            dp.flows.setdefault(bridge, []).extend(_dvr_process(replace(dp, layout=lo), lo.network_node))
    return [dp, *(replace(dp, layout=other) for other in layouts[1:])], agents


def router_layout(cloud: Cloud, design: DvrDesign, router) -> L.Layout:
    """The layout of *router* (:func:`~.layout.layout` studies the file's first router with a gateway: here it is
    given the cloud with *router* first; nothing else of the cloud changes)."""
    others = [r for r in cloud.routers if r.name != router.name]
    return L.layout(cloud.model_copy(update={"routers": (router, *others)}), design)


def _other_router(dp: DvrPlan, lay: L.Layout) -> None:
    """What the plan (made for the first router) lacks for another router: its VMs' default routes via its
    subnets' gateways (as :func:`~.plan.new_plan` gives the first router's VMs), the outside world's return
    routes to its IPv6 subnets via its qg- (IPv6 is routed, not NATed: :func:`~.labtwin_agent.routing.external`)
    and, distributed, the OVS agent's DVR flows for its qr- ports (:func:`~.labtwin_agent.flows.bridge_flows`)."""
    for vm in lay.vms:
        for version in (4, 6):
            subnet = lay.vm_subnet(vm, version)
            if subnet is not None and subnet.gateway_ip is not None:
                dp.plan.config[dp.vm_ns[vm.name]].ip_batch.append(f"route add default via {subnet.gateway_ip}")
    qg6 = next((a.ip for a in lay.qg.addrs if a.version == 6), None) if lay.qg is not None else None
    if qg6 is not None:
        dp.plan.config["external"].ip_batch += [f"route add {subnet.cidr} via {qg6}" for subnet in lay.subnets(6)]
    if lay.dvr:
        for bridge, lines in bridge_flows(replace(dp, layout=lay)).items():
            dp.flows.setdefault(bridge, []).extend(lines)


def _agents(dp: DvrPlan, layouts: list[L.Layout], run_id: str) -> list[AgentHost]:
    """One agent per host that hosts a router (the network node first, then the hosts in file order), each with
    the routers' namespaces it builds; its unplanned names are the other ones its routers could make there."""
    nn = dp.layout.network_node
    any_dvr = any(lo.dvr for lo in layouts)
    hosts = [
        nn,
        *(h.name for h in dp.layout.cloud.hosts if any(lo.dvr and h.name in lo.qrouter_hosts() for lo in layouts)),
    ]
    hosts = list(dict.fromkeys(hosts))
    agents = {
        host: AgentHost(host, ("dvr_snat" if any_dvr else "legacy") if host == nn else "dvr", agent_prefix(run_id, i))
        for i, host in enumerate(hosts)
    }
    candidates: dict[str, list[str]] = {host: [] for host in hosts}
    for index, lo in enumerate(layouts):
        tag = "" if index == 0 else f"@{lo.router.name}"
        if lo.dvr:
            _dvr_router(dp, lo, agents, candidates, tag)
        else:
            agent = agents[nn]
            agent.layouts.append(lo)
            candidates[nn] += [agent.prefix + L.snat_ns(lo), agent.prefix + L.fip_ns(lo)]
            _namespace(dp, agent, f"qrouter:{nn}{tag}", L.qrouter_ns(lo), [*lo.qr.values(), lo.qg])
    for host, agent in agents.items():
        planned = set(agent.namespaces.values())
        agent.unplanned = tuple(dict.fromkeys(n for n in candidates[host] if n not in planned))
    return list(agents.values())


def _dvr_router(dp: DvrPlan, lay: L.Layout, agents: dict[str, AgentHost], candidates, tag: str) -> None:
    """A distributed router: on the network node (``dvr_snat``) and each compute node with its VMs (``dvr``).

    Each makes ``qrouter-<router>`` with the distributed qr- ports (the dvr_snat node too) and, since the router
    has a gateway, its host's ``fip-<ext-net>`` with the agent gateway port (``DvrLocalRouter.process_external``
    asks for one on every such host: ``create_fip_agent_gw_port_if_not_exists``) and the rfp-/fpr- pair; the
    dvr_snat agent also ``snat-<router>`` with the sg- ports and qg-."""
    nn = lay.network_node
    hosts = [nn, *(h for h in lay.qrouter_hosts() if h != nn)]
    _agent_gateway_ports(lay, hosts)
    for host in hosts:
        agent = agents[host]
        agent.layouts.append(lay)
        qrouter, fip = f"qrouter:{host}{tag}", f"fip:{host}"
        _namespace(dp, agent, qrouter, L.qrouter_ns(lay), list(lay.qr.values()))
        if host == nn:
            _namespace(dp, agent, f"snat{tag}", L.snat_ns(lay), [*lay.sg.values(), lay.qg])
        else:
            candidates[host].append(agent.prefix + L.snat_ns(lay))
        _namespace(dp, agent, fip, L.fip_ns(lay), [lay.fg[host]])
        dp.captures += [
            CapturePoint(qrouter, L.rfp(lay), L.hop(host, L.qrouter_ns(lay), L.rfp(lay))),
            CapturePoint(fip, L.fpr(lay), L.hop(host, L.fip_ns(lay), L.fpr(lay))),
        ]


def _agent_gateway_ports(lay: L.Layout, hosts: list[str]) -> None:
    """An agent gateway port (fg-) for every DVR host, as Neutron's server makes one for each agent that asks:
    the layout's where it has one (hosts with floating IPs), else the addresses the loader gave that host's
    fg- port (it makes one for every DVR host: ``neutron_ports.agent_gateway_ports``), else (a design knob
    making the file's router DVR) the next free addresses of the external subnets."""
    ipam = L._Ipam(lay.cloud, lay.fips.values())
    ports = [*lay.qr.values(), *lay.sg.values(), *lay.fg.values(), *lay.dhcp.values(), lay.qg]
    ipam.used |= {ipaddress.ip_address(str(a.ip)) for p in ports if p is not None for a in p.addrs}
    ext_subnets = [s for s in lay.cloud.subnets if s.network_id == lay.ext.name]
    made = L._neutron_made_addresses(lay.cloud, lay.router.name)
    for host in hosts:
        if host not in lay.fg:
            pid = names.fip_gateway_port_id(host, lay.ext.name)
            addrs = tuple(
                L._iface(made[(host, s.name)], s) if (host, s.name) in made else ipam.next(s) for s in ext_subnets
            )
            lay.fg[host] = L.RouterPort("fg", pid, names.fg_device(pid), names.mac_of(pid), lay.ext.name, addrs)


def _namespace(dp: DvrPlan, agent: AgentHost, key: str, label: str, ports) -> None:
    """Namespace *key* (Neutron's name *label*) on the agent's host, bare (loopback up, as
    ``IPWrapper.ensure_namespace`` leaves a new one: Neutron sets its sysctls, devices, addresses, routes and
    NAT), and the ports Neutron's agent will plug there: each a root end on the host's br-int and its capture
    points."""
    lay, host = dp.layout, agent.host
    cfg = add_ns(dp, key, "r", label)
    cfg.sysctls = []
    agent.namespaces[key] = agent.prefix + label
    for port in ports:
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


# -- the server's rows --------------------------------------------------------------
def sync_rows(lay: L.Layout, host: str = "") -> dict:
    """What Neutron's database gives ``get_sync_data`` for the layout's router (plain data, JSON-able):
    ``routers`` (``_make_router_dict_with_gw_port``: the router, its ``external_gateway_info`` with
    ``enable_snat`` (l3_gwmode_db), and ``gw_port``), ``interfaces`` (``_get_sync_interfaces``: the router's
    ports, ``_make_port_dict``), ``floatingips`` (``_make_floatingip_dict_with_scope``), ``subnets`` by network
    id (``_get_subnets_by_network_list``'s fields) and ``mtus`` by network id. The worker runs Neutron's
    ``get_sync_data`` steps over them (:class:`~labtwin.emulation.neutron_agent.l3_worker.L3Server`).

    Ids are the topology's (the router's, networks', subnets'); the router's ports are the layout's
    (:func:`~.layout.layout`: ids, MACs and addresses from the topology's IPAM). A subnet carries
    ``ipv6_ra_mode`` (radvd's configuration is written from it) but not ``ipv6_address_mode``: Neutron 29's
    ``l3_db._get_subnets_by_network_list`` reads only its listed fields."""
    cloud, router = lay.cloud, lay.router
    assert lay.qg is not None and router.external_gateway_info is not None
    rid, host = str(router.id), host or lay.network_node
    owner = DVR_INTF if lay.dvr else ROUTER_INTF
    interfaces = [_port(lay, port, rid, owner, host) for port in lay.qr.values()]
    gw_port = _port(lay, lay.qg, rid, ROUTER_GW, lay.network_node)
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
            "distributed": lay.dvr,
            "ha": False,
            "routes": [],
            "enable_ndp_proxy": False,
        }
    ]
    if lay.dvr:  # l3_dvr_db: _build_routers_list's gw_port_host, _process_routers' SNAT and agent gateway ports
        routers[0]["gw_port_host"] = lay.network_node
        routers[0]["_snat_router_interfaces"] = [
            _port(lay, port, rid, SNAT_INTF, lay.network_node) for port in lay.sg.values()
        ]
        routers[0]["_floatingip_agent_interfaces"] = [_port(lay, lay.fg[host], f"agent-{host}", FIP_AGENT_GW, host)]
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
            # l3_dvr_db._get_dvr_sync_data: a dvr agent is given the floating IPs of its host's ports, bound there
            **({"host": cloud.port[port_name].host, "dest_host": None} if lay.dvr else {}),
        }
        for port_name, fip in lay.fips.items()
        # the router's own: the one on the port's subnet (lay.fips holds every floating IP of the external network)
        if any(f.subnet_id in router.interfaces for f in cloud.port[port_name].fixed_ips)
        and (not lay.dvr or cloud.port[port_name].host == host)
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
        "subnet_ports": _subnet_ports(lay) if lay.dvr else {},
    }


def agent_rows(dp: DvrPlan, agent: AgentHost) -> dict:
    """What the agent's server holds: :func:`sync_rows` of every router the agent hosts, for its host (one
    database: each router's rows side by side; the subnets, MTUs and ports by subnet of all)."""
    out: dict = {"routers": [], "interfaces": [], "floatingips": [], "subnets": {}, "mtus": {}, "subnet_ports": {}}
    for lay in agent.layouts or [dp.layout]:
        rows = sync_rows(lay, agent.host)
        for key in ("routers", "interfaces", "floatingips"):
            out[key] += rows[key]
        for key in ("subnets", "mtus", "subnet_ports"):
            out[key].update(rows[key])
    return out


def _subnet_ports(lay: L.Layout) -> dict[str, list[dict]]:
    """``get_ports_by_subnet`` per router subnet id (``get_ports_under_dvr_connected_subnet``: the bound ports
    with an address on it, with their allowed address pairs): the VMs, the DHCP port, the SNAT port. The DVR
    agent writes a permanent ARP entry for each (``DvrLocalRouter._set_subnet_arp_info``)."""
    cloud, out = lay.cloud, {}
    for name in lay.router.interfaces:
        subnet = cloud.subnet[name]
        ports = []
        for vm in lay.vms:
            fixed = [f for f in vm.fixed_ips if f.subnet_id == name]
            if fixed:
                ports.append(
                    {
                        "id": str(vm.id),
                        "mac_address": vm.mac_address,
                        "device_owner": vm.device_owner or "compute:nova",
                        "fixed_ips": [{"subnet_id": str(subnet.id), "ip_address": str(f.ip_address)} for f in fixed],
                        "allowed_address_pairs": [
                            {"ip_address": str(p.ip_address), "mac_address": p.mac_address or vm.mac_address}
                            for p in vm.allowed_address_pairs
                        ],
                    }
                )
        for port in [*lay.dhcp.values(), *lay.sg.values()]:
            owner = DHCP if port.kind == "dhcp" else SNAT_INTF
            for addr in port.addrs:
                if addr.ip in subnet.cidr:
                    ports.append(
                        {
                            "id": port.port_id,
                            "mac_address": port.mac,
                            "device_owner": owner,
                            "fixed_ips": [{"subnet_id": str(subnet.id), "ip_address": str(addr.ip)}],
                            "allowed_address_pairs": [],
                        }
                    )
        out[str(subnet.id)] = ports
    return out


def _port(lay: L.Layout, port: L.RouterPort, device_id: str, owner: str, host: str) -> dict:
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
        "device_id": device_id,
        "device_owner": owner,
        "binding:host_id": host,
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
    """Start every host's L3 worker side by side (each emulated host is a machine of its own), let Neutron's
    agents build the routers, stop them. Neutron's agents send their GARPs themselves. Returns what the run summary
    says of Neutron's agents: per agent its start and build seconds, what its namespace cleanup managed, its
    floating IP statuses and the kernel state of its namespaces; ``build_wall_s`` for them all."""
    from labtwin.emulation.neutron_agent import in_parallel

    answers: dict[str, tuple[dict, dict]] = {}

    def build(agent: AgentHost) -> None:
        worker = _start(real, agent)
        try:
            started = worker.ask(_start_request(real, agent, agent_rows(dp, agent)), START_TIMEOUT_S)
            answers[agent.host] = (started, worker.ask({"op": "sync"}, timeout=SYNC_TIMEOUT_S))
        finally:
            _stop(worker)

    t0 = time.perf_counter()
    in_parallel(build, agents)
    out: dict = {"agents": {}, "build_wall_s": round(time.perf_counter() - t0, 3)}
    out["dad_wait_s"] = wait_for_dad(real, [key for agent in agents for key in agent.namespaces])
    for agent in agents:  # in plan order: checks, speakers and state come out the same every run
        started, synced = answers[agent.host]
        _check_namespaces(agent)
        _check_radvd(agent)
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


def _check_namespaces(agent: AgentHost) -> None:
    """Every namespace with the agent's prefix is one the run planned (a fail-loud check: the teardown removes
    the others it ledgered, :attr:`AgentHost.unplanned`)."""
    listed = subprocess.run(("ip", "netns", "list"), capture_output=True, text=True, check=True, timeout=30).stdout
    names = {line.split()[0] for line in listed.splitlines() if line.strip()}
    extra = sorted(n for n in names if n.startswith(agent.prefix) and n not in agent.namespaces.values())
    if extra:
        raise RuntimeError(f"{agent.host}: Neutron's L3 agent made namespaces the run did not plan: {extra}")


def _check_radvd(agent: AgentHost) -> None:
    """The radvd processes Neutron's agent left running are the ledgered argvs, each of them running (fail loud:
    an unledgered process would outlive the run)."""
    from labtwin.emulation.ledger import process_table

    locks = _lock_dir(agent) + "/"
    running = [argv for argv in process_table().values() if any(locks in a for a in argv)]
    expected = radvd_argvs(agent)
    if set(running) != set(expected):
        raise RuntimeError(
            f"{agent.host}: Neutron's L3 agent left {running or 'no process'} running; the run ledgered "
            f"{expected or 'none'}"
        )


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


def _check_garps(agent: AgentHost, garps: list) -> None:
    """Each GARP Neutron's agent sent (namespace, device, address; its worker ran Neutron's own ``_arping``) was
    on a device of the run's namespaces (fail loud otherwise)."""
    devs = {plug["dev"] for plug in agent.plugs.values()}
    for ns_name, dev, _ in garps:
        if ns_name not in agent.namespaces.values() or dev not in devs:
            raise RuntimeError(f"Neutron's agent sent a GARP on {ns_name}:{dev}, which the run does not hold")
