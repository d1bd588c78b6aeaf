"""What a designer should know about a valid cloud: facts, not errors (Neutron accepts the cloud), printed by
``labtwin validate`` as notes and used by the scenarios that model them.
"""

from __future__ import annotations

from .schema import Cloud, Subnet


def ovn_localnet_conflicts(cloud: Cloud) -> dict[str, list[str]]:
    """Host -> the networks of which it maps two or more flat/VLAN segments to its bridges.

    Neutron maps such a host to every one of those segments (its IPAM gives ports addresses on any of
    them), and its OVN driver writes one ``localnet`` port per segment on the network's one logical switch.
    Once the chassis holds a port of the network, OVN 23.03's ovn-controller patches all of them, takes in
    every one of their VLANs and floods broadcasts between them (``controller/patch.c``, ``physical.c``): the
    segments become one broadcast domain there, and two such hosts on one physnet make a loop. Unicast to
    other chassis leaves by one of them only, the first it met (``controller/binding.c`` logs the others as
    skipped). The multisegment scenario models and emulates it (``control=ovn``).
    """
    conflicts: dict[str, list[str]] = {}
    for host in cloud.hosts:
        for network in cloud.networks:
            if len(_physical_segments(cloud, host.bridge_mappings, network.name)) > 1:
                conflicts.setdefault(host.name, []).append(network.name)
    return conflicts


def ports_on_localnet_conflicts(cloud: Cloud) -> set[str]:
    """The VM ports whose host has a localnet conflict on the port's network."""
    conflicts = ovn_localnet_conflicts(cloud)
    return {p.name for p in cloud.vm_ports if p.network_id in conflicts.get(p.host or "", ())}


def anycast_gateways(cloud: Cloud) -> list[Subnet]:
    """The IPv6 subnets of router gateways' networks whose gateway is the subnet-router anycast address (Neutron's
    IPv6 default since 15.0.0). A Linux router namespace with forwarding on joins that address on every prefix it
    has an address in, so each Neutron router with its gateway there takes the upstream router's address as its
    own: packets to that address itself end in the Neutron router (routing through it is unaffected; seen in
    the dvr emulation, where every probe to the outside world stopped in the snat- namespace)."""
    gateways = {r.external_gateway_info.network_id for r in cloud.routers if r.external_gateway_info is not None}
    return [
        s
        for s in cloud.subnets
        if s.network_id in gateways and s.ip_version == 6 and s.gateway_ip == s.cidr.network_address
    ]


def notes(cloud: Cloud) -> list[str]:
    """One sentence per fact :func:`ovn_localnet_conflicts` and :func:`anycast_gateways` find."""
    out = [
        f"subnets[{s.name}]: its gateway {s.gateway_ip} is Neutron's IPv6 default, the subnet-router anycast "
        "address, which every Neutron router with its gateway here takes as its own (Linux, forwarding): packets "
        "to the upstream router's own address end in the Neutron router; write that router's address as "
        "gateway_ip"
        for s in anycast_gateways(cloud)
    ]
    for host, networks in ovn_localnet_conflicts(cloud).items():
        for network in networks:
            segments = ", ".join(_physical_segments(cloud, cloud.host[host].bridge_mappings, network))
            out.append(
                f"hosts[{host}]: under ML2/OVN (control=ovn) network {network}'s segments {segments} are one "
                "broadcast domain on this host once it holds a port of the network (ovn-controller patches every "
                "localnet port of its physnets and floods between them; a second such host on the physnet makes a "
                "loop), and unicast to other hosts leaves by one of them only (labtwin simulate multisegment "
                "--set control=ovn)"
            )
    return out


def _physical_segments(cloud: Cloud, bridge_mappings, network: str) -> list[str]:
    return [
        s.name
        for s in cloud.segments
        if s.network_id == network and s.network_type in ("flat", "vlan") and s.physical_network in bridge_mappings
    ]
