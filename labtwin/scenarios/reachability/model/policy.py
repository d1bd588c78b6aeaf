"""Security-group policy evaluation: may one port reach another?

This is the model's own reading of Neutron's semantics, computed from the
description alone (no packets):

- security groups are allow-lists, evaluated per direction: the sender's
  *egress* rules must allow the packet to leave and the receiver's *ingress*
  rules must allow it in; a port with port security disabled filters nothing;
- groups are stateful, so replies to an allowed packet always pass;
- a rule matches on ethertype, protocol (``any`` matches all), destination
  port range (tcp/udp) or ICMP type/code (an icmp probe is an echo request),
  and the remote end: ``remote_ip_prefix`` containing the other port's address,
  or ``remote_group_id`` naming a group the other port belongs to, or neither
  (any remote);
- L3: ports on one network reach each other directly; ports on two networks
  need a router with an interface on a subnet of each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from labtwin.description import Cloud, Port, SecurityGroupRule
from labtwin.description.flows import Flow


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str


def evaluate(cloud: Cloud, src: Port, dst: Port, flow: Flow) -> Verdict:
    """Whether *src* may reach *dst* with *flow*, and why."""
    if not routable(cloud, src, dst):
        return Verdict(False, f"no route from network {src.network_id} to {dst.network_id}")
    out_rule = _matching_rule(cloud, src, dst, "egress", flow)
    if out_rule is None:
        return Verdict(False, f"egress of {src.name} allows no {flow} to {dst.name}")
    in_rule = _matching_rule(cloud, dst, src, "ingress", flow)
    if in_rule is None:
        return Verdict(False, f"ingress of {dst.name} allows no {flow} from {src.name}")
    return Verdict(True, f"egress {out_rule}; ingress {in_rule}")


def routable(cloud: Cloud, src: Port, dst: Port) -> bool:
    if src.network_id == dst.network_id:
        return True
    src_subnets = {f.subnet_id for f in src.fixed_ips}
    dst_subnets = {f.subnet_id for f in dst.fixed_ips}
    return any(src_subnets & set(r.interfaces) and dst_subnets & set(r.interfaces) for r in cloud.routers)


def _matching_rule(cloud: Cloud, local: Port, remote: Port, direction: str, flow: Flow) -> Optional[str]:
    """A short description of the first rule allowing *flow*, or None."""
    if not local.port_security_enabled or not cloud.network[local.network_id].port_security_enabled:
        return "port security disabled"
    remote_ip = remote.ips[0] if remote.ips else None
    for group_name in local.security_groups or ():
        for index, rule in enumerate(cloud.security_group[group_name].rules):
            if rule.direction == direction and rule_matches(rule, flow, remote, remote_ip):
                return f"{group_name}[{index}]"
    return None


def rule_matches(rule: SecurityGroupRule, flow: Flow, remote: Port, remote_ip) -> bool:
    """Whether one rule admits *flow* exchanged with *remote* (at *remote_ip*)."""
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
        return rule.remote_group_id in (remote.security_groups or ())
    return True


#: The ICMP message an ``icmp`` probe sends: an echo request (type 8 over IPv4, 128 over IPv6), code 0.
ECHO_REQUEST = {4: 8, 6: 128}


def _icmp_matches(rule: SecurityGroupRule, flow: Flow, version: int) -> bool:
    """An ICMP rule's type (``port_range_min``) and code (``port_range_max``), when given, must be the
    probe's: the echo request (replies pass as the connection's, groups being stateful)."""
    if rule.port_range_min is None:
        return True
    return flow.protocol == "icmp" and rule.port_range_min == ECHO_REQUEST[version] and rule.port_range_max in (None, 0)
