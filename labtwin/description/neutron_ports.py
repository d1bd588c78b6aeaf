"""The ports Neutron's server makes by itself, and the floating IPs that bring some of them.

Never written in a topology; the loader makes them as Neutron 29 does (``neutron/db/l3_dvr_db.py``), each
taking its addresses from the pools when Neutron would make it, and keeps them in the resolved cloud's
``network_ports`` (:class:`~labtwin.description.schema.NetworkPort`):

- a DVR router with a gateway gets a SNAT port per IPv4 interface subnet and one per network for its IPv6
  subnets, when each interface is added (:func:`snat_ports`);
- a floating IP on a port bound to a host, behind a DVR router, gives that host a floating-IP agent gateway
  port (``fg-``) on the external network, once per host, made right after the floating IP
  (:func:`floating_ips`); then every L3 agent hosting a DVR router with a gateway asks for its own, floating IP
  or not (:func:`agent_gateway_ports`). Assumed: every labtwin host runs a DVR L3 agent (``dvr_snat`` on network
  nodes, ``dvr`` elsewhere, as :mod:`labtwin.oracle` registers them), never ``dvr_no_external``.

- a network with a DHCP-enabled subnet gets a DHCP port from each DHCP agent Neutron's scheduler gives it (least
  loaded first, :mod:`.dhcp_scheduling`), right after its subnets are created (:func:`dhcp_ports`). Assumed, as the
  networking guide's ML2/OVS deployments have it: a DHCP agent runs on every network node (``role: network``) and
  nowhere else; ``dhcp_agents_per_network`` is the cloud's (default 1; per segment on a routed network).

Under ML2/OVN (the cloud's ``mechanism_driver: ovn``) Neutron makes none of the SNAT, ``fg-`` and DHCP ports
(ML2/OVS's: OVN answers DHCP itself, and the ``ovn-router`` plugin has no DVR); with ``ovn_metadata_enabled`` each
network gets its metadata port instead (:func:`metadata_ports`).
"""

from __future__ import annotations

from typing import Final, Optional

from .allocator import Allocator, allocate_per_version, pooled_groups
from .dhcp_scheduling import DhcpScheduler, runs_dhcp_agent, schedule_dhcp
from .errors import Loc
from .schema import Cloud, FixedIP, FloatingIP, Host, NetworkPort, Port, Router, Subnet

SNAT_OWNER: Final = "network:router_centralized_snat"
AGENT_GATEWAY_OWNER: Final = "network:floatingip_agent_gateway"
DHCP_OWNER: Final = "network:dhcp"
#: The device owners Neutron 29 serves by DVR besides ``compute:*`` (``neutron.common.utils.
#: get_other_dvr_serviced_device_owners`` with ``host_dvr_for_dhcp`` at its default, True: the trunk subport
#: owner and the DHCP port's). :mod:`labtwin.oracle`'s tests compare this copy with Neutron's function.
DVR_SERVICED_OTHER_OWNERS: Final = ("trunk:subport", DHCP_OWNER)
METADATA_OWNER: Final = "network:distributed"


def metadata_ports(cloud: Cloud, allocator: Allocator) -> tuple[NetworkPort, ...]:
    """ML2/OVN's metadata ports, with ``ovn_metadata_enabled`` (Neutron 29, ``ovn_client.py``): the ``ovn`` driver
    makes one per network when the network is created (``OVNClient.create_network`` -> ``create_metadata_port``:
    ``network:distributed``, device ``ovnmeta-<network>``, no address yet), every network, external ones too, then
    gives it an address on each IPv4 subnet with DHCP as that subnet is created (``create_subnet`` ->
    ``update_metadata_port``, before any other port can take one), and an EUI-64 address on each auto-address IPv6
    subnet (``add_auto_addrs_on_network_ports``: a ``network:distributed`` port may have addresses on several
    segments of a routed network). No address on an IPv6 subnet that allocates from its pools.

    Simplifications: one port per network, as Neutron 29's default ``[ovn] logical_switch_per_vlan_segment = False``
    has it (True gives a VLAN-only routed network one per segment, not modelled); Neutron takes a random free
    address, which may be one a port of the file names later (that port then gets 409 ``IpAddressInUse``), where
    labtwin takes the lowest address no port names, and gives the port none when the file names them all."""
    if cloud.mechanism_driver != "ovn" or not cloud.ovn_metadata_enabled:
        return ()
    made: list[NetworkPort] = []
    subnets: dict[str, list[Subnet]] = {n.name: [] for n in cloud.networks}
    for subnet in cloud.subnets:
        subnets[subnet.network_id].append(subnet)
    for network in cloud.networks:
        fixed: list[FixedIP] = []
        for subnet in subnets[network.name]:
            if subnet.ip_version == 4 and subnet.enable_dhcp:
                ip = allocator.take(subnet)
                if ip is not None:
                    fixed.append(FixedIP(subnet_id=subnet.name, ip_address=ip))
            elif subnet.ip_version == 6 and subnet.auto_address:
                fixed.append(FixedIP(subnet_id=subnet.name))
        made.append(NetworkPort(device_owner=METADATA_OWNER, network_id=network.name, fixed_ips=tuple(fixed)))
    return tuple(made)


def dhcp_ports(cloud: Cloud, allocator: Allocator) -> tuple[NetworkPort, ...]:
    """The DHCP ports Neutron 29 makes, before routers and the ports that let Neutron choose.

    Which agents host each network is Neutron's scheduling (:mod:`.dhcp_scheduling`: least-loaded agents when each
    subnet is created, then each agent's sync, which also takes the networks no agent reached). Each DHCP host, in
    file order, then asks for its ports: one per network it hosts, or on a routed network one per segment it is
    mapped to that has DHCP subnets (``DhcpAgent.call_driver`` groups the subnets ``get_network_info`` gives it by
    segment), with a fixed IP on each DHCP subnet of that network or segment (``DeviceManager._setup_new_dhcp_port``).
    A port that finds no free address is not made: the server answers ``IpAddressGenerationFailure`` and the agent
    gives up on the network until its next resync. None under ML2/OVN: its DHCP is OVN's own, no agent runs."""
    if cloud.mechanism_driver == "ovn":
        return ()
    scheduler = schedule_dhcp(cloud)
    made: list[NetworkPort] = []
    for host in (h for h in cloud.hosts if runs_dhcp_agent(h)):
        scheduler.agent_synced(host.name)
        for network in cloud.networks:
            if host.name not in scheduler.hosting[network.name]:
                continue
            for segment, served in _served(cloud, scheduler, host.name, network.name):
                port = _dhcp_port(network.name, host.name, segment, served, allocator)
                if port is not None:
                    made.append(port)
    return tuple(made)


def _served(cloud: Cloud, scheduler: DhcpScheduler, host: str, network: str):
    """``(segment, its DHCP subnets)`` for each DHCP server *host*'s agent runs for *network*: one without a
    segment, or on a routed network one per segment mapped to *host* (``DhcpRpcCallback.get_network_info`` keeps
    only those segments' subnets)."""
    subnets = [s for s in scheduler.subnets[network] if s.enable_dhcp]
    if not any(s.segment_id for s in subnets):
        return [(None, subnets)] if subnets else []
    by_segment: dict[str, list[Subnet]] = {}
    for subnet in subnets:
        if subnet.segment_id is not None and host in scheduler.segment_hosts(cloud.segment[subnet.segment_id]):
            by_segment.setdefault(subnet.segment_id, []).append(subnet)
    return list(by_segment.items())


def _dhcp_port(
    network: str, host: str, segment: Optional[str], subnets: list[Subnet], allocator: Allocator
) -> Optional[NetworkPort]:
    fixed: list[FixedIP] = []
    for subnet in subnets:
        if subnet.ip_version == 6 and subnet.auto_address:
            fixed.append(FixedIP(subnet_id=subnet.name))
            continue
        ip = allocator.take(subnet)
        if ip is None:
            allocator.give_back(fixed)
            return None
        fixed.append(FixedIP(subnet_id=subnet.name, ip_address=ip))
    return NetworkPort(device_owner=DHCP_OWNER, network_id=network, host=host, segment=segment, fixed_ips=tuple(fixed))


def snat_ports(cloud: Cloud, routers: tuple[Router, ...], allocator: Allocator):
    """The SNAT ports Neutron 29's server makes for each DVR router with a gateway, as each interface is added
    (``l3_dvr_db._add_csnat_on_interface_create``: one port on the interface's subnet; an IPv6 subnet on a
    network that already has one joins its port, ``_update_snat_v6_addrs_after_intf_update``). A router port
    names its subnet, so it takes a pool address even on a SLAAC subnet (:data:`~.checks.ROUTER_INTERFACE_OWNERS_SNAT`).
    No free address refuses the interface: the callback's failure (no more IP addresses) comes back from
    ``add_router_interface`` as 409 ``RouterInterfaceAttachmentConflict``."""
    made: list[NetworkPort] = []
    problems: list[tuple[Loc, str]] = []
    if cloud.mechanism_driver == "ovn":
        return (), problems  # the ovn-router plugin has no DVR: no SNAT port
    for i, router in enumerate(routers):
        if not (router.distributed and router.external_gateway_info is not None):
            continue
        v6_port: dict[str, int] = {}  # network -> its IPv6 SNAT port's place in *made*
        for j, name in enumerate(router.interfaces):
            subnet = cloud.subnet[name]
            ip = allocator.take(subnet)
            if ip is None:
                why = (
                    f"router {router.name!r}: its SNAT port finds no free address on subnet {name!r}, so the interface"
                    " is refused (RouterInterfaceAttachmentConflict, 409)"
                )
                problems.append((("routers", i, "interfaces", j), why))
                continue
            fixed = FixedIP(subnet_id=name, ip_address=ip)
            k = v6_port.get(subnet.network_id) if subnet.ip_version == 6 else None
            if k is not None:
                made[k] = made[k].model_copy(update={"fixed_ips": made[k].fixed_ips + (fixed,)})
                continue
            if subnet.ip_version == 6:
                v6_port[subnet.network_id] = len(made)
            snat = NetworkPort(
                device_owner=SNAT_OWNER, network_id=subnet.network_id, router=router.name, fixed_ips=(fixed,)
            )
            made.append(snat)
    return tuple(made), problems


def floating_ips(cloud: Cloud, routers: tuple[Router, ...], ports: dict[str, Port], allocator: Allocator):
    """Each floating IP's address (those that name theirs first, as the oracle creates them) and the agent
    gateway ports they bring; problems for the ones refused."""
    fips: list[Optional[FloatingIP]] = [None] * len(cloud.floatingips)
    gateway_ports: dict[tuple[str, str], NetworkPort] = {}
    problems: list[tuple[Loc, str]] = []
    for i, fip in sorted(enumerate(cloud.floatingips), key=lambda pair: pair[1].floating_ip_address is None):
        if fip.floating_ip_address is None:
            ip = None
            for sub in cloud.subnets:
                if sub.network_id == fip.floating_network_id and sub.ip_version == 4:
                    ip = allocator.take(sub)
                    if ip is not None:
                        break
            if ip is None:
                # Neutron 29 answers 409 IpAddressGenerationFailure (seen with tests/oracle/fip-pool-exhausted.yaml)
                why = f"no free address on network {fip.floating_network_id!r} (IpAddressGenerationFailure, 409)"
                problems.append((("floatingips", i), why))
                continue
            fip = fip.model_copy(update={"floating_ip_address": ip})
        fips[i] = fip
        host = _agent_gateway_host(cloud, routers, ports, fip)
        if host is not None and (fip.floating_network_id, host) not in gateway_ports:
            made = _agent_gateway_port(cloud, fip.floating_network_id, host, allocator)
            if made is not None:
                gateway_ports[(fip.floating_network_id, host)] = made
    return tuple(f for f in fips if f is not None), tuple(gateway_ports.values()), problems


def _agent_gateway_host(
    cloud: Cloud, routers: tuple[Router, ...], ports: dict[str, Port], fip: FloatingIP
) -> Optional[str]:
    """The host that needs an agent gateway port for *fip*: its port's binding host, when the router joining the
    port's IPv4 subnet to the floating network is distributed (``l3_dvr_db._create_dvr_floating_gw_port``).
    Every labtwin host runs a DVR L3 agent (``dvr_snat`` on network nodes, ``dvr`` elsewhere), never
    ``dvr_no_external``, so every such host gets one."""
    port = ports.get(fip.port_id)
    if port is None or port.host is None or cloud.mechanism_driver == "ovn":
        return None  # ML2/OVN: no DVR, no fg- port
    subnets = {f.subnet_id for f in port.fixed_ips if cloud.subnet[f.subnet_id].ip_version == 4}
    for router in routers:
        gateway = router.external_gateway_info
        if gateway is not None and gateway.network_id == fip.floating_network_id and subnets & set(router.interfaces):
            return port.host if router.distributed else None
    return None


def _agent_gateway_port(cloud: Cloud, network: str, host: str, allocator: Allocator) -> Optional[NetworkPort]:
    """The ``fg-`` port of *host* on *network*: a port that names no fixed IP (one pool address per IP version,
    an EUI-64 address on each SLAAC subnet), or None when the pool has no room (Neutron logs it and goes on)."""
    subnets = [s for s in cloud.subnets if s.network_id == network]
    pooled, problems = allocate_per_version(pooled_groups(subnets), allocator, (), network)
    if problems:
        return None
    auto = tuple(FixedIP(subnet_id=s.name) for s in subnets if s.ip_version == 6 and s.auto_address)
    return NetworkPort(device_owner=AGENT_GATEWAY_OWNER, network_id=network, host=host, fixed_ips=pooled + auto)


def is_dvr_serviced(device_owner: str) -> bool:
    """Whether a port bound to a host brings the DVR routers on its subnets to that host's L3 agent (Neutron 29,
    ``neutron.common.utils.is_dvr_serviced``; written out: the loader does not import Neutron)."""
    return device_owner.startswith("compute:") or device_owner in DVR_SERVICED_OTHER_OWNERS


def dvr_router_hosts(
    cloud: Cloud, router: Router, ports: tuple[Port, ...], network_ports: tuple[NetworkPort, ...]
) -> list[Host]:
    """The hosts whose L3 agent hosts DVR *router*, in file order: the network node its SNAT is scheduled to (a
    router with a gateway; simplification, as the dvr scenario's ``network_node``: the first ``role: network``
    host, where Neutron's ``LeastRoutersScheduler`` picks the least loaded ``dvr_snat`` agent), and every host
    with a DVR-serviced port bound there with an address on one of the router's interface subnets (Neutron 29,
    ``l3_dvrscheduler_db._get_dvr_router_ids_for_host``: compute ports, DHCP ports, trunk subports)."""
    subnets = set(router.interfaces)
    hosts = {p.host for p in ports if p.host and is_dvr_serviced(p.device_owner) and _on(p.fixed_ips, subnets)}
    hosts |= {p.host for p in network_ports if p.host and p.device_owner == DHCP_OWNER and _on(p.fixed_ips, subnets)}
    snat = next((h.name for h in cloud.hosts if h.role == "network"), None)
    if router.external_gateway_info is not None and snat is not None:
        hosts.add(snat)
    return [h for h in cloud.hosts if h.name in hosts]


def _on(fixed_ips: tuple[FixedIP, ...], subnets: set[str]) -> bool:
    return any(f.subnet_id in subnets for f in fixed_ips)


def agent_gateway_ports(
    cloud: Cloud,
    routers: tuple[Router, ...],
    ports: tuple[Port, ...],
    made: tuple[NetworkPort, ...],
    allocator: Allocator,
):
    """The agent gateway ports the L3 agents ask for themselves, and a problem for each one refused.

    Neutron 29 (and Train: the same code): every L3 agent in ``dvr`` or ``dvr_snat`` mode processing a DVR router
    with a gateway calls ``DvrLocalRouter.process_external`` -> ``create_dvr_external_gateway_on_agent``; when the
    router it synced carries no agent gateway port for its host, it asks the server (RPC
    ``get_agent_gateway_port`` -> ``l3_dvr_db.create_fip_agent_gw_port_if_not_exists``), which makes one on the
    router's external network, floating IP or not. So every host hosting such a router (:func:`dvr_router_hosts`)
    takes an external address. A full pool refuses the agent: the server answers it ``IpAddressGenerationFailure``
    (the agent fails the router and retries at each resync), a problem at ``hosts[i]``.

    Ordering assumed: the agents act once the file is loaded, after the routers' interfaces, the bound ports
    (which bring the router to their host) and the floating IPs (whose hosts' ports Neutron's server already made,
    :func:`floating_ips`: kept as they were, the agent then finds its port); hosts in file order, each host's
    routers in file order. A real agent acts as soon as a router reaches it, which may be before a floating IP is
    created: then that floating IP, not this port, would meet a full pool. Under ML2/OVN: none (no DVR agent)."""
    if cloud.mechanism_driver == "ovn":
        return (), []
    have = {(p.network_id, p.host) for p in made if p.device_owner == AGENT_GATEWAY_OWNER}
    asked: dict[str, list[str]] = {}  # host -> external networks its agent asks on, in its routers' order
    for router in routers:
        gateway = router.external_gateway_info
        if not router.distributed or gateway is None:
            continue
        for host in dvr_router_hosts(cloud, router, ports, made):
            if gateway.network_id not in asked.setdefault(host.name, []):
                asked[host.name].append(gateway.network_id)
    new: list[NetworkPort] = []
    problems: list[tuple[Loc, str]] = []
    for i, host in enumerate(cloud.hosts):
        for network in asked.get(host.name, []):
            if (network, host.name) in have:
                continue
            port = _agent_gateway_port(cloud, network, host.name, allocator)
            if port is None:
                why = (
                    f"host {host.name!r}: its L3 agent's floating-IP agent gateway port (fg-, asked for by every DVR"
                    f" agent hosting a router with a gateway) finds no free address on network {network!r}"
                    " (IpAddressGenerationFailure)"
                )
                problems.append((("hosts", i), why))
                continue
            have.add((network, host.name))
            new.append(port)
    return tuple(new), problems
