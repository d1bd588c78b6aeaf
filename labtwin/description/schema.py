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
from functools import cached_property
from typing import ClassVar, Literal, Optional

from pydantic import Field, PrivateAttr, field_validator, model_validator

from .names import Name
from .objects import ID_NAMESPACE, IPAddress, IPNetwork, IPPrefix, _Frozen, _Named, derived_id
from .security_groups import (
    ICMP_PROTOCOLS,
    IP_PROTOCOLS,
    NEUTRON_DEFAULT_RULES,
    PORT_PROTOCOLS,
    DefaultSecurityGroupRule,
    Protocol,
    SecurityGroup,
    SecurityGroupRule,
    protocol_number,
)

__all__ = [  # re-exported: the description's objects are all reachable from here
    "ICMP_PROTOCOLS", "ID_NAMESPACE", "IP_PROTOCOLS", "IPAddress", "IPNetwork", "IPPrefix", "NEUTRON_DEFAULT_RULES",
    "PORT_PROTOCOLS", "DefaultSecurityGroupRule", "Protocol", "SecurityGroup", "SecurityGroupRule", "derived_id",
    "protocol_number", "AddressPair", "AllocationPool", "Cloud", "ExternalGateway", "FixedIP", "FloatingIP", "Host",
    "Network", "NetworkPort", "NetworkType", "Physnet", "Port", "Router", "Segment", "Subnet", "default_pools",
]  # fmt: skip


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
    def _gateway(cls, value, info):
        """Omitted: Neutron's default (``IpamBackendMixin._gateway_ip_str``), never checked, as Neutron does not
        check it: the address after the prefix in IPv4 (even on a /31 or /32), the subnet-router anycast address
        (the prefix itself, ``2001:db8::``) in IPv6 (Neutron 15.0.0 onward, commit 1916bc5c06, bug 1682094: both
        eras labtwin models). Given: never an IPv4 subnet's network or broadcast address, as
        ``check_gateway_invalid_in_subnet`` (an IPv6 subnet's first address is a router's, the default).
        A given gateway outside the subnet is accepted, as Neutron accepts it (``check_gateway_invalid_in_subnet``:
        "If gateway is out of subnet, there is no way to check"): the agents reach it by an on-link route
        (:attr:`Subnet.gateway_off_subnet`)."""
        cidr = info.data.get("cidr")
        if value == "auto":
            if cidr is None:
                return None
            return cidr.network_address if cidr.version == 6 else cidr.network_address + 1
        if value is not None and cidr is not None:
            gw = ipaddress.ip_address(str(value))
            if gw.version != cidr.version:
                raise ValueError(f"{gw} is not an IPv{cidr.version} address, as {cidr} is (InvalidInput, 400)")
            if gw in (_network_v4(cidr), ipv4_broadcast(cidr)):
                raise ValueError(f"{gw} is not a host address of {cidr}")
        return value

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

    @property
    def gateway_off_subnet(self) -> bool:
        """A gateway outside the CIDR: reached by an on-link route (``scope link``), as Neutron's L3 agent
        (``RouterInfo._add_route_to_gw``) and DHCP agent (``DeviceManager._set_default_route_ip_version``) add
        it; no router interface can take it (``InvalidIpForSubnet``, 400)."""
        return self.gateway_ip is not None and ipaddress.ip_address(str(self.gateway_ip)) not in self.cidr


def _auto_address(address_mode: Optional[str], ra_mode: Optional[str]) -> bool:
    auto = ("slaac", "dhcpv6-stateless")
    return address_mode in auto or (address_mode is None and ra_mode in auto)


def ipv4_broadcast(cidr: IPNetwork):
    """An IPv4 subnet's broadcast address; none on a /31 or /32 (RFC 3021, as netaddr has it) or in IPv6."""
    return cidr.broadcast_address if cidr.version == 4 and cidr.prefixlen < 31 else None


def _network_v4(cidr: IPNetwork):
    return cidr.network_address if cidr.version == 4 else None


def default_pools(cidr: IPNetwork, gateway) -> tuple[AllocationPool, ...]:
    """Neutron's default pools (``ipam.utils.generate_pools``): the CIDR minus the gateway, and minus the network
    and broadcast addresses in IPv4 down to a /30 (a /31 or /32 keeps them); in IPv6 minus the first address.

    >>> cidr, gateway = ipaddress.ip_network("10.0.0.0/24"), ipaddress.ip_address("10.0.0.1")
    >>> [str(p.start) + "-" + str(p.end) for p in default_pools(cidr, gateway)]
    ['10.0.0.2-10.0.0.254']
    >>> cidr = ipaddress.ip_network("2001:db8::/64")  # its default gateway is 2001:db8::, outside the pool
    >>> [str(p.start) + "-" + str(p.end) for p in default_pools(cidr, cidr.network_address)]
    ['2001:db8::1-2001:db8::ffff:ffff:ffff:ffff']
    """
    first, last = int(cidr.network_address), int(cidr.broadcast_address)
    if first == last:
        return (AllocationPool(start=cidr.network_address, end=cidr.network_address),)
    if cidr.version == 6 or cidr.prefixlen <= 30:
        first += 1
        last -= 1 if cidr.version == 4 else 0
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


class FixedIP(_Frozen):
    subnet_id: Name
    #: Omitted: the loader assigns the lowest free address of the subnet's pools.
    ip_address: Optional[IPAddress] = None


class AddressPair(_Frozen):
    ip_address: IPNetwork | IPAddress
    mac_address: Optional[str] = Field(None, pattern=r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")
    _written: str = PrivateAttr("")

    @model_validator(mode="wrap")
    @classmethod
    def _keep_the_text(cls, data, handler):
        """Keep ``ip_address`` as the file wrote it: Neutron stores a pair's address as given and compares it as
        text (ML2/OVN finds a VIP's ``virtual`` parents by ``allowed_address_pairs.ip_address == <the VIP>``, so
        ``10.10.0.100/32`` is not a parent of ``10.10.0.100``), while labtwin reads it as a network."""
        pair = handler(data)
        if isinstance(data, dict) and isinstance(data.get("ip_address"), str):
            pair._written = data["ip_address"]
        return pair

    @property
    def written(self) -> str:
        """The address as the topology wrote it (what an operator's tooling sends Neutron)."""
        return self._written or str(self.ip_address)


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


class NetworkPort(_Frozen):
    """A port Neutron's server creates by itself, never written in a topology: a DVR router's SNAT port
    (``network:router_centralized_snat``, one per IPv4 interface subnet and one for its IPv6 subnets per
    network, ``l3_dvr_db._add_csnat_on_interface_create``) and a floating-IP agent gateway port
    (``network:floatingip_agent_gateway``, one per external network and host whose DVR L3 agent hosts a distributed
    router with a gateway there, floating IP or not, ``l3_dvr_db.create_fip_agent_gw_port_if_not_exists``); and a
    DHCP port (``network:dhcp``, which the DHCP agent asks the server for: one per network it hosts, one per
    segment on a routed network,
    ``DeviceManager.setup_dhcp_port``); under ML2/OVN with ``ovn_metadata_enabled``, a network's metadata port
    (``network:distributed``, ``OVNClient.create_metadata_port``). Each takes its addresses from the pools as any
    port does. An auto-address (SLAAC) subnet's fixed IP has no ``ip_address``: its EUI-64 address comes from a MAC
    Neutron picks at random."""

    device_owner: Literal[
        "network:router_centralized_snat", "network:floatingip_agent_gateway", "network:dhcp", "network:distributed"
    ]
    network_id: Name
    #: The SNAT port's router.
    router: Optional[Name] = None
    #: The agent gateway port's host, the DHCP port's agent host.
    host: Optional[Name] = None
    #: The DHCP port's segment, on a routed network.
    segment: Optional[Name] = None
    fixed_ips: tuple[FixedIP, ...] = ()


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
    #: ML2's mechanism driver (``[ml2] mechanism_drivers``): ``openvswitch`` (ML2/OVS with its DHCP and L3 agents,
    #: labtwin's default) or ``ovn`` (ML2/OVN: native DHCP, the ``ovn-router`` plugin; no DHCP agent, no SNAT or
    #: ``fg-`` port). Scenarios whose ``control`` knob picks an emulation check it against that knob.
    mechanism_driver: Literal["openvswitch", "ovn"] = "openvswitch"
    #: ML2/OVN's ``[ovn] ovn_metadata_enabled`` (Neutron 29's default: False, ``ovn_conf.py``): each network gets a
    #: metadata port (``network:distributed``) with an address on each IPv4 DHCP subnet.
    ovn_metadata_enabled: bool = False
    #: ``dhcp_agents_per_network`` (Neutron 29's default 1, its minimum 1): how many DHCP agents Neutron's scheduler
    #: gives each network (:mod:`labtwin.description.dhcp_scheduling`); ML2/OVS only.
    dhcp_agents_per_network: int = Field(1, ge=1)
    #: Filled by the loader, never written (and never dumped): the ports Neutron's server creates itself.
    network_ports: tuple[NetworkPort, ...] = Field((), exclude=True)

    @field_validator("network_ports", mode="before")
    @classmethod
    def _not_written(cls, value):
        raise ValueError("made by the loader (the ports Neutron's server creates itself), not written in a topology")

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
