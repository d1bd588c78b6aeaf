"""``control=neutron``: Neutron 29's own L3 agents build the routers of the dvr emulation (issue 15); this module
plans the agents.

The emulated hosts, bridges, VMs, the DHCP stand-in and the outside world are the
labtwin emulation's (:mod:`.plan`, :mod:`.labtwin_agent.routing`); the routers are
not. Each L3 agent host runs a worker process with Neutron's
``L3NATAgentWithStateReport`` (:mod:`labtwin.emulation.neutron_agent.l3_worker`):
a legacy router's in ``agent_mode=legacy`` on the network node; a DVR router's in
``dvr_snat`` on the network node and ``dvr`` on each compute node with the
router's VMs. Each agent's server answers ``sync_routers`` from the rows
:func:`~.neutron_l3_rows.sync_rows` makes of the topology for that host (the layout's ports, MACs and
addresses, so the devices are named as the model names them); Neutron's own code
then makes the namespaces' devices, addresses, routes, policy rules, sysctls,
NAT chains, floating IPs, ARP entries and rfp-/fpr- links, and plugs its
qr-/qg-/sg-/fg- devices with
:class:`~labtwin.emulation.neutron_agent.l3_driver.EmulatedBridgeDriver` into
the host's br-int, as the labtwin emulation plugs its own. The probes, captures
and the reading of paths are the same as under ``control=labtwin``.

Three modules: this one plans the agents (which host runs which agent in which mode, the bare namespaces it
builds in, the ports it plugs, its radvd argvs); :mod:`.neutron_l3_rows` holds the server's rows
(what Neutron's L3 RPC ``sync_routers`` answers, built from the topology); :mod:`.neutron_l3_run` starts the
agents, lets them build and checks what they left. HA routers: :mod:`.neutron_l3_ha`.

The run's private namespace prefix: Neutron's agent deletes, at its first fullsync,
every ``qrouter-``/``snat-``/``fip-`` namespace it does not own. Here each
agent's prefixes are ``lt<rid>l<n>qrouter-`` and so on (:func:`agent_prefix`,
one per agent, as each host is a machine of its own), so nothing outside the
run, and nothing of another emulated host, has a name it manages. The
namespaces are held by the run (Mininet hosts, named for Neutron with ``ip netns
attach``, ledgered: :func:`~.neutron_l3_run.start`): Neutron's ``Namespace.create`` finds each existing
(``IPWrapper.ensure_namespace``) and builds in it; the captures and the probe
agent enter them by their holders' pids, and a crash followed by ``labtwin
clean`` removes them with their holders.

Where Neutron's agents differ from the labtwin emulation's plan, Neutron wins (it
is its code): under DVR every agent host with the router gets a ``fip-``
namespace with an agent gateway port (the network node too), not only hosts
with floating IPs, and the dvr_snat node a ``qrouter-`` as well.

Simplifications, stated (those of running the agents: :mod:`.neutron_l3_run`):
DHCP is the labtwin emulation's stand-in, not Neutron's DHCP agent; the OVS
agent's DVR flows (DVR MAC rewriting) are :mod:`.labtwin_agent.flows`' (the L3
agent does not write them), on the network node too;
HA routers alone (:mod:`.neutron_l3_ha`), no PTG proposals. Several routers: one
agent per host builds every router Neutron's server gives that host
(:func:`plan_neutron_routers`).

IPv6: Neutron's agent starts radvd in every qrouter- with an IPv6 qr- port, ledgered before the agent starts
(:func:`radvd_argvs`), checked after the build (:func:`~.neutron_l3_run.check_radvd`) and ended with the run.
The routes Neutron writes decide where IPv6 goes: from a DVR host into its own fip- (the IPv6 default via fpr- in
the qrouter- main table), not snat- (/work/notes/finding-ipv6-dvr.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from labtwin.description import Cloud
from labtwin.emulation.ledger import ROOT
from labtwin.emulation.naming import node_name

from ..knobs import DvrDesign
from ..spec import studied_routers
from . import layout as L
from .labtwin_agent.flows import bridge_flows
from .labtwin_agent.routing import dhcp_outside_and_flows
from .plan import CapturePoint, DvrPlan, add_ns, new_plan


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

    from .neutron_l3_run import lock_dir  # here: neutron_l3_run imports this module

    locks, user = lock_dir(agent), pwd.getpwuid(os.geteuid()).pw_name
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
    hosts = [nn, *(h for h in lay.qrouter_hosts() if h != nn)]  # each with its fg- from the layout (lay.fg)
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
