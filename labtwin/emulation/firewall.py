"""Security groups as Neutron's iptables hybrid driver writes them, as plain text.

Per filtered port: chains ``i<dev>`` (ingress), ``o<dev>`` (egress) and
``s<dev>`` (anti-spoof), reached from ``sg-chain`` by ``physdev`` matches on
the port's tap device, each ending in ``sg-fallback`` (DROP). Stateful:
``RELATED,ESTABLISHED`` returns first, ``INVALID`` drops. Remote groups use
one ipset per (group, ethertype) per host (Neutron's default
``enable_ipset=True``); an empty group gets no set and its rule is omitted.
(neutron/agent/linux/iptables_firewall.py, ipset_manager.py.)

Connections are tracked in a conntrack zone per network, set in the raw table
for the port's tap and its network's bridge (``IpConntrackManager``, zones from
4097; ``_get_jump_rules``): a packet the physical network's router sends back
into the same host, onto another network, is a new connection there, not the
one it left as.

Simplifications, stated: DHCP and ICMPv6 fixed rules kept to the ones that matter
for probes; chain names use the wrap prefix ``neutron-openvswi-``.

The output is ``iptables-restore`` / ``ipset restore`` input: data, applied
through the runner's stdin, never a shell.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ..description import Cloud, Port, SecurityGroupRule
from ..description.schema import protocol_number
from .naming import chain_name, ipset_name

WRAP = "neutron-openvswi-"
FORWARD = WRAP + "FORWARD"
SG_CHAIN = WRAP + "sg-chain"
FALLBACK = WRAP + "sg-fallback"
PREROUTING = WRAP + "PREROUTING"
#: ICMPv6 types Neutron always lets in (MLD, neighbour discovery): ICMPV6_ALLOWED_INGRESS_TYPES
ICMPV6_INGRESS = (130, 131, 132, 135, 136, 143)


@dataclass(frozen=True)
class FilteredPort:
    """A port to filter on this host: the port and its tap device here."""

    port: Port
    tap: str
    mac: str
    ips: tuple
    bridge: str = ""  # the Linux bridge the tap is on: its zone rules match it too ("": the tap's alone)


@dataclass(frozen=True)
class RuleSet:
    """One host's filter: restore texts and how many rules each holds."""

    ipset: str
    iptables: str
    ip6tables: str
    rules_v4: int
    rules_v6: int
    sets: int


def host_rules(cloud: Cloud, ports: list[FilteredPort]) -> RuleSet:
    """The whole filter state of one host for *ports* (those with port security)."""
    filtered = [p for p in ports if p.port.port_security_enabled]
    texts, counts = {}, {}
    for version in (4, 6):
        lines = _table(cloud, filtered, version)
        texts[version] = "\n".join(lines) + "\n"
        counts[version] = sum(line.startswith("-A ") for line in lines)
    sets = _ipsets(cloud, filtered)
    return RuleSet("".join(sets), texts[4], texts[6], counts[4], counts[6], sum(s.startswith("create") for s in sets))


def _table(cloud: Cloud, ports: list[FilteredPort], version: int) -> list[str]:
    chains = [FORWARD, SG_CHAIN, FALLBACK]
    body = ["-A FORWARD -j " + FORWARD]
    for fp in ports:
        i, o, s = (chain_name(d, fp.port.id) for d in "ios")
        chains += [i, o, s]
        body += [
            f"-A {FORWARD} -m physdev --physdev-out {fp.tap} --physdev-is-bridged -j {SG_CHAIN}",
            f"-A {FORWARD} -m physdev --physdev-in {fp.tap} --physdev-is-bridged -j {SG_CHAIN}",
            f"-A {SG_CHAIN} -m physdev --physdev-out {fp.tap} --physdev-is-bridged -j {i}",
            f"-A {SG_CHAIN} -m physdev --physdev-in {fp.tap} --physdev-is-bridged -j {o}",
        ]
        body += [f"-A {i} {r}" for r in _ingress(cloud, fp, version)]
        body += [f"-A {o} {r}" for r in _egress(cloud, fp, version, s)]
        body += [f"-A {s} {r}" for r in _spoof(fp, version)]
    body += [f"-A {SG_CHAIN} -j ACCEPT", f"-A {FALLBACK} -j DROP"]
    return _zones(ports) + ["*filter"] + [f":{c} - [0:0]" for c in chains] + body + ["COMMIT"]


#: Neutron's first conntrack zone (``ip_conntrack.ZONE_START``).
ZONE_START = 4097


def _zones(ports: list[FilteredPort]) -> list[str]:
    """The raw table: each port's packets, and its bridge's, tracked in its network's zone, numbered from
    :data:`ZONE_START` in the order networks first appear (Neutron keys a zone by the network id and allocates
    the next one free)."""
    zones: dict[str, int] = {}
    body = []
    for fp in ports:
        zone = zones.setdefault(fp.port.network_id, ZONE_START + len(zones))
        matches = [f"-m physdev --physdev-in {fp.bridge}", f"-i {fp.bridge}"] if fp.bridge else []
        for match in [*matches, f"-m physdev --physdev-in {fp.tap}"]:
            body.append(f"-A {PREROUTING} {match} -j CT --zone {zone}")
    if not body:
        return []
    return ["*raw", f":{PREROUTING} - [0:0]", f"-A PREROUTING -j {PREROUTING}", *body, "COMMIT"]


def _stateful() -> list[str]:
    return ["-m state --state RELATED,ESTABLISHED -j RETURN", "-m state --state INVALID -j DROP"]


def _ingress(cloud: Cloud, fp: FilteredPort, version: int) -> list[str]:
    fixed = [f"-p ipv6-icmp -m icmp6 --icmpv6-type {t} -j RETURN" for t in ICMPV6_INGRESS] if version == 6 else []
    return fixed + _stateful() + _group_rules(cloud, fp.port, "ingress", version) + [f"-j {FALLBACK}"]


def _egress(cloud: Cloud, fp: FilteredPort, version: int, spoof: str) -> list[str]:
    if version == 4:
        fixed = [
            "-s 0.0.0.0/32 -d 255.255.255.255/32 -p udp -m udp --sport 68 --dport 67 -j RETURN",
            f"-j {spoof}",
            "-p udp -m udp --sport 68 --dport 67 -j RETURN",
            "-p udp -m udp --sport 67 --dport 68 -j DROP",
        ]
    else:
        fixed = [f"-s ::/128 -d ff02::/16 -p ipv6-icmp -m icmp6 --icmpv6-type {t} -j RETURN" for t in (131, 135, 143)]
        fixed += [f"-j {spoof}", "-p ipv6-icmp -m icmp6 --icmpv6-type 134 -j DROP"]
        fixed += [f"-p ipv6-icmp -m icmp6 --icmpv6-type {t} -j RETURN" for t in ICMPV6_INGRESS]
    return fixed + _stateful() + _group_rules(cloud, fp.port, "egress", version) + [f"-j {FALLBACK}"]


def _spoof(fp: FilteredPort, version: int) -> list[str]:
    """Anti-spoof: only the port's own addresses (and link-local, for IPv6) with its MAC."""
    allowed = [ip for ip in fp.ips if ip.version == version]
    allowed += [
        ipaddress.ip_network(str(pair.ip_address), strict=False)
        for pair in fp.port.allowed_address_pairs
        if pair.ip_address.version == version
    ]
    if version == 6:
        allowed.append(link_local(fp.mac))
    width = 32 if version == 4 else 128
    rules = [f"-s {_cidr(ip, width)} -m mac --mac-source {fp.mac.upper()} -j RETURN" for ip in allowed]
    return rules + ["-j DROP"]


def _cidr(ip, width: int) -> str:
    return str(ip) if "/" in str(ip) else f"{ip}/{width}"


def _group_rules(cloud: Cloud, port: Port, direction: str, version: int) -> list[str]:
    out = []
    for group in port.security_groups or ():
        for rule in cloud.security_group[group].rules:
            if rule.direction == direction and rule.ethertype == f"IPv{version}":
                converted = _convert(cloud, rule, version)
                if converted is not None:
                    out.append(converted)
    return out


def _convert(cloud: Cloud, rule: SecurityGroupRule, version: int):
    """One security-group rule as iptables arguments, or None (empty remote group)."""
    args = []
    side = "-s" if rule.direction == "ingress" else "-d"
    if rule.remote_network is not None:
        prefix = ipaddress.ip_network(str(rule.remote_network))  # re-parsed: only an address reaches the text
        if prefix.prefixlen > 0:
            args.append(f"{side} {prefix}")
    if rule.remote_group_id is not None:
        if not _members(cloud, rule.remote_group_id, version):
            return None
        flag = "src" if rule.direction == "ingress" else "dst"
        args.append(
            f"-m set --match-set {ipset_name(cloud.security_group[rule.remote_group_id].id, f'IPv{version}')} {flag}"
        )
    args += _protocol(rule, version)
    return " ".join(args + ["-j RETURN"])


def _protocol(rule: SecurityGroupRule, version: int) -> list[str]:
    """``-p`` as Neutron's driver writes it: none for any (or 0); tcp/udp with their ports; ICMP with its type
    and code; any other protocol by its number (iptables takes numbers; a name and its number are one rule)."""
    proto = rule.proto
    if proto == "any":
        return []
    if proto not in ("icmp", "icmpv6", "tcp", "udp"):
        return [f"-p {protocol_number(rule.protocol)}"]
    if proto in ("icmp", "icmpv6"):
        return [_icmp(rule, version)]
    lo, hi = (int(p) for p in rule.ports())
    if (lo, hi) == (0, 65535):
        return [f"-p {proto}"]
    return [f"-p {proto} -m {proto} --dport {lo}" + (f":{hi}" if hi != lo else "")]


def _icmp(rule: SecurityGroupRule, version: int) -> str:
    """ICMP, with the rule's type (``port_range_min``) and code (``port_range_max``) as Neutron's
    ``IptablesFirewallDriver._protocol_arg``/``_port_arg`` write them: ``--icmp-type 8`` or ``8/0``."""
    base = "-p icmp -m icmp --icmp-type" if version == 4 else "-p ipv6-icmp -m icmp6 --icmpv6-type"
    if rule.port_range_min is None:
        return "-p icmp" if version == 4 else "-p ipv6-icmp"
    code = f"/{int(rule.port_range_max)}" if rule.port_range_max is not None else ""
    return f"{base} {int(rule.port_range_min)}{code}"


def _members(cloud: Cloud, group: str, version: int) -> list:
    ips = []
    for member in cloud.group_members.get(group, ()):
        ips += [ipaddress.ip_address(str(ip)) for ip in member.ips if ip.version == version]
        ips += [
            ipaddress.ip_network(str(p.ip_address), strict=False)
            for p in member.allowed_address_pairs
            if p.ip_address.version == version
        ]
    return ips


def _ipsets(cloud: Cloud, ports: list[FilteredPort]) -> list[str]:
    groups = sorted(
        {
            r.remote_group_id
            for fp in ports
            for g in fp.port.security_groups or ()
            for r in cloud.security_group[g].rules
            if r.remote_group_id
        }
    )
    lines = []
    for group in groups:
        for version in (4, 6):
            members = _members(cloud, group, version)
            if members:
                name = ipset_name(cloud.security_group[group].id, f"IPv{version}")
                family = "inet" if version == 4 else "inet6"
                lines.append(f"create {name} hash:net family {family}\n")
                lines += [f"add {name} {ip}\n" for ip in members]
    return lines


def link_local(mac: str) -> ipaddress.IPv6Address:
    """The EUI-64 link-local address the kernel gives an interface with *mac*.

    >>> str(link_local("fa:16:3e:f9:17:75"))
    'fe80::f816:3eff:fef9:1775'
    """
    octets = [int(b, 16) for b in mac.split(":")]
    octets[0] ^= 0x02
    eui = octets[:3] + [0xFF, 0xFE] + octets[3:]
    return ipaddress.IPv6Address(bytes([0xFE, 0x80] + [0] * 6 + eui))
