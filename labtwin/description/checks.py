"""Whole-cloud checks: references, duplicates, overlaps, addresses.

Each check is a generator of ``(loc, message)`` over a shape-valid
:class:`~labtwin.description.schema.Cloud`; the loader turns them into located
problems. Messages use Neutron's words, and name Neutron's own error where the
API would return one.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterator, Optional

from .errors import Loc
from .schema import Cloud, ipv4_broadcast

Found = Iterator[tuple[Loc, str]]

_KINDS = ("physnets", "hosts", "networks", "segments", "subnets", "routers", "security_groups", "ports")


def check_cloud(cloud: Cloud) -> list[tuple[Loc, str]]:
    """Every problem in *cloud*; empty when it is valid."""
    found: list[tuple[Loc, str]] = []
    for check in (
        check_mechanism,
        check_unique,
        check_hosts,
        check_segments,
        check_subnets,
        check_routers,
        check_security_groups,
        check_ports,
        check_floatingips,
    ):
        found.extend(check(cloud))
    return found


def check_mechanism(cloud: Cloud) -> Found:
    """Options that mean nothing under the cloud's mechanism driver, refused rather than ignored:
    ``ovn_metadata_enabled`` is ML2/OVN's (``[ovn]``), and no DHCP agent runs under ML2/OVN (its DHCP is native),
    so ``dhcp_agents_per_network`` is ML2/OVS's."""
    written = cloud.model_fields_set
    if cloud.mechanism_driver != "ovn" and cloud.ovn_metadata_enabled:
        yield (
            ("ovn_metadata_enabled",),
            (
                "ovn_metadata_enabled is an option of ML2/OVN ([ovn] section), but mechanism_driver is "
                f"{cloud.mechanism_driver!r}: set mechanism_driver: ovn, or leave it out"
            ),
        )
    if cloud.mechanism_driver == "ovn" and "dhcp_agents_per_network" in written:
        yield (
            ("dhcp_agents_per_network",),
            (
                "dhcp_agents_per_network schedules DHCP agents, and none runs under mechanism_driver 'ovn' "
                "(OVN answers DHCP itself): leave it out, or use mechanism_driver: openvswitch"
            ),
        )


def control_mismatch(cloud: Cloud, control: Optional[str]) -> Optional[str]:
    """Why a scenario's ``control`` knob (``ovn``: ML2/OVN on real OVN; anything else: an ML2/OVS control plane) cannot
    run a cloud whose ``mechanism_driver`` the file writes, or None. A file that writes none leaves the choice
    to the knob (labtwin's loader then makes ML2/OVS's ports, Neutron's default)."""
    if control is None or "mechanism_driver" not in cloud.model_fields_set:
        return None
    if (control == "ovn") == (cloud.mechanism_driver == "ovn"):
        return None
    if control == "ovn":
        return (
            f"cloud {cloud.name!r} is ML2/OVS (mechanism_driver: {cloud.mechanism_driver}), and control=ovn builds "
            "ML2/OVN: drop control=ovn, or write mechanism_driver: ovn"
        )
    return (
        f"cloud {cloud.name!r} is ML2/OVN (mechanism_driver: ovn), and control={control} builds ML2/OVS: set "
        "control=ovn, or write mechanism_driver: openvswitch"
    )


def check_unique(cloud: Cloud) -> Found:
    for kind in _KINDS:
        seen_names: dict[str, int] = {}
        seen_ids: dict[object, int] = {}
        for i, obj in enumerate(getattr(cloud, kind)):
            if obj.name in seen_names:
                yield (kind, i, "name"), f"duplicate name {obj.name!r} (first at {kind}[{seen_names[obj.name]}])"
            elif obj.id in seen_ids:
                yield (kind, i, "id"), f"duplicate id {obj.id} (first at {kind}[{seen_ids[obj.id]}])"
            seen_names.setdefault(obj.name, i)
            seen_ids.setdefault(obj.id, i)


def check_hosts(cloud: Cloud) -> Found:
    physnets = {p.name for p in cloud.physnets}
    for i, host in enumerate(cloud.hosts):
        bridges: dict[str, str] = {}
        for physnet, bridge in host.bridge_mappings.items():
            if physnet not in physnets:
                yield ("hosts", i, "bridge_mappings", physnet), f"unknown physnet {physnet!r}"
            if bridge in bridges:
                yield (
                    ("hosts", i, "bridge_mappings", physnet),
                    (f"bridge {bridge!r} is already mapped to physnet {bridges[bridge]!r}"),
                )
            bridges[bridge] = physnet


def check_segments(cloud: Cloud) -> Found:
    physnets = {p.name for p in cloud.physnets}
    taken: dict[tuple, int] = {}
    for i, seg in enumerate(cloud.segments):
        if seg.network_id not in cloud.network:
            yield ("segments", i, "network_id"), f"unknown network {seg.network_id!r}"
        if seg.physical_network is not None and seg.physical_network not in physnets:
            yield ("segments", i, "physical_network"), f"unknown physnet {seg.physical_network!r}"
        key = (seg.physical_network if seg.network_type in ("flat", "vlan") else seg.network_type, seg.segmentation_id)
        if key in taken:
            what = "flat segment" if seg.segmentation_id is None else f"segmentation_id {seg.segmentation_id}"
            in_use = {"flat": "FlatNetworkInUse", "vlan": "VlanIdInUse"}.get(seg.network_type, "TunnelIdInUse")
            yield (
                ("segments", i, "segmentation_id"),
                f"{what} on {key[0]} is already used by segments[{taken[key]}] ({in_use}, 409)",
            )
        taken.setdefault(key, i)


def check_subnets(cloud: Cloud) -> Found:
    by_network: dict[str, list[int]] = defaultdict(list)
    for i, sub in enumerate(cloud.subnets):
        if sub.network_id not in cloud.network:
            yield ("subnets", i, "network_id"), f"unknown network {sub.network_id!r}"
        if sub.segment_id is not None:
            seg = cloud.segment.get(sub.segment_id)
            if seg is None:
                yield ("subnets", i, "segment_id"), f"unknown segment {sub.segment_id!r}"
            elif seg.network_id != sub.network_id:
                yield (
                    ("subnets", i, "segment_id"),
                    (f"segment {seg.name!r} belongs to network {seg.network_id!r}, not {sub.network_id!r}"),
                )
        for j, pool in enumerate(sub.allocation_pools):
            if pool.start not in sub.cidr or pool.end not in sub.cidr:
                yield (
                    ("subnets", i, "allocation_pools", j),
                    f"pool {pool.start}-{pool.end} is outside {sub.cidr} (OutOfBoundsAllocationPool, 400)",
                )
            elif sub.gateway_ip is not None and sub.gateway_ip in pool:
                yield (
                    ("subnets", i, "allocation_pools", j),
                    (f"pool contains the gateway_ip {sub.gateway_ip} (GatewayConflictWithAllocationPools, 409)"),
                )
        by_network[sub.network_id].append(i)
    for indexes in by_network.values():
        yield from _check_network_subnets(cloud, indexes)


def _check_network_subnets(cloud: Cloud, indexes: list[int]) -> Found:
    subnets = [cloud.subnets[i] for i in indexes]
    for a in range(len(subnets)):
        for b in range(a):
            x, y = subnets[a].cidr, subnets[b].cidr
            if x.version == y.version and x.overlaps(y):
                yield (
                    ("subnets", indexes[a], "cidr"),
                    (f"{x} overlaps {y} of subnet {subnets[b].name!r} on the same network (InvalidInput, 400)"),
                )
    bound = [s.segment_id is not None for s in subnets]
    if any(bound) and not all(bound):
        i = indexes[bound.index(False)]
        yield (
            ("subnets", i, "segment_id"),
            ("a network's subnets must all be on segments or none (SubnetsNotAllAssociatedWithSegments, 400)"),
        )


def check_routers(cloud: Cloud) -> Found:
    for i, router in enumerate(cloud.routers):
        gw = router.external_gateway_info
        if gw is not None:
            net = cloud.network.get(gw.network_id)
            if net is None:
                yield ("routers", i, "external_gateway_info", "network_id"), f"unknown network {gw.network_id!r}"
            elif not net.external:
                yield (
                    ("routers", i, "external_gateway_info", "network_id"),
                    (f"network {net.name!r} is not external (router:external is false) (BadRequest, 400)"),
                )
            yield from _check_gateway_addresses(cloud, i, gw)
        seen: set[str] = set()
        for j, subnet in enumerate(router.interfaces):
            if subnet not in cloud.subnet:
                yield ("routers", i, "interfaces", j), f"unknown subnet {subnet!r}"
            elif cloud.subnet[subnet].gateway_ip is None:
                yield (
                    ("routers", i, "interfaces", j),
                    f"subnet {subnet!r} has gateway_ip: null; an interface added by subnet takes the gateway "
                    "address (Neutron: 'Subnet for router interface must have a gateway IP', BadRequest, 400)",
                )
            elif cloud.subnet[subnet].gateway_off_subnet:
                sub = cloud.subnet[subnet]
                yield (
                    ("routers", i, "interfaces", j),
                    f"subnet {subnet!r} has its gateway {sub.gateway_ip} outside {sub.cidr}; an interface added by "
                    f"subnet takes the gateway address (InvalidIpForSubnet, 400: 'IP address {sub.gateway_ip} is not "
                    "a valid IP for the specified subnet.')",
                )
            elif subnet in seen:
                yield ("routers", i, "interfaces", j), f"subnet {subnet!r} is attached twice"
            seen.add(subnet)


def _check_gateway_addresses(cloud: Cloud, i: int, gw) -> Found:
    """Addresses a file gives a router gateway: on a subnet of its external network, a host address."""
    for j, fixed in enumerate(gw.external_fixed_ips):
        loc = ("routers", i, "external_gateway_info", "external_fixed_ips", j)
        subnet = cloud.subnet.get(fixed.subnet_id)
        if subnet is None or subnet.network_id != gw.network_id:
            yield loc, f"subnet {fixed.subnet_id!r} is not a subnet of external network {gw.network_id!r}"
        elif fixed.ip_address is not None and not _is_host_address(subnet, fixed.ip_address, "network:router_gateway"):
            yield loc, f"{fixed.ip_address} is not a host address of subnet {subnet.name!r} ({subnet.cidr})"


def check_security_groups(cloud: Cloud) -> Found:
    for i, group in enumerate(cloud.security_groups):
        for j, rule in enumerate(group.rules):
            if rule.remote_group_id is not None and rule.remote_group_id not in cloud.security_group:
                yield (
                    ("security_groups", i, "rules", j, "remote_group_id"),
                    (f"unknown security group {rule.remote_group_id!r}"),
                )
            if rule.proto == "icmpv6" and rule.ethertype != "IPv6":
                yield (
                    ("security_groups", i, "rules", j, "protocol"),
                    ("icmpv6 needs ethertype IPv6 (SecurityGroupEthertypeConflictWithProtocol, 400)"),
                )


def check_ports(cloud: Cloud) -> Found:
    for i, port in enumerate(cloud.ports):
        yield from _check_port_refs(cloud, i, port)
        yield from _check_port_security(cloud, i, port)
    yield from _check_port_addresses(cloud)


def port_security(cloud: Cloud, port) -> bool:
    """A port's ``port_security_enabled``: as written, else its network's (Neutron's port_security
    extension driver gives a new port its network's value)."""
    if "port_security_enabled" in port.model_fields_set or port.network_id not in cloud.network:
        return port.port_security_enabled
    return cloud.network[port.network_id].port_security_enabled


def _check_port_security(cloud: Cloud, i: int, port) -> Found:
    """Without port security a port has no filter, so Neutron 29 refuses groups (400) and allowed address
    pairs (409) on it."""
    if port_security(cloud, port):
        return
    if port.security_groups:
        yield (
            ("ports", i, "security_groups"),
            "a port with port_security_enabled false can have no security group: give [] or omit it "
            "(PortSecurityAndIPRequiredForSecurityGroups, 400)",
        )
    if port.allowed_address_pairs:
        yield (
            ("ports", i, "allowed_address_pairs"),
            "a port with port_security_enabled false can have no allowed address pairs "
            "(AddressPairAndPortSecurityRequired, 409)",
        )


def _check_port_refs(cloud: Cloud, i: int, port) -> Found:
    if port.network_id not in cloud.network:
        yield ("ports", i, "network_id"), f"unknown network {port.network_id!r}"
    if port.host is not None and port.host not in cloud.host:
        yield ("ports", i, "binding:host_id"), f"unknown host {port.host!r}"
    for j, group in enumerate(port.security_groups or ()):
        if group not in cloud.security_group:
            yield ("ports", i, "security_groups", j), f"unknown security group {group!r}"
    for j, fixed in enumerate(port.fixed_ips):
        sub = cloud.subnet.get(fixed.subnet_id)
        if sub is None:
            yield ("ports", i, "fixed_ips", j, "subnet_id"), f"unknown subnet {fixed.subnet_id!r}"
        elif sub.network_id != port.network_id:
            yield (
                ("ports", i, "fixed_ips", j, "subnet_id"),
                (f"subnet {sub.name!r} is on network {sub.network_id!r}, not {port.network_id!r}"),
            )
        elif fixed.ip_address is not None and not _is_host_address(sub, fixed.ip_address, port.device_owner):
            yield ("ports", i, "fixed_ips", j, "ip_address"), f"{fixed.ip_address} is not a host address of {sub.cidr}"
        elif fixed.ip_address is not None and sub.auto_address and not _router_port(port):
            yield (
                ("ports", i, "fixed_ips", j, "ip_address"),
                (
                    f"subnet {sub.name!r} gives addresses by SLAAC (EUI-64 of the port's MAC): name the subnet "
                    "without an ip_address (AllocationOnAutoAddressSubnet, 400)"
                ),
            )
    yield from _check_fixed_ips_segment(cloud, i, port)


#: neutron-lib ``ROUTER_INTERFACE_OWNERS_SNAT``: router interfaces, which take no SLAAC address and may name
#: one on a SLAAC subnet (a test compares it with neutron-lib's).
ROUTER_INTERFACE_OWNERS_SNAT = (
    "network:router_interface",
    "network:ha_router_replicated_interface",
    "network:router_interface_distributed",
    "network:router_centralized_snat",
)


#: neutron-lib ``ROUTER_PORT_OWNERS``: the router's interfaces and its gateway port.
ROUTER_PORT_OWNERS = (*ROUTER_INTERFACE_OWNERS_SNAT, "network:router_gateway")


def _router_port(port) -> bool:
    return port.device_owner in ROUTER_INTERFACE_OWNERS_SNAT


def _check_fixed_ips_segment(cloud: Cloud, i: int, port) -> Found:
    """An unbound port's fixed IPs must all be on one segment of a routed network (Neutron 29
    ``Subnet._query_filter_by_fixed_ips_segment``; a bound port is checked against its host's segments)."""
    if port.host is not None or port.device_owner == "network:distributed":
        return
    segments = []
    for fixed in port.fixed_ips:
        sub = cloud.subnet.get(fixed.subnet_id)
        if sub is not None and sub.segment_id not in segments:
            segments.append(sub.segment_id)
    if len(segments) > 1:
        yield (
            ("ports", i, "fixed_ips"),
            (
                f"fixed IPs on {len(segments)} segments ({', '.join(map(str, segments))}) of a routed network: an "
                "unbound port takes addresses on one (FixedIpsSubnetsNotOnSameSegment, 400)"
            ),
        )


def _is_host_address(subnet, ip, owner: str = "") -> bool:
    """Neutron's ``ipam.utils.check_subnet_ip``: in IPv4 neither the network nor the broadcast address; in IPv6
    every address, but the first (the subnet-router anycast) only for a router's port or a port with no owner
    (Neutron 15.0.0 onward, commit 1916bc5c06, bug 1682094)."""
    cidr = subnet.cidr
    if ip.version != cidr.version or ip not in cidr:
        return False
    if cidr.version == 4:
        return ip not in (cidr.network_address, ipv4_broadcast(cidr))
    return ip != cidr.network_address or owner in (*ROUTER_PORT_OWNERS, "")


def _check_port_addresses(cloud: Cloud) -> Found:
    owner: dict[tuple[str, object], str] = {}
    for sub in cloud.subnets:
        if sub.gateway_ip is not None:
            owner[(sub.name, sub.gateway_ip)] = f"the gateway of subnet {sub.name!r}"
    macs: dict[str, str] = {}
    for i, port in enumerate(cloud.ports):
        for j, fixed in enumerate(port.fixed_ips):
            key = (fixed.subnet_id, fixed.ip_address)
            if fixed.ip_address is None:
                continue
            if key in owner:
                yield (
                    ("ports", i, "fixed_ips", j, "ip_address"),
                    (f"{fixed.ip_address} is already allocated to {owner[key]} (IpAddressAlreadyAllocated)"),
                )
            owner.setdefault(key, f"port {port.name!r}")
        if port.mac_address is not None:
            if port.mac_address in macs:
                yield (
                    ("ports", i, "mac_address"),
                    f"{port.mac_address} is already used by port {macs[port.mac_address]!r} (MacAddressInUse, 409)",
                )
            macs.setdefault(port.mac_address, port.name)


def check_floatingips(cloud: Cloud) -> Found:
    taken: dict[str, int] = {}
    for i, fip in enumerate(cloud.floatingips):
        net = cloud.network.get(fip.floating_network_id)
        if net is None:
            yield ("floatingips", i, "floating_network_id"), f"unknown network {fip.floating_network_id!r}"
        elif not net.external:
            yield ("floatingips", i, "floating_network_id"), f"network {net.name!r} is not external"
        if fip.port_id not in cloud.port:
            yield ("floatingips", i, "port_id"), f"unknown port {fip.port_id!r}"
        elif fip.port_id in taken:
            yield ("floatingips", i, "port_id"), f"port {fip.port_id!r} already has floatingips[{taken[fip.port_id]}]"
        elif net is not None and not _router_reaches(cloud, cloud.port[fip.port_id], net.name):
            yield (
                ("floatingips", i, "port_id"),
                f"no router joins port {fip.port_id!r}'s subnet to external network {net.name!r}: a router with "
                "an interface there and its gateway on that network (ExternalGatewayForFloatingIPNotFound, 404)",
            )
        taken.setdefault(fip.port_id, i)
        ip = fip.floating_ip_address
        if ip is not None and net is not None:
            subs = [s for s in cloud.subnets if s.network_id == net.name]
            if not any(_is_host_address(s, ip, "network:floatingip") for s in subs):
                yield (
                    ("floatingips", i, "floating_ip_address"),
                    f"{ip} is in no subnet of network {net.name!r} (InvalidIpForNetwork, 400)",
                )


def _router_reaches(cloud: Cloud, port, external: str) -> bool:
    """Whether a router has an interface on one of *port*'s subnets and its gateway on *external*: the
    router Neutron 29 NATs a floating IP with (``L3_NAT_dbonly_mixin.get_router_for_floatingip``)."""
    subnets = {f.subnet_id for f in port.fixed_ips} or {
        s.name for s in cloud.subnets if s.network_id == port.network_id
    }
    return any(
        r.external_gateway_info is not None
        and r.external_gateway_info.network_id == external
        and subnets & set(r.interfaces)
        for r in cloud.routers
    )
