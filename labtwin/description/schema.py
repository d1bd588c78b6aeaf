"""The cloud description: typed, frozen objects named with Neutron's nouns.

Field names follow the Neutron API (``network_id``, ``segment_id``,
``physical_network``, ``segmentation_id``, ``router:external``,
``binding:host_id``, ``remote_group_id``, ``allowed_address_pairs`` ...).
One simplification, visible here: references take the *name* of the object
they point to (names are unique per kind), where Neutron takes a UUID. Every
object still has an ``id`` (a UUID), derived from its kind and name unless the
file gives one, because some Neutron behaviour depends on ids (the Linux bridge
agent names bridges ``brq`` + the first 11 characters of the network id).

These classes check the *shape* of one object (types, ranges, unknown keys).
Checks that need the whole cloud (references, overlaps, duplicates) live in
:mod:`labtwin.description.checks`; :func:`labtwin.description.load_cloud` runs
both, so a :class:`Cloud` you hold is valid and nothing downstream re-checks.
"""

from __future__ import annotations

import ipaddress
import uuid
from functools import cached_property
from typing import Annotated, Any, ClassVar, Literal, Optional, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from .names import Name

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
#: An address with a prefix length, host bits allowed (``10.0.0.5/24``): a rule's remote_ip_prefix as given.
IPPrefix = Union[ipaddress.IPv4Interface, ipaddress.IPv6Interface]

#: Namespace for ids derived from names (uuid5), so the same file always
#: yields the same ids.
ID_NAMESPACE = uuid.UUID("6f1c3a52-5a0e-4c36-9a8e-3c1b7e0d2b10")


def derived_id(kind: str, name: str) -> str:
    """The id an object gets when the file gives none: uuid5 of kind and name."""
    return str(uuid.uuid5(ID_NAMESPACE, f"{kind}/{name}"))


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _Named(_Frozen):
    """An object with a unique name and an id (UUID)."""

    name: Name
    id: Optional[uuid.UUID] = None
    description: str = ""

    kind: ClassVar[str] = "object"

    @model_validator(mode="after")
    def _fill_id(self):
        if self.id is None:
            object.__setattr__(self, "id", uuid.UUID(derived_id(self.kind, self.name)))
        return self


class Physnet(_Named):
    """A physical network name, as used in ``bridge_mappings``."""

    kind: ClassVar[str] = "physnet"
    mtu: int = Field(1500, ge=68, le=9216)


class Host(_Named):
    """A hypervisor or network node running the Neutron agents."""

    kind: ClassVar[str] = "host"
    role: Literal["compute", "network"]
    rack: Name = "rack1"
    #: physnet name -> provider bridge name (the L2 agent's bridge_mappings)
    bridge_mappings: dict[Name, Name] = Field(default_factory=dict)


class Network(_Named):
    kind: ClassVar[str] = "network"
    external: bool = Field(False, alias="router:external")
    shared: bool = False
    mtu: int = Field(1500, ge=68, le=9216)
    port_security_enabled: bool = True


NetworkType = Literal["flat", "vlan", "vxlan", "geneve"]


class Segment(_Named):
    kind: ClassVar[str] = "segment"
    network_id: Name
    network_type: NetworkType = "vlan"
    physical_network: Optional[Name] = Field(None, validate_default=True)
    segmentation_id: Optional[int] = Field(None, validate_default=True)

    @field_validator("physical_network")
    @classmethod
    def _physnet_fits_type(cls, value, info):
        kind = info.data.get("network_type")
        if kind in ("flat", "vlan") and value is None:
            raise ValueError(f"a {kind} segment needs physical_network")
        if kind in ("vxlan", "geneve") and value is not None:
            raise ValueError(f"a {kind} segment has no physical_network")
        return value

    @field_validator("segmentation_id")
    @classmethod
    def _id_fits_type(cls, value, info):
        kind = info.data.get("network_type")
        if kind == "flat" and value is not None:
            raise ValueError("a flat segment has no segmentation_id")
        if kind == "vlan" and (value is None or not 1 <= value <= 4094):
            raise ValueError(f"a VLAN id must be in 1..4094, got {value}")
        if kind in ("vxlan", "geneve") and (value is None or not 1 <= value < 2**24):
            raise ValueError(f"a VNI must be in 1..16777215, got {value}")
        return value


class AllocationPool(_Frozen):
    start: IPAddress
    end: IPAddress

    @model_validator(mode="after")
    def _ordered(self):
        if self.start.version != self.end.version:
            raise ValueError("start and end must be of one IP version")
        if int(self.start) > int(self.end):
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self

    def size(self) -> int:
        return int(self.end) - int(self.start) + 1

    def __contains__(self, ip: IPAddress) -> bool:
        return ip.version == self.start.version and int(self.start) <= int(ip) <= int(self.end)


Ipv6Mode = Literal["slaac", "dhcpv6-stateful", "dhcpv6-stateless"]


class Subnet(_Named):
    kind: ClassVar[str] = "subnet"
    network_id: Name
    segment_id: Optional[Name] = None
    cidr: IPNetwork
    ip_version: Literal[4, 6] = Field(4, validate_default=True)
    #: Omitted: the first host address (Neutron's default). ``null``: no gateway.
    gateway_ip: Optional[IPAddress] = Field(default="auto", validate_default=True)
    allocation_pools: tuple[AllocationPool, ...] = ()
    enable_dhcp: bool = True
    #: Neutron's IPv6 modes (IPv6 subnets only; checked as ``db_base_plugin_v2._validate_ipv6_attributes``
    #: checks them). An auto-address subnet (``slaac``, ``dhcpv6-stateless``) gives each port the EUI-64
    #: address of its MAC; ``dhcpv6-stateful``, or no mode, allocates from the pools.
    ipv6_ra_mode: Optional[Ipv6Mode] = None
    ipv6_address_mode: Optional[Ipv6Mode] = Field(None, validate_default=True)

    @field_validator("ip_version")
    @classmethod
    def _version_matches(cls, value, info):
        cidr = info.data.get("cidr")
        if cidr is not None and cidr.version != value:
            raise ValueError(f"cidr {cidr} is IPv{cidr.version} but ip_version is {value}")
        return value

    @field_validator("gateway_ip", mode="before")
    @classmethod
    def _auto_gateway(cls, value, info):
        if value == "auto":
            cidr = info.data.get("cidr")
            if cidr is None or cidr.num_addresses < 4:
                return None
            return cidr.network_address + 1
        return value

    @field_validator("gateway_ip")
    @classmethod
    def _gateway_inside(cls, gw, info):
        cidr = info.data.get("cidr")
        if gw is not None and cidr is not None:
            if gw.version != cidr.version or gw not in cidr or gw in (cidr.network_address, _broadcast(cidr)):
                raise ValueError(f"{gw} is not a host address of {cidr}")
        return gw

    @field_validator("ipv6_address_mode")
    @classmethod
    def _ipv6_modes(cls, address_mode, info):
        ra_mode, version = info.data.get("ipv6_ra_mode"), info.data.get("ip_version")
        if address_mode is None and ra_mode is None:
            return address_mode
        if version == 4:
            raise ValueError("ipv6_ra_mode and ipv6_address_mode are for IPv6 subnets (InvalidInput, 400)")
        if not info.data.get("enable_dhcp", True):
            raise ValueError(
                "ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is false (InvalidInput, 400)"
            )
        if ra_mode is not None and address_mode is not None and ra_mode != address_mode:
            raise ValueError(
                f"ipv6_ra_mode {ra_mode!r} with ipv6_address_mode {address_mode!r}: if both are set they must be "
                "the same (InvalidInput, 400)"
            )
        cidr = info.data.get("cidr")
        if _auto_address(address_mode, ra_mode) and cidr is not None and cidr.prefixlen != 64:
            raise ValueError(
                f"{cidr}: an IPv6 address mode with EUI-64 addresses needs a /64 prefix (InvalidInput, 400)"
            )
        return address_mode

    @property
    def auto_address(self) -> bool:
        """Whether ports get their EUI-64 address here rather than one from the pools
        (``neutron_lib.utils``' ``is_auto_address_subnet``)."""
        return _auto_address(self.ipv6_address_mode, self.ipv6_ra_mode)

    @model_validator(mode="after")
    def _default_pools(self):
        if not self.allocation_pools:
            object.__setattr__(self, "allocation_pools", default_pools(self.cidr, self.gateway_ip))
        return self

    @property
    def pool_size(self) -> int:
        """Addresses in the allocation pools (1021 for a /22 with a gateway)."""
        return sum(p.size() for p in self.allocation_pools)


def _auto_address(address_mode: Optional[str], ra_mode: Optional[str]) -> bool:
    auto = ("slaac", "dhcpv6-stateless")
    return address_mode in auto or (address_mode is None and ra_mode in auto)


def _broadcast(cidr: IPNetwork):
    return cidr.broadcast_address if cidr.version == 4 else None


def default_pools(cidr: IPNetwork, gateway) -> tuple[AllocationPool, ...]:
    """Neutron's default pools: the CIDR minus network, broadcast and gateway.

    >>> cidr, gateway = ipaddress.ip_network("10.0.0.0/24"), ipaddress.ip_address("10.0.0.1")
    >>> [str(p.start) + "-" + str(p.end) for p in default_pools(cidr, gateway)]
    ['10.0.0.2-10.0.0.254']
    """
    first = int(cidr.network_address) + 1
    last = int(cidr.broadcast_address) - (1 if cidr.version == 4 else 0)
    gw = int(gateway) if gateway is not None else None
    if gw is not None and first <= gw <= last:
        ranges = [(first, gw - 1), (gw + 1, last)]
    else:
        ranges = [(first, last)]
    make = ipaddress.ip_address
    return tuple(AllocationPool(start=make(a), end=make(b)) for a, b in ranges if a <= b)


class ExternalGateway(_Frozen):
    network_id: Name
    enable_snat: bool = True
    #: The gateway port's addresses on the external network: given, or (as Neutron does) one per IP
    #: version from the network's subnets when the file names none.
    external_fixed_ips: tuple["FixedIP", ...] = ()


class Router(_Named):
    kind: ClassVar[str] = "router"
    distributed: bool = False
    ha: bool = False
    external_gateway_info: Optional[ExternalGateway] = None
    #: subnets this router has an interface on (Neutron: router interface add by subnet)
    interfaces: tuple[Name, ...] = ()


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
    port_range_min: Optional[int] = Field(None, ge=0, le=65535)
    port_range_max: Optional[int] = Field(None, ge=0, le=65535)
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


class DefaultSecurityGroupRule(_Frozen):
    """A rule Neutron adds to every new group (its ``/default-security-group-rules``): to the project's
    ``default`` group when ``used_in_default_sg``, to every other group when ``used_in_non_default_sg``.
    ``remote_group_id: PARENT`` stands for the group the rule is added to."""

    direction: Literal["ingress", "egress"]
    ethertype: Literal["IPv4", "IPv6"] = "IPv4"
    protocol: Protocol = "any"
    port_range_min: Optional[int] = Field(default=None, ge=0, le=65535)
    port_range_max: Optional[int] = Field(default=None, ge=0, le=65535)
    remote_ip_prefix: Optional[IPNetwork] = None
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


class FixedIP(_Frozen):
    subnet_id: Name
    #: Omitted: the loader assigns the lowest free address of the subnet's pools.
    ip_address: Optional[IPAddress] = None


class AddressPair(_Frozen):
    ip_address: IPNetwork | IPAddress
    mac_address: Optional[str] = Field(None, pattern=r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")


class Port(_Named):
    kind: ClassVar[str] = "port"
    network_id: Name
    host: Optional[Name] = Field(None, alias="binding:host_id")
    device_owner: str = Field("compute:nova", pattern=r"^[a-z_:]{0,40}$")
    mac_address: Optional[str] = Field(None, pattern=r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")
    #: Omitted: one address from the network's IPv4 subnet the host reaches.
    fixed_ips: tuple[FixedIP, ...] = ()
    #: Omitted: ``[default]`` when the cloud has a group named default.
    security_groups: Optional[tuple[Name, ...]] = None
    port_security_enabled: bool = True
    allowed_address_pairs: tuple[AddressPair, ...] = ()

    @property
    def ips(self) -> tuple[IPAddress, ...]:
        return tuple(f.ip_address for f in self.fixed_ips if f.ip_address is not None)  # all set once resolved


class FloatingIP(_Frozen):
    floating_network_id: Name
    port_id: Name
    floating_ip_address: Optional[IPAddress] = None


class Cloud(_Frozen):
    """A whole cloud: what one topology file describes."""

    name: Name
    description: str = ""
    physnets: tuple[Physnet, ...] = ()
    hosts: tuple[Host, ...] = ()
    networks: tuple[Network, ...] = ()
    segments: tuple[Segment, ...] = ()
    subnets: tuple[Subnet, ...] = ()
    routers: tuple[Router, ...] = ()
    security_groups: tuple[SecurityGroup, ...] = ()
    #: The rules Neutron adds to each new group; omitted: Neutron's own defaults (egress anywhere in every
    #: group, ingress from itself in ``default``); ``[]``: none, so each group has only its listed rules.
    default_security_group_rules: tuple[DefaultSecurityGroupRule, ...] = NEUTRON_DEFAULT_RULES
    ports: tuple[Port, ...] = ()
    floatingips: tuple[FloatingIP, ...] = ()

    # Lookups by name; valid because names are unique per kind (checked on load).
    @cached_property
    def host(self) -> dict[str, Host]:
        return {h.name: h for h in self.hosts}

    @cached_property
    def network(self) -> dict[str, Network]:
        return {n.name: n for n in self.networks}

    @cached_property
    def segment(self) -> dict[str, Segment]:
        return {s.name: s for s in self.segments}

    @cached_property
    def subnet(self) -> dict[str, Subnet]:
        return {s.name: s for s in self.subnets}

    @cached_property
    def router(self) -> dict[str, Router]:
        return {r.name: r for r in self.routers}

    @cached_property
    def security_group(self) -> dict[str, SecurityGroup]:
        return {g.name: g for g in self.security_groups}

    @cached_property
    def port(self) -> dict[str, Port]:
        return {p.name: p for p in self.ports}

    @cached_property
    def group_members(self) -> dict[str, tuple[Port, ...]]:
        """Security group name -> its member ports, in file order."""
        members: dict[str, list[Port]] = {g.name: [] for g in self.security_groups}
        for port in self.ports:
            for group in port.security_groups or ():
                members[group].append(port)
        return {name: tuple(ports) for name, ports in members.items()}

    @cached_property
    def vm_ports(self) -> tuple[Port, ...]:
        """Ports that stand for VMs: compute-owned, bound to a host, with an address."""
        return tuple(p for p in self.ports if p.device_owner.startswith("compute:") and p.host and p.ips)

    def ports_on(self, host: str) -> tuple[Port, ...]:
        return tuple(p for p in self.ports if p.host == host)

    def _repr_html_(self) -> str:
        from .summary import cloud_html

        return cloud_html(self)
