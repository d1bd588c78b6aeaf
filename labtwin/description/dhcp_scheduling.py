"""Which DHCP agents host each network, chosen as Neutron 29's server chooses them.

Neutron 29's default ``network_scheduler_driver`` is ``neutron.scheduler.dhcp_agent_scheduler.WeightScheduler``
(``neutron/conf/agent/database/agentschedulers_db.py``) with ``dhcp_agents_per_network`` (default 1, minimum 1:
the cloud's :attr:`~labtwin.description.schema.Cloud.dhcp_agents_per_network`). The server schedules a network when
one of its subnets is created (``DhcpAgentNotifyAPI._notify_agents`` on ``subnet_create_end``, whether or not the
subnet has DHCP: the scheduler's own TODO), and again when a DHCP agent syncs (``AutoScheduler.auto_schedule_networks``,
from ``get_active_networks_info``). :class:`DhcpScheduler` replays both, in the order labtwin's loader and
:mod:`labtwin.oracle` create the cloud: every subnet in file order, then each DHCP agent's sync in the file's host
order.

At a subnet's creation (``BaseScheduler.schedule`` with ``DhcpFilter``):

- the candidates: on a routed network, the hosts mapped to the subnet's segment (``segment['hosts']``: the L2
  agents whose bridge mappings name its physnet); no host mapped, or no segment: every agent whose host can bind a
  segment of the network (``filter_hosts_with_network_access``: a tunnelled segment, or its physnet mapped);
- the network is left alone if as many agents as ``dhcp_agents_per_network`` host it among the candidates;
- otherwise the missing number is taken from the candidate agents not hosting it yet, least loaded first
  (``BaseWeightScheduler.select``: a stable sort by ``load``), ties in the order the database lists the agents.
  That query (``_get_active_agents``, ``agent_type`` and ``admin_state_up`` filters, no ORDER BY) is answered through
  the unique index on ``(agent_type, host)``, so in host-name order: sqlite, as the oracle runs it, does so
  (checked with four agents registered out of order). Neutron promises no order; another database (MySQL) may
  answer in another one, and then only the ties may differ;
- each bound agent's ``load`` goes up by one (``BaseResourceFilter.bind``: "reflect latest agent load even within
  the agent report interval").

A DHCP agent's sync (``auto_schedule_networks``) binds it, regardless of load and of whether its host can reach the
network, to each network with a DHCP subnet that has fewer than ``dhcp_agents_per_network`` agents; on a routed
network only when its host is mapped to a segment of one of the network's DHCP subnets.

Assumed (both sides): each agent reported ``networks: 0`` when it registered, and reports nothing more while the
cloud is created, so an agent's load is the number of networks bound to it so far, DHCP-less ones included. A
real agent re-reports every ``report_interval`` (30 s) with the networks it serves, so a cloud built slowly
over days may be spread differently: a topology describes a state, not its history. No availability zones
(``AZAwareWeightScheduler`` and ``availability_zone_hints`` are not modelled: every agent is in Neutron's
default zone, as the oracle registers them).

Left out on purpose: a port created on a network nobody hosts schedules it too (``port_create_end``). After every
subnet has been created, the only networks such a port can still get an agent for are those none of whose subnets
any DHCP agent reaches but a segment without subnets is reachable, or networks without subnets: their agent makes
no DHCP port (it serves the subnets of the segments it is mapped to), so no address and no port depends on it.

Hand-written rather than calling Neutron's scheduler: the loader runs without Neutron installed (the ``neutron``
extra), in milliseconds, and Neutron's filter and bind read and write its database. :func:`least_loaded` is the one
step with no database in it; ``tests/oracle`` checks it against ``BaseWeightScheduler.select``.
"""

from __future__ import annotations

from typing import Optional

from .schema import Cloud, Host, Segment, Subnet


def runs_dhcp_agent(host: Host) -> bool:
    """Whether *host* runs a DHCP agent: network nodes do, as the networking guide's ML2/OVS deployments have it
    (labtwin's assumption, shared with the oracle's agents: :mod:`labtwin.oracle.load`)."""
    return host.role == "network"


def least_loaded(agents: list[str], load: dict[str, int], wanted: int) -> list[str]:
    """The *wanted* agents of *agents* (in the database's order) with the least load: ``BaseWeightScheduler.select``
    (``sorted(agents, key=attrgetter('load'))[0:wanted]``, a stable sort)."""
    return sorted(agents, key=lambda agent: load[agent])[:wanted]


class DhcpScheduler:
    """Neutron's DHCP scheduling replayed over one cloud: :meth:`subnet_created` for each subnet, then
    :meth:`agent_synced` for each DHCP host; :attr:`hosting` says which agents (by host) host each network."""

    def __init__(self, cloud: Cloud):
        self.cloud = cloud
        self.per_network = cloud.dhcp_agents_per_network
        #: The DHCP agents' hosts in the database's order (host names in order: see the module's docstring).
        self.agents = sorted(h.name for h in cloud.hosts if runs_dhcp_agent(h))
        self.load = {agent: 0 for agent in self.agents}
        #: network name -> the hosts of the agents bound to it, in binding order.
        self.hosting: dict[str, list[str]] = {n.name: [] for n in cloud.networks}
        self.subnets: dict[str, list[Subnet]] = {n.name: [] for n in cloud.networks}  # per network, in file order
        for subnet in cloud.subnets:
            self.subnets[subnet.network_id].append(subnet)
        self.segments: dict[str, list[Segment]] = {n.name: [] for n in cloud.networks}
        for segment in cloud.segments:
            self.segments[segment.network_id].append(segment)
        self._mapped: dict[str, list[str]] = {}

    def subnet_created(self, subnet: Subnet) -> None:
        """``DhcpAgentNotifyAPI._notify_agents(subnet_create_end)`` -> ``WeightScheduler.schedule``."""
        candidates: Optional[set[str]] = None
        if subnet.segment_id is not None:
            candidates = set(self.segment_hosts(self.cloud.segment[subnet.segment_id])) or None  # [] filters nothing
        bound = self.hosting[subnet.network_id]
        hosted = [h for h in bound if candidates is None or h in candidates]
        if len(hosted) >= self.per_network:
            return
        if candidates is not None:
            hostable = [a for a in self.agents if a not in hosted and a in candidates]
        else:
            hostable = [a for a in self.agents if a not in hosted and self.reaches(a, subnet.network_id)]
        # Every chosen agent finds a vacant binding index (get_vacant_binding_index): at most
        # dhcp_agents_per_network minus those hosting are chosen, and a routed network's are forced.
        for agent in least_loaded(hostable, self.load, self.per_network - len(hosted)):
            bound.append(agent)
            self.load[agent] += 1

    def agent_synced(self, host: str) -> None:
        """``DhcpRpcCallback.get_active_networks_info`` -> ``AutoScheduler.auto_schedule_networks`` for *host*."""
        on_host = {s.name for s in self.cloud.segments if host in self.segment_hosts(s)}
        for network in self.cloud.networks:
            segments = {s.segment_id for s in self.subnets[network.name] if s.enable_dhcp}
            if not segments:
                continue  # no DHCP subnet
            routed = any(segments)
            if routed and not segments & on_host:
                continue
            bound = self.hosting[network.name]
            if len(bound) >= self.per_network or host in bound:
                continue
            bound.append(host)
            self.load[host] += 1

    def reaches(self, host: str, network: str) -> bool:
        """Whether *host*'s L2 agent can bind a segment of *network* (ML2's ``filter_hosts_with_network_access``,
        the Open vSwitch driver's ``check_segment_for_agent``): a tunnelled one (every labtwin host's agent has
        VXLAN and Geneve tunnels, and a network written without segments gets a VXLAN one), or one whose physnet
        its bridge mappings name."""
        segments = self.segments[network]
        mappings = self.cloud.host[host].bridge_mappings
        return not segments or any(s.physical_network is None or s.physical_network in mappings for s in segments)

    def segment_hosts(self, segment: Segment) -> list[str]:
        """The hosts Neutron maps to *segment* (``segmenthostmappings``, from each L2 agent's bridge mappings: only
        segments with a physnet)."""
        physnet = segment.physical_network
        if segment.name not in self._mapped:
            self._mapped[segment.name] = [
                h.name for h in self.cloud.hosts if physnet is not None and physnet in h.bridge_mappings
            ]
        return self._mapped[segment.name]


def schedule_dhcp(cloud: Cloud) -> DhcpScheduler:
    """The scheduling a cloud's creation goes through up to the DHCP agents' first sync (each subnet, in file
    order); the caller then syncs each agent (:meth:`DhcpScheduler.agent_synced`) in the file's host order."""
    scheduler = DhcpScheduler(cloud)
    for subnet in cloud.subnets:
        scheduler.subnet_created(subnet)
    return scheduler
