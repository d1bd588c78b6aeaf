"""Security-group policy evaluation: may one port reach another?

The models' own reading of Neutron's semantics (the reachability scenario's
verdicts, the dvr scenario's paths), computed from the description alone (no
packets):

- security groups are allow-lists, evaluated per direction: the sender's
  *egress* rules must allow the packet to leave and the receiver's *ingress*
  rules must allow it in; a port with port security disabled filters nothing;
- groups are stateful, so replies to an allowed packet always pass;
- a rule matches on ethertype, protocol (``any`` matches all), destination
  port range (tcp/udp) or ICMP type/code (an icmp probe is an echo request),
  and the remote end: ``remote_ip_prefix`` containing the other port's address,
  or ``remote_group_id`` naming a group the other port belongs to, or neither
  (any remote);
- each IP version is its own question (Neutron's rules carry an ethertype): a probe
  is IPv4 or IPv6, and the remote end is the other port's address of that version;
- a remote group's members are its ports' fixed IPs **and** their allowed address
  pairs (Neutron puts both in the group's ipset / conjunction flows), so a port
  may send from an address pair it lists; from any other address it is dropped
  by port security's anti-spoofing rules;
- L3: ports on one segment of one network reach each other directly; others
  need a Neutron router with an interface on a subnet of each, or both subnets
  routed by the physical network's router (a provider network's gateway that
  no Neutron router holds: :mod:`labtwin.description.routing`), as the segments
  of a routed provider network are (the emulation builds that router).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Optional, Union

from labtwin.description import Cloud, Port, SecurityGroupRule
from labtwin.description.flows import Flow
from labtwin.description.routing import physically_routed, port_segment

IPAddr = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPNet = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str
    #: Where a refused packet is dropped by a group: ``egress`` (the sender's), ``ingress`` (the receiver's),
    #: or "" (not by a group: no route, no address, spoofed source; or allowed).
    dropped_by: str = ""


def evaluate(
    cloud: Cloud, src: Port, dst: Port, flow: Flow, version: Optional[int] = None, src_ip: Optional[IPAddr] = None
) -> Verdict:
    """Whether *src* may reach *dst* with *flow* over IP *version* (default: the first version both ports
    have, IPv4 before IPv6), sent from *src_ip* (default: *src*'s address of that version), and why."""
    version = version or (src_ip.version if src_ip is not None else _common_version(src, dst))
    if version is None:
        return Verdict(False, f"{src.name} and {dst.name} share no IP version")
    sent_from = src_ip if src_ip is not None else _address(src, version)
    dst_ip = _address(dst, version)
    if sent_from is None or dst_ip is None:
        return Verdict(False, f"{src.name} or {dst.name} has no IPv{version} address")
    if _filtered(cloud, src) and not _in(sent_from, _addresses(src)):
        return Verdict(False, f"{sent_from} is neither a fixed IP nor an allowed address pair of {src.name}")
    if not routable(cloud, src, dst):
        return Verdict(False, f"no route from {src.name} ({src.network_id}) to {dst.name} ({dst.network_id})")
    out_rule = _matching_rule(cloud, src, dst, dst_ip, "egress", flow)
    if out_rule is None:
        return Verdict(False, f"egress of {src.name} allows no {flow} to {dst.name}", "egress")
    in_rule = _matching_rule(cloud, dst, src, sent_from, "ingress", flow)
    if in_rule is None:
        return Verdict(False, f"ingress of {dst.name} allows no {flow} from {src.name}", "ingress")
    return Verdict(True, f"egress {out_rule}; ingress {in_rule}")


def outside_verdict(cloud: Cloud, port: Port, flow: Flow, direction: str, outside_ip: IPAddr) -> Verdict:
    """Whether *port*'s groups let *flow* out to (``egress``) or in from (``ingress``) an address outside the
    cloud, *outside_ip* (behind a router's gateway: no port, so no group of its own, and no remote group rule
    matches it). The way back passes as the connection's (stateful groups)."""
    rule = _matching_rule(cloud, port, None, outside_ip, direction, flow)
    if rule is None:
        way = "to" if direction == "egress" else "from"
        return Verdict(False, f"{direction} of {port.name} allows no {flow} {way} {outside_ip}", direction)
    return Verdict(True, f"{direction} {rule}")


def _common_version(src: Port, dst: Port) -> Optional[int]:
    shared = {ip.version for ip in src.ips} & {ip.version for ip in dst.ips}
    return min(shared) if shared else None


def _address(port: Port, version: int) -> Optional[IPAddr]:
    return next((ip for ip in port.ips if ip.version == version), None)


def _addresses(port: Port) -> list[IPNet]:
    """What *port* may send from: its fixed IPs and its allowed address pairs (as networks)."""
    return [ipaddress.ip_network(str(ip)) for ip in port.ips] + [
        ipaddress.ip_network(str(pair.ip_address), strict=False) for pair in port.allowed_address_pairs
    ]


def _in(ip: IPAddr, networks: list[IPNet]) -> bool:
    return any(ip.version == net.version and ip in net for net in networks)


def _filtered(cloud: Cloud, port: Port) -> bool:
    return port.port_security_enabled and cloud.network[port.network_id].port_security_enabled


def routable(cloud: Cloud, src: Port, dst: Port) -> bool:
    if src.network_id == dst.network_id and port_segment(cloud, src) == port_segment(cloud, dst):
        return True  # one L2 domain
    src_subnets = {f.subnet_id for f in src.fixed_ips}
    dst_subnets = {f.subnet_id for f in dst.fixed_ips}
    if any(src_subnets & set(r.interfaces) and dst_subnets & set(r.interfaces) for r in cloud.routers):
        return True
    physical = {s.name for s in physically_routed(cloud)}
    return bool(src_subnets & physical and dst_subnets & physical)


def _matching_rule(
    cloud: Cloud, local: Port, remote: Optional[Port], remote_ip: IPAddr, direction: str, flow: Flow
) -> Optional[str]:
    """A short description of the first rule allowing *flow* exchanged with *remote* at *remote_ip* (*remote*
    None: outside the cloud), or None."""
    if not _filtered(cloud, local):
        return "port security disabled"
    for group_name in local.security_groups or ():
        for index, rule in enumerate(cloud.security_group[group_name].rules):
            if rule.direction == direction and rule_matches(rule, flow, remote, remote_ip):
                return f"{group_name}[{index}]"
    return None


def rule_matches(rule: SecurityGroupRule, flow: Flow, remote: Optional[Port], remote_ip) -> bool:
    """Whether one rule admits *flow* exchanged with *remote* at *remote_ip* (one of its fixed IPs or address
    pairs: both are members of its groups; *remote* None: outside the cloud, in no group)."""
    if remote_ip is None or rule.ethertype != f"IPv{remote_ip.version}":
        return False
    proto = rule.proto  # by number: "6" is tcp, "ipv6-icmp" is icmpv6; "vrrp" matches no probe
    if proto != "any" and proto != flow.protocol:
        if not (proto == "icmpv6" and flow.protocol == "icmp" and remote_ip.version == 6):
            return False
    if rule.proto in ("icmp", "icmpv6") and not _icmp_matches(rule, flow, remote_ip.version):
        return False
    if flow.port is not None and rule.proto in ("tcp", "udp"):
        low, high = rule.ports()
        if not low <= flow.port <= high:
            return False
    if rule.remote_network is not None:
        return remote_ip in rule.remote_network
    if rule.remote_group_id is not None:
        if remote is None:
            return False
        return rule.remote_group_id in (remote.security_groups or ()) and _in(remote_ip, _addresses(remote))
    return True


#: The ICMP message an ``icmp`` probe sends: an echo request (type 8 over IPv4, 128 over IPv6), code 0.
ECHO_REQUEST = {4: 8, 6: 128}


def _icmp_matches(rule: SecurityGroupRule, flow: Flow, version: int) -> bool:
    """An ICMP rule's type (``port_range_min``) and code (``port_range_max``), when given, must be the
    probe's: the echo request (replies pass as the connection's, groups being stateful)."""
    if rule.port_range_min is None:
        return True
    return flow.protocol == "icmp" and rule.port_range_min == ECHO_REQUEST[version] and rule.port_range_max in (None, 0)
