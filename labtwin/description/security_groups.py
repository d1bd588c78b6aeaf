"""Security groups as Neutron 29 takes them: rules, the protocols they name, the rules Neutron adds.

A rule's shape is checked here as Neutron's API checks it (protocols by name or number, port ranges and
ICMP type/code, remote prefixes kept as given); rules that need the whole cloud (a remote group that
exists) are checked in :mod:`labtwin.description.checks`, and each group gets Neutron's default rules in
:mod:`labtwin.description.resolve`.
"""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Any, ClassVar, Literal, Optional

from pydantic import BeforeValidator, Field, field_validator

from .names import Name
from .objects import IPNetwork, IPPrefix, _Frozen, _Named

#: The IP protocol names Neutron accepts in a rule and their numbers: neutron-lib's ``IP_PROTOCOL_MAP``,
#: written out so the loader needs no Neutron (tests/oracle checks the copy against neutron-lib's).
IP_PROTOCOLS = {
    "ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "hopopt": 0, "icmp": 1, "igmp": 2, "ip": 0,
    "ipip": 4, "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58, "icmpv6": 58, "ipv6-nonxt": 59,
    "ipv6-opts": 60, "ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46, "sctp": 132, "tcp": 6, "udp": 17,
    "udplite": 136, "vrrp": 112,
}  # fmt: skip
#: Protocols whose rules take a port range (Neutron's ``SG_PORT_PROTO_NAMES``), by number.
PORT_PROTOCOLS = {6, 17, 33, 132, 136}
#: ICMP over IPv4 and IPv6: a rule's port range is an ICMP type and code.
ICMP_PROTOCOLS = {1, 58}
#: labtwin's own name for the protocols its probes and filters know, by number.
KNOWN_NAMES = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6"}


def _protocol(value: Any) -> str:
    """A rule's protocol as Neutron takes it: ``any``, a name Neutron knows, or a number 0..255 (an int in
    YAML or a string); kept as written (lower case), compared by number (a name and its number are one)."""
    text = str(value).strip().lower()
    if text == "any" or text in IP_PROTOCOLS or (text.isdigit() and 0 <= int(text) <= 255):
        return str(int(text)) if text.isdigit() else text
    raise ValueError(
        f"{value!r} is not a protocol Neutron accepts: any, a number 0..255 or one of "
        f"{', '.join(sorted(IP_PROTOCOLS))} (SecurityGroupRuleInvalidProtocol, 400)"
    )


def protocol_number(protocol: str) -> Optional[int]:
    """The IP protocol number of a rule's protocol (None for any, or 0, which Neutron writes as no ``-p``).

    >>> protocol_number("vrrp"), protocol_number("112"), protocol_number("any"), protocol_number("tcp")
    (112, 112, None, 6)
    """
    number = (
        None if protocol == "any" else IP_PROTOCOLS.get(protocol, None if not protocol.isdigit() else int(protocol))
    )
    return number or None


Protocol = Annotated[str, BeforeValidator(_protocol)]


class SecurityGroupRule(_Frozen):
    direction: Literal["ingress", "egress"]
    ethertype: Literal["IPv4", "IPv6"] = "IPv4"
    protocol: Protocol = "any"
    port_range_min: Optional[int] = Field(default=None, ge=0, le=65535)
    port_range_max: Optional[int] = Field(default=None, ge=0, le=65535)
    remote_ip_prefix: Optional[IPPrefix] = None  # kept as given, host bits too (Neutron 29 keeps them)
    remote_group_id: Optional[Name] = None

    @field_validator("port_range_min", "port_range_max")
    @classmethod
    def _ports_need_l4(cls, value, info):
        """tcp/udp: a port range; icmp/icmpv6: ICMP type (``port_range_min``) and code (``port_range_max``),
        checked as Neutron's ``_validate_port_range`` checks them."""
        protocol = info.data.get("protocol")
        number = protocol_number(protocol) if protocol is not None else None
        if value is not None and number in ICMP_PROTOCOLS:
            if not 0 <= value <= 255:
                raise ValueError(f"ICMP type/code {value} must be in 0..255 (SecurityGroupInvalidIcmpValue, 400)")
            if info.field_name == "port_range_max" and info.data.get("port_range_min") is None:
                raise ValueError(
                    "an ICMP code (port_range_max) needs an ICMP type (port_range_min) "
                    "(SecurityGroupMissingIcmpType, 400)"
                )
            return value
        if value is not None and number not in PORT_PROTOCOLS:
            raise ValueError(
                f"port ranges need protocol tcp, udp, dccp, sctp, udplite (ports) or icmp (type/code), not {protocol} "
                "(SecurityGroupProtocolRequiredWithPorts, 400)"
            )
        low = info.data.get("port_range_min")
        if info.field_name == "port_range_max" and value is not None and low is not None and low > value:
            raise ValueError(f"port_range_max {value} is below port_range_min {low}")
        return value

    @field_validator("remote_ip_prefix")
    @classmethod
    def _prefix_matches_ethertype(cls, prefix, info):
        if prefix is not None and f"IPv{prefix.version}" != info.data.get("ethertype"):
            raise ValueError(f"{prefix} does not match ethertype {info.data.get('ethertype')}")
        return prefix

    @field_validator("remote_group_id")
    @classmethod
    def _one_remote(cls, group, info):
        if group is not None and info.data.get("remote_ip_prefix") is not None:
            raise ValueError("give remote_ip_prefix or remote_group_id, not both")
        return group

    @property
    def remote_network(self) -> Optional[IPNetwork]:
        """The network the remote prefix matches: ``10.0.0.5/24`` matches 10.0.0.0/24, as the kernel's
        filter (given the prefix as written) matches it."""
        return None if self.remote_ip_prefix is None else self.remote_ip_prefix.network

    @property
    def proto(self) -> str:
        """The protocol by labtwin's name where its probes and filters know it (``6`` and ``tcp`` are
        ``tcp``; ``ipv6-icmp`` and ``58`` are ``icmpv6``), else as written; ``any`` for any (and 0)."""
        number = protocol_number(self.protocol)
        return "any" if number is None else KNOWN_NAMES.get(number, self.protocol)

    def ports(self) -> tuple[int, int]:
        """The destination port range, both ends included (all ports if unset)."""
        lo = self.port_range_min if self.port_range_min is not None else 0
        hi = (
            self.port_range_max
            if self.port_range_max is not None
            else (lo if self.port_range_min is not None else 65535)
        )
        return lo, hi


class DefaultSecurityGroupRule(SecurityGroupRule):
    """A rule Neutron adds to every new group (its ``/default-security-group-rules``): to the project's
    ``default`` group when ``used_in_default_sg``, to every other group when ``used_in_non_default_sg``.
    ``remote_group_id: PARENT`` stands for the group the rule is added to. Its fields are a rule's, with
    a rule's checks."""

    remote_group_id: Optional[Literal["PARENT"]] = None
    used_in_default_sg: bool = False
    used_in_non_default_sg: bool = True

    def for_group(self, group: str) -> SecurityGroupRule:
        fields = self.model_dump(exclude={"used_in_default_sg", "used_in_non_default_sg", "remote_group_id"})
        return SecurityGroupRule(**fields, remote_group_id=group if self.remote_group_id else None)


#: Neutron's default templates, as its migration ``c33da356b165`` (2023.2) inserts them: egress to anywhere
#: (IPv4, IPv6) in every group; ingress from the group itself (IPv4, IPv6) in ``default``. Written out so
#: the loader needs no Neutron; tests/oracle checks them against the installed Neutron's own list.
NEUTRON_DEFAULT_RULES = (
    DefaultSecurityGroupRule(direction="egress", ethertype="IPv4", used_in_default_sg=True),
    DefaultSecurityGroupRule(direction="egress", ethertype="IPv6", used_in_default_sg=True),
    DefaultSecurityGroupRule(
        direction="ingress",
        ethertype="IPv4",
        remote_group_id="PARENT",
        used_in_default_sg=True,
        used_in_non_default_sg=False,
    ),
    DefaultSecurityGroupRule(
        direction="ingress",
        ethertype="IPv6",
        remote_group_id="PARENT",
        used_in_default_sg=True,
        used_in_non_default_sg=False,
    ),
)


class SecurityGroup(_Named):
    kind: ClassVar[str] = "security_group"
    #: The group's rules: those the file lists plus (once loaded) Neutron's default rules for it
    #: (:attr:`Cloud.default_security_group_rules`); a listed rule that repeats one is the same rule.
    rules: tuple[SecurityGroupRule, ...] = ()

    @cached_property
    def remote_groups(self) -> frozenset[str]:
        """Names of the groups this group's rules reference."""
        return frozenset(r.remote_group_id for r in self.rules if r.remote_group_id)
