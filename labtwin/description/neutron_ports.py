"""The ports Neutron's server makes by itself, and the floating IPs that bring some of them.

Never written in a topology; the loader makes them as Neutron 29 does (``neutron/db/l3_dvr_db.py``), each
taking its addresses from the pools when Neutron would make it, and keeps them in the resolved cloud's
``network_ports`` (:class:`~labtwin.description.schema.NetworkPort`):

- a DVR router with a gateway gets a SNAT port per IPv4 interface subnet and one per network for its IPv6
  subnets, when each interface is added (:func:`snat_ports`);
- a floating IP on a port bound to a host, behind a DVR router, gives that host a floating-IP agent gateway
  port (``fg-``) on the external network, once per host, made right after the floating IP
  (:func:`floating_ips`). Assumed: every labtwin host runs a DVR L3 agent (``dvr_snat`` on network nodes,
  ``dvr`` elsewhere, as :mod:`labtwin.oracle` registers them), never ``dvr_no_external``.

- a network with a DHCP-enabled subnet gets a DHCP port from the DHCP agent that hosts it, right after its
  subnets are created (:func:`dhcp_ports`). Assumed, as the networking guide's ML2/OVS deployments have it:
  a DHCP agent runs on every network node (``role: network``) and nowhere else, one agent per network
  (``dhcp_agents_per_network = 1``; per segment on a routed network).

Not made: ML2/OVN's metadata ports. The SNAT, ``fg-`` and DHCP ports are ML2/OVS's: under ML2/OVN Neutron
makes none of them (its DHCP is OVN's native one), yet the loader reserves their addresses.
"""

from __future__ import annotations

from typing import Final, Optional

from .allocator import Allocator, allocate_per_version, pooled_groups
from .errors import Loc
from .schema import Cloud, FixedIP, FloatingIP, Host, NetworkPort, Port, Router, Segment, Subnet

SNAT_OWNER: Final = "network:router_centralized_snat"
AGENT_GATEWAY_OWNER: Final = "network:floatingip_agent_gateway"
DHCP_OWNER: Final = "network:dhcp"


def runs_dhcp_agent(host: Host) -> bool:
    """Whether *host* runs a DHCP agent: network nodes do (labtwin's assumption, shared with the oracle's
    agents: :mod:`labtwin.oracle.load`)."""
    return host.role == "network"


def dhcp_ports(cloud: Cloud, allocator: Allocator) -> tuple[NetworkPort, ...]:
    """The DHCP ports Neutron 29 makes, network by network, before routers and ports that let Neutron choose.

    The first DHCP host (file order) that reaches the network hosts it (the scheduler's
    ``_filter_agents_with_network_access``, when the subnet is created); when none does, the first DHCP host
    all the same: the agent's sync schedules every network no agent hosts to itself, without asking whether
    it can reach it (``AutoScheduler.auto_schedule_networks``; the port's binding then fails, its addresses
    are taken). On a routed network, each segment with a DHCP subnet is hosted
    by the first DHCP host mapped to it, unless one already hosting the network is. The agent then asks for
    one port per segment it is mapped to (``DhcpAgent.call_driver`` groups subnets by segment), with a fixed
    IP on each DHCP subnet of that segment (``DeviceManager._setup_new_dhcp_port``). A port that finds no free
    address is not made: the server answers ``IpAddressGenerationFailure`` and the agent gives up on the
    network until its next resync."""
    hosts = [h for h in cloud.hosts if runs_dhcp_agent(h)]
    made: list[NetworkPort] = []
    for network in cloud.networks:
        subnets = [s for s in cloud.subnets if s.network_id == network.name and s.enable_dhcp]
        segments = {s.segment_id for s in subnets}
        if not subnets or not hosts:
            continue
        if segments == {None}:
            host = next((h for h in hosts if _reaches(cloud, h, network.name)), hosts[0])
            groups = [(host, None, subnets)]
        else:
            groups = _dhcp_groups_per_segment(cloud, hosts, subnets)
        for host, segment, served in groups:
            port = _dhcp_port(network.name, host.name, segment, served, allocator)
            if port is not None:
                made.append(port)
    return tuple(made)


def _reaches(cloud: Cloud, host: Host, network: str) -> bool:
    """Whether *host*'s L2 agent can bind a port of *network*: a tunnelled segment (or none written: Neutron
    makes a tenant one), or a physnet in its bridge mappings."""
    segments = [s for s in cloud.segments if s.network_id == network]
    return not segments or any(_maps(host, s) for s in segments)


def _maps(host: Host, segment: Segment) -> bool:
    return segment.physical_network is None or segment.physical_network in host.bridge_mappings


def _dhcp_groups_per_segment(cloud: Cloud, hosts: list[Host], subnets: list[Subnet]):
    """``(host, segment, its DHCP subnets)`` for each segment a hosting agent serves on a routed network."""
    by_segment: dict[str, list[Subnet]] = {}
    for subnet in subnets:
        if subnet.segment_id is not None:  # Neutron refuses a routed network mixing in a subnet without one
            by_segment.setdefault(subnet.segment_id, []).append(subnet)
    hosting: list[Host] = []
    for name in by_segment:
        segment = cloud.segment[name]
        if not any(_maps(h, segment) for h in hosting):
            host = next((h for h in hosts if _maps(h, segment)), None)
            if host is not None:
                hosting.append(host)
    return [
        (host, name, served)
        for host in hosting
        for name, served in by_segment.items()
        if _maps(host, cloud.segment[name])
    ]


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
    if port is None or port.host is None:
        return None
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
