"""Fill in what a description may leave out, as Neutron would on create.

- the project's ``default`` group exists even when the file lists none (Neutron
  creates it with the project), and a port without ``security_groups`` is put in
  it, unless it has port security off (its own, else its network's): then none;
- a port without ``mac_address`` gets one under Neutron's ``base_mac``
  ``fa:16:3e``, derived from its name (probing on collision, so it is unique);
- a fixed IP without ``ip_address`` gets the lowest free address of its
  subnet's pools. Simplification: Neutron's internal IPAM picks at random in a
  window of the first 1000 free addresses; a description must load the same way
  every time, so it takes the lowest (Neutron's ``PreferNextAddressRequest``);
- a port without ``fixed_ips`` gets one address per IP version, each from the first
  subnet of that version with a free one (Neutron 29's ``_allocate_ips_for_port``);
  on a routed network, from the subnets of the segments its host reaches (all of
  them, as Neutron 29 does), with Neutron's 409 ``HostNotConnectedToAnySegment``
  when it reaches none, and no address at all while the port is unbound
  (``ip_allocation: deferred``);
- each security group gets the rules Neutron adds to a new group (the cloud's
  ``default_security_group_rules``, Neutron's own when omitted: egress anywhere,
  and ingress from itself in ``default``);
- under ML2/OVN with ``ovn_metadata_enabled``, each network's metadata port takes an address on each IPv4 DHCP
  subnet as the subnet is created (:func:`.neutron_ports.metadata_ports`);
- a network with a DHCP subnet gets the DHCP port of each DHCP agent Neutron's scheduler gives it (the least
  loaded, :mod:`.dhcp_scheduling`), right after its subnets (before routers and the ports that let Neutron choose),
  taking one address on each of its DHCP subnets; DHCP agents run on network nodes, and none under ML2/OVN
  (:func:`.neutron_ports.dhcp_ports`);
- a router gateway without addresses takes one per IP version from its external
  network, as Neutron's gateway port does (before the ports that name no address);
- a DVR router with a gateway gets the SNAT ports Neutron's server makes for it (one per IPv4
  interface subnet, one per network for its IPv6 subnets), each taking an address from its
  subnet's pool when the interface is added, so an interface on a full subnet is refused;
- floating IPs that name their address go first (as the oracle creates them), then the others,
  each taking the lowest free address on its network; a floating IP on a port bound to a host,
  behind a DVR router, also gives that host a floating-IP agent gateway port (``fg-``) on the
  external network, once per host, taking addresses from the same pool. When none is free,
  Neutron logs the failure and makes no port (``_create_dvr_floating_gw_port`` runs after the
  floating IP is created), so the floating IP stays and the host has no ``fg-`` port yet;
- then every DVR L3 agent hosting a distributed router with a gateway asks for its own ``fg-`` port
  (floating IP or not: Neutron 29's ``DvrLocalRouter.process_external``), hosts in file order, after
  everything above; a full pool refuses it (``IpAddressGenerationFailure``, located at the host)
  (:func:`.neutron_ports.agent_gateway_ports`). These ports are in the resolved cloud's ``network_ports``
  (:mod:`.neutron_ports`).

``labtwin validate --neutron`` checks these answers against Neutron's own server
(:mod:`labtwin.oracle`).
"""

from __future__ import annotations

import hashlib
import ipaddress
from typing import Optional

from . import neutron_ports
from .allocator import Allocator, allocate_per_version, pooled_groups
from .checks import ROUTER_INTERFACE_OWNERS_SNAT, port_security
from .errors import Loc
from .schema import Cloud, FixedIP, Port, SecurityGroup, SecurityGroupRule, Subnet, protocol_number

BASE_MAC = "fa:16:3e"


def resolve_cloud(cloud: Cloud) -> tuple[Cloud, list[tuple[Loc, str]]]:
    """*cloud* with every default filled in, and the problems met doing so."""
    allocator = Allocator(cloud)
    macs = _MacMaker(p.mac_address for p in cloud.ports if p.mac_address)
    metadata_ports = neutron_ports.metadata_ports(cloud, allocator)  # made as each subnet is, before any port
    dhcp_ports = neutron_ports.dhcp_ports(cloud, allocator)
    routers, problems = _resolve_gateways(cloud, allocator)
    snat_ports, found = neutron_ports.snat_ports(cloud, routers, allocator)
    problems.extend(found)
    ports = []
    for i, port in enumerate(cloud.ports):
        mac = port.mac_address or macs.make(port.name)
        fixed_ips, found = _resolve_fixed_ips(cloud, i, port, mac, allocator)
        problems.extend(found)
        ports.append(
            port.model_copy(
                update={
                    "fixed_ips": fixed_ips,
                    "port_security_enabled": port_security(cloud, port),
                    "security_groups": _groups(cloud, port),
                    "mac_address": mac,
                }
            )
        )
    fips, gateway_ports, found = neutron_ports.floating_ips(cloud, routers, {p.name: p for p in ports}, allocator)
    problems.extend(found)
    made = metadata_ports + dhcp_ports + snat_ports + gateway_ports
    asked_ports, found = neutron_ports.agent_gateway_ports(cloud, routers, tuple(ports), made, allocator)
    problems.extend(found)
    fields = {name: getattr(cloud, name) for name in type(cloud).model_fields}
    fields.update(
        routers=routers,
        ports=tuple(ports),
        floatingips=fips,
        security_groups=_with_default_rules(cloud),
        network_ports=made + asked_ports,
    )
    # model_construct, not model_copy: a copy would carry the old lookups cached on *cloud*. The fields the file
    # wrote stay marked as written (a scenario asks whether it wrote its mechanism_driver).
    return type(cloud).model_construct(_fields_set=set(cloud.model_fields_set), **fields), problems


def _resolve_fixed_ips(cloud: Cloud, i: int, port: Port, mac: str, allocator: Allocator):
    if not port.fixed_ips:
        candidates, auto, problem = _candidate_subnets(cloud, port)
        if problem:
            return (), [(("ports", i, "fixed_ips"), problem)]
        pooled, refused = allocate_per_version(
            candidates, allocator, ("ports", i, "fixed_ips"), f"network {port.network_id!r}"
        )
        if refused:
            return (), refused
        return pooled + tuple(_eui64_fixed(s, mac, allocator) for s in auto), []
    resolved: list[FixedIP] = []
    taken: list[FixedIP] = []
    problems: list[tuple[Loc, str]] = []
    for j, fixed in enumerate(port.fixed_ips):
        if cloud.subnet[fixed.subnet_id].auto_address and port.device_owner not in ROUTER_INTERFACE_OWNERS_SNAT:
            continue  # every auto-address subnet gives its EUI-64 address below, named or not
        if fixed.ip_address is None:
            ip = allocator.take(cloud.subnet[fixed.subnet_id])
            if ip is None:
                problems.append(
                    (
                        ("ports", i, "fixed_ips", j),
                        f"subnet {fixed.subnet_id!r} has no free address (IpAddressGenerationFailure)",
                    )
                )
                continue
            fixed = FixedIP(subnet_id=fixed.subnet_id, ip_address=ip)
            taken.append(fixed)
        resolved.append(fixed)
    if problems:  # refused whole: Neutron rolls back the pool addresses it took for this port
        for fixed in taken:
            allocator.release(fixed.subnet_id, fixed.ip_address)
        return (), problems
    named = [cloud.subnet[f.subnet_id] for f in port.fixed_ips]
    auto = _auto_subnets(port, _fixed_ip_candidates(cloud, port, named))
    return tuple(resolved) + tuple(_eui64_fixed(s, mac, allocator) for s in auto), problems


def _fixed_ip_candidates(cloud: Cloud, port: Port, named: list[Subnet]) -> list[Subnet]:
    """The network's subnets a port that names fixed IPs may also be given addresses on (its SLAAC ones), as
    Neutron 29's ``Subnet.find_candidate_subnets`` finds them: on a routed network, those on its host's
    segments, or (unbound) on the segment of its named subnets."""
    subnets = [s for s in cloud.subnets if s.network_id == port.network_id]
    if not any(s.segment_id for s in subnets):
        return subnets
    if port.host is not None:
        return _segment_subnets(cloud, port, subnets)[0]
    segments = {s.segment_id for s in named}
    return [s for s in subnets if s.segment_id in segments]


def _with_default_rules(cloud: Cloud) -> tuple[SecurityGroup, ...]:
    """Each group with the rules Neutron adds when it creates it (after the listed ones; a listed rule that
    repeats one is that rule: Neutron answers 409 ``SecurityGroupRuleExists`` to adding it again), and the
    project's ``default`` group, which Neutron creates with the project, when the file lists none."""
    groups = []
    listed = cloud.security_groups
    if "default" not in cloud.security_group:
        listed += (SecurityGroup(name="default"),)
    for group in listed:
        default = group.name == "default"
        added = [
            template.for_group(group.name)
            for template in cloud.default_security_group_rules
            if (template.used_in_default_sg if default else template.used_in_non_default_sg)
        ]
        rules = _one_per_meaning(group.rules + tuple(added))
        fields = {name: getattr(group, name) for name in type(group).model_fields}
        # model_construct, not model_copy: a copy would keep remote_groups cached from the listed rules only
        groups.append(type(group).model_construct(**{**fields, "rules": rules}) if rules != group.rules else group)
    return tuple(groups)


def _one_per_meaning(rules: tuple[SecurityGroupRule, ...]) -> tuple[SecurityGroupRule, ...]:
    """Each rule once, first as written: a rule that repeats another (a default rule listed again, or
    ``vrrp`` beside ``112``: a protocol name and its number are one rule) is that rule, as Neutron's
    409 ``SecurityGroupRuleExists`` says."""
    seen, kept = set(), []
    for rule in rules:
        key = rule.model_copy(update={"protocol": str(protocol_number(rule.protocol) or "any")})
        if key not in seen:
            seen.add(key)
            kept.append(rule)
    return tuple(kept)


def _groups(cloud: Cloud, port: Port) -> tuple[str, ...]:
    """The port's groups as written; unwritten: the project's ``default``, or none without port security."""
    if port.security_groups is not None:
        return port.security_groups
    return ("default",) if port_security(cloud, port) else ()


def _resolve_gateways(cloud: Cloud, allocator: Allocator):
    """Each router gateway that names no address takes one per IP version from its external network,
    as Neutron's gateway port does (router gateways consume the floating-IP pool too)."""
    routers, problems = [], []
    for i, router in enumerate(cloud.routers):
        gateway = router.external_gateway_info
        if gateway is None:
            routers.append(router)
            continue
        if gateway.external_fixed_ips:  # the file's subnets: one address each, named or the lowest free
            candidates = [[cloud.subnet[f.subnet_id]] for f in gateway.external_fixed_ips if f.ip_address is None]
            named = tuple(f for f in gateway.external_fixed_ips if f.ip_address is not None)
        else:
            subnets = [s for s in cloud.subnets if s.network_id == gateway.network_id]
            candidates = [group for group in ([s for s in subnets if s.ip_version == v] for v in (4, 6)) if group]
            named = ()
        loc = ("routers", i, "external_gateway_info")
        fixed, found = allocate_per_version(candidates, allocator, loc, f"external network {gateway.network_id!r}")
        problems += found
        update = {"external_gateway_info": gateway.model_copy(update={"external_fixed_ips": named + fixed})}
        routers.append(router.model_copy(update=update))
    return tuple(routers), problems


def _candidate_subnets(cloud: Cloud, port: Port) -> tuple[list[list[Subnet]], list[Subnet], Optional[str]]:
    """For a port that names no fixed IP: the subnets it may get a pool address from, per kind (IPv4, then
    IPv6 stateful), and the IPv6 auto-address subnets, each of which gives it an EUI-64 address
    (router ports excepted), as ``IpamPluggableBackend._allocate_ips_for_port`` classifies them."""
    subnets = [s for s in cloud.subnets if s.network_id == port.network_id]
    if any(s.segment_id for s in subnets):
        subnets, problem = _segment_subnets(cloud, port, subnets)
        if problem or not subnets:
            return [], [], problem
    return pooled_groups(subnets), _auto_subnets(port, subnets), None


def _auto_subnets(port: Port, candidates: list[Subnet]) -> list[Subnet]:
    """The IPv6 auto-address (SLAAC, DHCPv6-stateless) subnets among *candidates*, each of which gives a port
    its EUI-64 address, router interfaces excepted (``IpamPluggableBackend._get_auto_address_ips``)."""
    if port.device_owner in ROUTER_INTERFACE_OWNERS_SNAT:
        return []
    return [s for s in candidates if s.ip_version == 6 and s.auto_address]


def _eui64_fixed(subnet: Subnet, mac: str, allocator: Allocator) -> FixedIP:
    ip = eui64(subnet.cidr, mac)
    allocator.claim(subnet.name, ip)
    return FixedIP(subnet_id=subnet.name, ip_address=ip)


def eui64(cidr, mac: str) -> ipaddress.IPv6Address:
    """The SLAAC address of *mac* in the /64 *cidr* (RFC 4291 modified EUI-64: the universal/local bit
    flipped, ff:fe in the middle), as Neutron's ``AutomaticAddressRequest`` makes it (with oslo.utils'
    ``netutils.get_ipv6_addr_by_EUI64``; :mod:`labtwin.oracle` compares the two).

    >>> eui64(ipaddress.ip_network("2001:db8::/64"), "fa:16:3e:12:34:56")
    IPv6Address('2001:db8::f816:3eff:fe12:3456')
    """
    octets = [int(part, 16) for part in mac.split(":")]
    octets[0] ^= 0x02
    interface_id = int.from_bytes(bytes(octets[:3] + [0xFF, 0xFE] + octets[3:]), "big")
    return ipaddress.IPv6Address(int(cidr.network_address) | interface_id)


def _segment_subnets(cloud: Cloud, port: Port, subnets: list[Subnet]) -> tuple[list[Subnet], Optional[str]]:
    """On a routed network: the subnets of every segment the port's host reaches, in the file's order
    (none while unbound: allocation is deferred). Neutron 29 takes candidates from all of them
    (``Subnet.find_candidate_subnets`` in ``neutron/objects/subnet.py``): a host on two segments is
    served, from the next segment when one is full. The 409 ``HostConnectedToMultipleSegments`` of
    the Train era (the PTG's problem) is gone from Neutron and neutron-lib; the multisegment scenario's
    ``segments_per_host=one`` models that era, the loader answers as Neutron does today."""
    if port.host is None:
        return [], None  # deferred IP allocation until the port is bound
    physnets = set(cloud.host[port.host].bridge_mappings)
    reachable = {
        s.segment_id for s in subnets if s.segment_id and cloud.segment[s.segment_id].physical_network in physnets
    }
    if not reachable:
        return [], (
            f"host {port.host!r} reaches no segment of network {port.network_id!r} (HostNotConnectedToAnySegment, 409)"
        )
    return [s for s in subnets if s.segment_id in reachable], None


class _MacMaker:
    """Unique MACs under Neutron's base_mac, derived from port names."""

    def __init__(self, taken):
        self.taken = set(taken)

    def make(self, name: str) -> str:
        n = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=3).digest(), "big")
        while True:
            mac = f"{BASE_MAC}:{n >> 16 & 0xFF:02x}:{n >> 8 & 0xFF:02x}:{n & 0xFF:02x}"
            if mac not in self.taken:
                self.taken.add(mac)
                return mac
            n = (n + 1) % (1 << 24)
