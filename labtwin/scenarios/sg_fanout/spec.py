"""Where the members of a remote group live, who references it, and who joins (sg-fanout).

Shared by the sg-fanout model and its emulation (both must name the same
ports, hosts and addresses, so the twin can join their probes); it lives in
the description layer because neither backend may import the other.

The SG fan-out model runs on a :class:`Layout`: the group whose membership
changes (the *studied* group B: its own self-referencing rules, if any), every
host running an L2 agent, the existing member ports (name, host, IP), the
ports outside B whose groups' rules name B as ``remote_group_id`` (the
*referrers*: a join into B changes their filters too), each filtered port's
rules as they bear on B, the ports that join and the ones that leave, and one
port that neither is in B nor references it for the "blocked" probes.

Which ports must learn of a join into B, as Neutron 29 (and Train) decides it:
the server casts ``security_groups_member_updated([B])`` to every L2 agent
(neutron/api/rpc/handlers/securitygroups_rpc.py ``SecurityGroupAgentRpcApiMixin.
security_groups_member_updated``, ``fanout=True``; in Neutron 29 the OVS agent's push-notification cache
calls the same agent method from the port update it receives, ``SecurityGroupServerAPIShim.
_handle_sg_member_update``, with the port's groups); each agent puts in
``devices_to_refilter`` its local ports whose ``security_group_source_groups``
include B (neutron/agent/securitygroups_rpc.py ``_security_group_updated``), and
``security_group_source_groups`` is every ``remote_group_id`` of the rules of the
port's groups, any direction and ethertype (neutron/db/securitygroups_rpc_base.py
``security_group_info_for_ports`` / ``_select_remote_group_ids``; the same code in stable/train,
neutron 15.3.4). The server then
answers the refresh with B's member addresses (``_select_ips_for_remote_group``:
fixed IPs and allowed-address-pair IPs of B's ports), which the hybrid driver
keeps in one ipset per remote group and ethertype (neutron/agent/linux/
iptables_firewall.py ``_update_ipset_members``, ``_generate_ipset_rule_args``).
So B's own members are refreshed only when B's rules reference B. A layout is generated from
the knobs (:func:`generated_layout`) or read from a cloud
(:func:`layout_from_cloud`); the model never reads the knobs members/hosts
when a cloud is given.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from typing import Optional

from labtwin.description.schema import NEUTRON_DEFAULT_RULES, Cloud, SecurityGroup, SecurityGroupRule
from labtwin.scenarios.base import Design, Knob, ScenarioError, bounded

from .profiles import load_profile


@dataclass(frozen=True)
class Member:
    """A port in the group: its name, binding host and IPv4 address (as text), and the IPv4 addresses of its
    allowed address pairs, each with the port's own MAC (as Neutron holds them: ``10.66.0.1/32``)."""

    name: str
    host: str
    ip: str
    pairs: tuple[str, ...] = ()

    @property
    def addresses(self) -> tuple[str, ...]:
        """The addresses the port gives every group it is in, as Neutron's server answers
        ``security_group_info_for_devices`` (``_select_ips_for_remote_group``: its fixed IP, then its
        allowed-address-pair IPs as Neutron holds them)."""
        return (self.ip, *self.pairs)

    @property
    def pair_addresses(self) -> tuple[str, ...]:
        """The pairs' addresses as a data-plane entry names them (:func:`data_plane_address`)."""
        return tuple(data_plane_address(pair) for pair in self.pairs)


def host_pairs(pairs: tuple[str, ...]) -> list[str]:
    """The pairs that name one host (``10.66.0.1/32``), as bare addresses: the VIPs a port can hold.

    >>> host_pairs(("10.66.0.1/32", "10.9.0.0/24"))
    ['10.66.0.1']
    """
    return [str(net.network_address) for net in map(_network, pairs) if net.num_addresses == 1]


def _network(text: str):
    return ipaddress.ip_network(text, strict=False)


def vip_source(name: str, pairs: tuple[str, ...]) -> Optional[tuple[str, str]]:
    """(probe source name, address) for probes sent from port *name*'s first host pair (its VIP), or None.

    A remote-group rule admits a member's pair addresses under ML2/OVS (Neutron's server gives them as
    members); ML2/OVN's address set ``pg_<id>_ip4`` holds the fixed IPs only, so it does not.

    >>> vip_source("j-0001", ("10.9.0.0/24", "10.66.0.3/32"))
    ('j-0001@10.66.0.3', '10.66.0.3')
    """
    vips = host_pairs(pairs)
    return (f"{name}@{vips[0]}", vips[0]) if vips else None


def data_plane_address(text: str) -> str:
    """An address as an ipset entry or a flow's ``nw_src`` names it: a host route as the bare address, a wider
    network as its network (Neutron writes ``str(netaddr.IPNetwork(ip).cidr)``).

    >>> data_plane_address("10.66.0.1/32"), data_plane_address("10.66.0.7/29"), data_plane_address("10.64.0.10")
    ('10.66.0.1', '10.66.0.0/29', '10.64.0.10')
    """
    net = _network(text)
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def group_addresses(members) -> frozenset:
    """Every address the group's members give its remote-group rules (fixed and pair addresses, as the data
    plane names them): an ipset's entries, the OVS firewall's dimension-1 flows."""
    return frozenset(a for m in members for a in (m.ip, *map(data_plane_address, m.pairs)))


@dataclass(frozen=True)
class GroupRules:
    """A filtered port's IPv4 rules as they bear on the studied group B, and its IPv6 ones (only Neutron's OVS
    firewall puts those in an IPv4 port's counted filter): ``remote`` rules name B as remote group, ``other``
    rules name no remote group; ``other_remote`` rules name another remote group, whose members (``other_entries``
    addresses over those rules, the port's own left out, as the iptables driver expands them) do not change
    during the run. The rules are those of every group the port is in (Neutron merges them per port)."""

    remote: int
    other: int
    remote_v6: int = 0
    other_v6: int = 0
    other_remote: int = 0
    other_entries: int = 0

    @property
    def watches(self) -> bool:
        """Does a membership change of B refilter the port (B in its ``security_group_source_groups``)?"""
        return bool(self.remote or self.remote_v6)


@dataclass(frozen=True)
class Layout:
    #: the studied group B: the group whose membership changes (the joins join it, the leaves leave it)
    group: str
    #: rules of the group whose remote_group_id is the group itself (IPv4)
    remote_rules: int
    #: the group's other IPv4 rules (each one more rule/flow in every member's IPv4 filter)
    other_rules: int
    #: the protocol the self-referencing rule admits, as a probe flow: icmp, tcp:22 ...
    probe: str
    hosts: tuple[str, ...]
    members: tuple[Member, ...]
    joins: tuple[Member, ...]
    leaves: tuple[str, ...]
    outsider: Optional[Member]
    source: str
    note: str = ""
    #: the group's rules as Neutron holds them (what control=neutron's server gives the agents)
    rules: tuple[SecurityGroupRule, ...] = ()
    #: ports outside the group whose groups' rules reference it (they are refreshed on every change)
    referrers: tuple[Member, ...] = ()
    #: port name -> (its rules as they bear on the group, the flow its first ingress rule from the group admits),
    #: for every port of a topology; a port not listed (every generated one, every join) has the group's own
    port_rules: tuple[tuple[str, GroupRules, str], ...] = ()
    #: a joining port's rules (the group's alone, rules naming other groups expanded over their members);
    #: None: those of remote_rules / other_rules / ipv6_rules (a generated layout)
    join_rules: Optional[GroupRules] = None

    @functools.cached_property  # asked per port per agent iteration: 6,000 times in a 1,000-member run
    def own_rules(self) -> GroupRules:
        """The group's own rules (what a joining port, in the group alone, is filtered by)."""
        if self.join_rules is not None:
            return self.join_rules
        return GroupRules(self.remote_rules, self.other_rules, *self.ipv6_rules)

    def rules_of(self, port: str) -> GroupRules:
        """*port*'s rules as they bear on the group (:class:`GroupRules`)."""
        found = _by_port(self.port_rules).get(port)
        return found[0] if found is not None else self.own_rules

    def probe_of(self, port: str) -> str:
        """The flow *port*'s first ingress rule from the group admits (``icmp``, ``tcp:22``; "" if none)."""
        found = _by_port(self.port_rules).get(port)
        if found is not None:
            return found[1]
        return self.probe if self.self_referencing else ""

    @property
    def self_referencing(self) -> bool:
        """Do the group's own rules reference it (so its members, and every joining port, are refreshed)?"""
        return self.own_rules.watches

    @property
    def watchers(self) -> tuple[Member, ...]:
        """The existing ports whose filters a change of the group refreshes: members that reference it, then
        the referrers."""
        return tuple(m for m in self.members if self.rules_of(m.name).watches) + self.referrers

    @property
    def cross_group(self) -> bool:
        """Does anyone outside the group reference it, or does the group not reference itself?"""
        return bool(self.referrers) or not self.self_referencing

    @functools.cached_property
    def ipv6_rules(self) -> tuple[int, int]:
        """(remote-group, other) IPv6 rules of the group: Neutron's OVS firewall writes flows for them into
        every port's filter, IPv4 ports included (the hybrid driver writes them into ip6tables, uncounted)."""
        ipv6 = [r for r in self.rules if r.ethertype == "IPv6"]
        remote = sum(1 for r in ipv6 if r.remote_group_id == self.group)
        return remote, len(ipv6) - remote


#: id(a layout's port_rules) -> (that tuple, its index by port name): looked up per port per agent iteration, so
#: neither rebuilt nor re-hashed (a tuple does not cache its hash); the tuple is kept, so its id is not reused
_BY_PORT: dict[int, tuple[tuple, dict]] = {}


def _by_port(port_rules: tuple) -> dict:
    """A layout's ``port_rules`` by port name (built once per layout: a Layout is frozen, its fields are not)."""
    seen = _BY_PORT.get(id(port_rules))
    if seen is None or seen[0] is not port_rules:
        if len(_BY_PORT) > 64:
            _BY_PORT.clear()
        seen = _BY_PORT[id(port_rules)] = (port_rules, {name: (r, probe) for name, r, probe in port_rules})
    return seen[1]


#: The first generated fixed address (as an integer): a /14 (room for 262k ports) from 10.64.0.0, first at .10.
_FIXED_FIRST = int(ipaddress.IPv4Address("10.64.0.0")) + 10


def _ip(index: int, first: int = _FIXED_FIRST) -> str:
    """The fixed address of the port at *index*, counting from *first* (dotted by hand: a sweep makes
    millions of them)."""
    n = first + index
    return f"{n >> 24}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


#: Where generated allowed-address-pair addresses come from: the top half of the layout's /14 (10.66.0.0/15),
#: so a pair never takes a port's fixed address and a VIP answers ARP on the same subnet.
PAIR_BASE = "10.66.0.0"


def _pairs(port_index: int, count: int) -> tuple[str, ...]:
    """*count* distinct /32 pair addresses of the port at *port_index* (as Neutron holds them)."""
    if not count:
        return ()
    first = ipaddress.IPv4Address(PAIR_BASE) + 1 + port_index * count
    return tuple(f"{first + k}/32" for k in range(count))


def _placement(count: int, hosts: tuple[str, ...], placement: str, start: int = 0) -> list[str]:
    """Host of each of *count* ports: ``packed`` all on the first host, ``spread`` round-robin."""
    if placement == "packed":
        return [hosts[0]] * count
    return [hosts[(start + i) % len(hosts)] for i in range(count)]


@functools.lru_cache(maxsize=64)  # a Layout is frozen: a sweep's seeds of one size share it
def generated_layout(
    members: int, hosts: int, placement: str, joins: int, leaves: int, address_pairs: int = 0
) -> Layout:
    """A layout from the knobs: compute-1..N, Neutron's default-group rule (ingress any from itself).

    ``packed`` puts every existing member and every joining port on compute-1
    (the other hosts still run an agent and still get every fanout);
    ``spread`` deals members round-robin and the joins continue the deal.
    Leaves remove the most recently created existing members. Every member and
    joining port has *address_pairs* allowed address pairs (/32s from
    :data:`PAIR_BASE`, with the port's own MAC); the outsider has none.
    """
    names = tuple(f"compute-{i + 1}" for i in range(max(1, hosts)))
    where = _placement(members, names, placement)
    k = address_pairs
    existing = tuple(Member(f"m-{i + 1:04d}", where[i], _ip(i), _pairs(i, k)) for i in range(members))
    join_hosts = _placement(joins, names, placement, start=members)
    new = tuple(Member(f"j-{i + 1:04d}", join_hosts[i], _ip(members + i), _pairs(members + i, k)) for i in range(joins))
    gone = tuple(m.name for m in existing[::-1][: min(leaves, members)])
    outsider = Member("outsider", names[0], _ip(members + joins))
    return Layout("default", 1, 1, "icmp", names, existing, new, gone, outsider, "generated", rules=default_rules())


def default_rules() -> tuple[SecurityGroupRule, ...]:
    """Neutron's ``default`` group as Neutron creates it: egress anywhere and ingress from itself, IPv4 and IPv6."""
    return tuple(r.for_group("default") for r in NEUTRON_DEFAULT_RULES if r.used_in_default_sg)


class GroupChoiceError(ScenarioError):
    """The ``group`` knob names no group of the cloud, names one no rule references, or is needed and not given:
    the message names the field (``security_groups[i]``) and what to set."""


def referenced_groups(cloud: Cloud) -> list[SecurityGroup]:
    """Groups some group's rule names as ``remote_group_id``, in file order (a join into one changes filters)."""
    named = {ref for g in cloud.security_groups for ref in g.remote_groups}
    return [g for g in cloud.security_groups if g.name in named]


def _field(cloud: Cloud, group: SecurityGroup) -> str:
    """Where *group* is in the file: ``security_groups[2] (cluster)``."""
    return f"security_groups[{cloud.security_groups.index(group)}] ({group.name})"


def studied_group(cloud: Cloud, name: str = "") -> SecurityGroup:
    r"""The group whose membership the run changes: the ``group`` knob's, or, when it is empty, the
    self-referencing group with the most members (as before there was a knob), else the one group other
    groups reference. A knob naming no group, or a group no rule references, and a choice with several equal
    candidates, are :class:`GroupChoiceError` naming the fields.

    >>> from labtwin.description import parse_cloud
    >>> cloud = parse_cloud('''
    ... name: two
    ... hosts: [{name: h1, role: compute}]
    ... networks: [{name: n}]
    ... subnets: [{name: s, network_id: n, cidr: 10.9.0.0/24}]
    ... security_groups:
    ...   - {name: web, rules: [{direction: ingress, ethertype: IPv4, remote_group_id: db}]}
    ...   - {name: db, rules: [{direction: egress, ethertype: IPv4}]}
    ... ports: [{name: w1, network_id: n, binding:host_id: h1, security_groups: [web]}]
    ... ''')
    >>> studied_group(cloud).name
    'db'
    >>> try:
    ...     studied_group(cloud, "web")
    ... except GroupChoiceError as exc:
    ...     print(str(exc).replace(", so", ",\nso").replace("; ", ";\n"))
    knob group=web: no rule of any group names security_groups[0] (web) as remote_group_id,
    so a port joining it changes no other port's filter;
    groups referenced: security_groups[1] (db), security_groups[2] (default)
    """
    referenced = referenced_groups(cloud)
    choices = ", ".join(_field(cloud, g) for g in referenced) or "none"
    if name:
        group = cloud.security_group.get(name)
        if group is None:
            known = ", ".join(g.name for g in cloud.security_groups) or "none"
            raise GroupChoiceError(f"knob group={name}: cloud {cloud.name} has no security group {name!r} ({known})")
        if group not in referenced:
            raise GroupChoiceError(
                f"knob group={name}: no rule of any group names {_field(cloud, group)} as remote_group_id, so a "
                f"port joining it changes no other port's filter; groups referenced: {choices}"
            )
        return group
    selfish = [g for g in referenced if g.name in g.remote_groups and cloud.group_members[g.name]]
    if selfish:
        most = max(len(cloud.group_members[g.name]) for g in selfish)
        top = [g for g in selfish if len(cloud.group_members[g.name]) == most]
        if len(top) == 1:
            return top[0]
        raise GroupChoiceError(
            f"cloud {cloud.name}: {', '.join(_field(cloud, g) for g in top)} all reference themselves with "
            f"{most} members each: say which one a port joins with the knob group (--set group=NAME)"
        )
    used = [g for g in referenced if any(cloud.group_members[r.name] for r in _referrers_of(cloud, g))]
    if len(used) == 1:
        return used[0]
    if not used:
        raise GroupChoiceError(
            f"cloud {cloud.name}: no security group is named as remote_group_id by a group with member ports "
            f"(groups referenced: {choices})"
        )
    raise GroupChoiceError(
        f"cloud {cloud.name}: several groups are referenced by other groups' rules: "
        f"{', '.join(_field(cloud, g) for g in used)}: say which one a port joins with the knob group "
        "(--set group=NAME)"
    )


def _referrers_of(cloud: Cloud, group: SecurityGroup) -> list[SecurityGroup]:
    return [g for g in cloud.security_groups if group.name in g.remote_groups]


def _probe_of_rules(rules, group: str) -> str:
    """The flow the first ingress rule naming *group* as remote group admits (``any`` probes with icmp); ""."""
    for rule in rules:
        if rule.remote_group_id == group and rule.direction == "ingress":
            if rule.proto in ("tcp", "udp"):
                return f"{rule.proto}:{rule.ports()[0] or 1}"
            return "icmp" if rule.proto in ("any", "icmp", "icmpv6") else rule.proto
    return ""


def probe_of(group: SecurityGroup, remote: str = "") -> str:
    """The flow the group's first ingress rule from *remote* (default: the group itself) admits (``any`` probes
    with icmp; icmp when it has none)."""
    return _probe_of_rules(group.rules, remote or group.name) or "icmp"


def port_rules(cloud: Cloud, port, group: str) -> tuple[GroupRules, str]:
    """*port*'s rules (of all its groups, as Neutron merges them per port) as they bear on *group*, and the flow
    its first ingress rule from *group* admits ("" when none).

    ``other_entries``: what the iptables driver expands the rules naming another remote group C into, per rule
    C's member addresses (fixed and pair IPv4 addresses) less the port's own fixed address
    (``_expand_sg_rule_with_remote_ips``); those groups do not change during the run.
    """
    rules = [r for g in port.security_groups or () for r in cloud.security_group[g].rules]
    return rules_bearing_on(cloud, rules, group, _ipv4(port.ips)), _probe_of_rules(rules, group)


def rules_bearing_on(cloud: Cloud, rules: list, group: str, own: str = "") -> GroupRules:
    """*rules* (a port's, whose fixed IPv4 address is *own*) counted as they bear on *group* (:func:`port_rules`)."""
    v4 = [r for r in rules if r.ethertype == "IPv4"]
    v6 = [r for r in rules if r.ethertype == "IPv6"]
    remote = sum(1 for r in v4 if r.remote_group_id == group)
    other_remote = [r for r in v4 if r.remote_group_id and r.remote_group_id != group]
    entries = 0
    for rule in other_remote:
        members = [
            Member(p.name, p.host or "", _ipv4(p.ips), _ipv4_pairs(cloud, p))
            for p in cloud.group_members[rule.remote_group_id]
            if _ipv4(p.ips)
        ]
        entries += len(group_addresses(members) - {own})
    remote_v6 = sum(1 for r in v6 if r.remote_group_id == group)
    return GroupRules(
        remote, len(v4) - remote - len(other_remote), remote_v6, len(v6) - remote_v6, len(other_remote), entries
    )


def layout_from_cloud(cloud: Cloud, placement: str, joins: int, leaves: int, group_name: str = "") -> Layout:
    """The layout a topology file gives: its studied group (:func:`studied_group`), its members, the ports
    outside it whose groups reference it, every host.

    Joins land on the host with the most members (``packed``) or round-robin
    over compute hosts (``spread``); they take fresh addresses after the
    highest IPv4 address in the cloud. A joining port is in the group alone.
    """
    group = studied_group(cloud, group_name)
    ported = [p for p in cloud.group_members[group.name] if p.host and _ipv4(p.ips)]
    members = tuple(Member(p.name, p.host, _ipv4(p.ips), _ipv4_pairs(cloud, p)) for p in ported if p.host)
    bound = [p for p in cloud.ports if p.host and _ipv4(p.ips) and p.port_security_enabled]
    outside = [p for p in bound if group.name not in (p.security_groups or ())]
    rules_of = {p.name: port_rules(cloud, p, group.name) for p in bound}
    referrers = tuple(
        Member(p.name, p.host or "", _ipv4(p.ips), _ipv4_pairs(cloud, p))
        for p in outside
        if rules_of[p.name][0].watches
    )
    hosts = tuple(h.name for h in cloud.hosts)
    computes = tuple(h.name for h in cloud.hosts if h.role == "compute") or hosts
    if placement == "packed":
        busiest = max(computes, key=lambda h: (sum(m.host == h for m in members), -computes.index(h)))
        join_hosts = [busiest] * joins
    else:
        join_hosts = _placement(joins, computes, "spread", start=len(members))
    top = max((int(ipaddress.IPv4Address(ip)) for p in cloud.ports for ip in map(str, p.ips) if "." in ip), default=0)
    first = top + 1 if top else _FIXED_FIRST
    new = tuple(Member(f"j-{i + 1:04d}", join_hosts[i], _ip(i, first)) for i in range(joins))
    gone = tuple(m.name for m in members[::-1][: min(leaves, len(members))])
    # the blocked probes' port: in no group the studied group's rules admit, and not referencing the group
    admitted = set(group.remote_groups)
    outsiders = [
        p for p in outside if not rules_of[p.name][0].watches and not admitted & set(p.security_groups or ()) and p.host
    ]
    outsider = next((Member(p.name, p.host or "", _ipv4(p.ips)) for p in outsiders), None)
    remote = sum(1 for r in group.rules if r.remote_group_id == group.name and r.ethertype == "IPv4")
    # The IPv4 filter only (the members are IPv4 ports): Neutron writes the IPv6 rules, Neutron's default
    # egress and ingress-from-self among them, into ip6tables chains, which neither side counts (stated).
    ipv4_rules = sum(1 for r in group.rules if r.ethertype == "IPv4")
    note = (
        f"group {group.name} and hosts taken from the topology ({len(members)} members on "
        f"{len({m.host for m in members})} of {len(hosts)} hosts"
        + (
            f"; {len(referrers)} ports of other groups reference it, on {len({m.host for m in referrers})} hosts"
            if referrers
            else ""
        )
        + "); knobs members/hosts ignored"
    )
    return Layout(
        group.name,
        remote,
        ipv4_rules - remote,
        probe_of(group) if group.name in group.remote_groups else _first_probe(rules_of, referrers),
        hosts,
        members,
        new,
        gone,
        outsider,
        f"topology:{cloud.name}",
        note,
        group.rules,
        referrers,
        tuple((name, rules, flow) for name, (rules, flow) in rules_of.items()),
        rules_bearing_on(cloud, list(group.rules), group.name),
    )


def _first_probe(rules_of: dict, referrers) -> str:
    """The probe flow of a group that does not reference itself: its first referrer's (icmp when none says)."""
    return next((rules_of[m.name][1] for m in referrers if rules_of[m.name][1]), "icmp")


def layout_summary(layout: Layout) -> dict:
    """The summary keys every run of a layout starts with, model and emulation alike."""
    return {
        "group": layout.group,
        "layout": layout.source,
        "members": len(layout.members),
        "hosts": len(layout.hosts),
        "joins": len(layout.joins),
        "leaves": len(layout.leaves),
        # ports of other groups whose rules reference the group (a cross-group layout only)
        **({"referrers": len(layout.referrers)} if layout.referrers else {}),
    }


def _ipv4(ips) -> str:
    return next((str(ip) for ip in ips if ip.version == 4), "")


def _ipv4_pairs(cloud: Cloud, port) -> tuple[str, ...]:
    """The port's IPv4 allowed address pairs as Neutron holds them (``10.66.0.1/32``; host bits kept).

    A pair with a MAC of its own (a VRRP virtual MAC) is refused, naming the port: Neutron's OVS firewall
    then writes flows per extra MAC (tables 60, 71, 73, 81) that sg-fanout does not count yet.
    """
    out = []
    for pair in port.allowed_address_pairs:
        if pair.mac_address is not None and pair.mac_address != port.mac_address:
            raise ValueError(
                f"cloud {cloud.name}: port {port.name}: allowed address pair {pair.written} names MAC "
                f"{pair.mac_address}; sg-fanout counts pairs that use the port's own MAC only"
            )
        net = ipaddress.ip_interface(pair.written)  # a bare address is a host route (/32)
        if net.version == 4:
            out.append(f"{net.ip}/{net.network.prefixlen}")
    return tuple(out)


def layout_for(cloud: Optional[Cloud], design: SgFanoutDesign) -> Layout:
    """The layout both backends study: the cloud's group and hosts when a topology is given, else one
    generated from the knobs."""
    if cloud is not None:
        return layout_from_cloud(cloud, design.placement, design.joins, design.leaves, design.group)
    if design.group not in ("", "default"):
        raise GroupChoiceError(
            f"knob group={design.group}: the generated cloud has Neutron's default group only (give a topology)"
        )
    return generated_layout(
        design.members, design.hosts, design.placement, design.joins, design.leaves, design.address_pairs
    )


# --- the design knobs: defaults and bounds, one home for the Scenario, the model and the emulation -------

#: The firewall strategies an L2 agent applies: three of Neutron's, and the PTG's per-group subtable proposal ...
AGENT_FIREWALLS = ("iptables", "ipset", "ovs", "subtable")
#: ... and ML2/OVN's own (port groups, address sets; ``control=ovn``: real OVN, written by Neutron's driver).
FIREWALLS = (*AGENT_FIREWALLS, "ovn")
#: Who programs the emulated hosts: labtwin's own agent, Neutron's own agent code, or real OVN (written by
#: Neutron's own ML2/OVN driver).
CONTROLS = ("labtwin", "neutron", "ovn")
#: The firewalls Neutron's agent code runs here (the OVS firewall needs a private OVS: not yet; the subtable
#: is a proposal, so only labtwin's agent has it).
NEUTRON_FIREWALLS = ("iptables", "ipset", "ovs")
#: Each join is timed this many times (leave and rejoin) and the fastest kept, in calibrations and twins alike.
TIMING_REPEATS = 7


def cost_profile(text: str) -> str:
    """Check the ``profile`` knob up front: a built-in name, or a profile JSON file whose costs are numbers >= 0.

    Kept as given (the run records the name or path); a bad one is a knob error,
    not a traceback halfway through the model.
    """
    try:
        profile = load_profile(text)
    except KeyError as exc:
        raise ValueError(f"unknown base profile {exc.args[0]!r}") from None
    except (OSError, TypeError) as exc:  # an unreadable file; JSON that is not an object
        raise ValueError(f"{type(exc).__name__}: {exc}") from None
    bad = [
        k
        for k, v in profile.to_dict().items()
        if k != "name" and v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0)
    ]
    if bad:
        raise ValueError(f"costs must be numbers >= 0: {', '.join(bad)}")
    return text


cost_profile.__name__ = "cost profile"

KNOBS: tuple[Knob, ...] = (
    Knob(
        "firewall",
        "iptables",
        "iptables (hybrid, per-member rules, no ipset) | ipset | ovs (native, conjunction) "
        "| subtable (PTG proposal: one table per remote group per host) | ovn (ML2/OVN: port groups and address "
        "sets; implies control=ovn)",
        choices=FIREWALLS,
    ),
    Knob("members", 20, "existing members of the group (generated cloud only)", kind=bounded(int, 1)),
    Knob("hosts", 2, "compute hosts, each running an L2 agent (generated cloud only)", kind=bounded(int, 1)),
    Knob(
        "placement",
        "spread",
        "packed: members and joins on the first host; spread: round-robin over hosts",
        choices=("packed", "spread"),
    ),
    Knob(
        "address_pairs",
        0,
        "allowed address pairs per member and per joining port (generated cloud only; a topology's ports keep "
        "their own): IPv4 /32s with the port's MAC. Neutron's server gives them to remote groups as members, so "
        "each one is one more rule per referencing port under iptables, one more ipset entry, one more pair of "
        "conjunction flows; ML2/OVN's address sets leave them out",
        kind=bounded(int, 0, 64),
    ),
    Knob("joins", 1, "ports that join the group, one API call per join_interval_s", kind=bounded(int, 0)),
    Knob("leaves", 0, "existing members deleted after the joins", kind=bounded(int, 0)),
    Knob(
        "timing_repeats",
        TIMING_REPEATS,
        "emulation only: each join is timed this many times (the port leaves and rejoins); "
        "its time is the fastest (interference only adds time), counts and verdicts come from the first. "
        "The model's join is deterministic and ignores it; under control=neutron only the first join is timed "
        "(a rejoin would reuse the deleted port's tap, which Neutron leaves trusted)",
        kind=bounded(int, 1, 50),
    ),
    Knob(
        "profile",
        "train-2019",
        "cost profile: a name (train-2019; neutron-29: the same deployment, the apply measured from Neutron 29's "
        "own code) or a profile JSON file (labtwin calibrate)",
        kind=cost_profile,
    ),
    Knob(
        "control",
        "labtwin",
        "who programs each emulated host's firewall: labtwin (labtwin's own agent, every firewall, rewrites "
        "refreshed chains) | neutron (Neutron 29's own SecurityGroupAgentRpc with the hybrid iptables driver, "
        "firewall=iptables|ipset, writes a diff; or with the OVS firewall on each host's own private OVS, "
        "firewall=ovs) | ovn (real OVN: Neutron 29's own ML2/OVN driver writes the NB, OVN 23.03's northd and a "
        "chassis per host do the rest; firewall=ovn, implied by it). The model counts what the chosen agent writes to "
        "the kernel, or under ovn what each change writes to the NB, the SB and every chassis's OpenFlow",
        choices=CONTROLS,
    ),
    Knob(
        "group",
        "",
        "topology only: the security group a port joins (the one whose membership changes), named as "
        "remote_group_id by some group's rules (its own, or other groups': their ports are refreshed too). "
        "Empty: the self-referencing group with the most members, else the one group other groups reference; "
        "several equal candidates are an error naming them",
    ),
)


class SgFanoutDesign(Design):
    """The design of the sg-fanout scenario: one typed, frozen value per knob
    (parsed and bounds-checked once, by :data:`KNOBS`)."""

    KNOBS = KNOBS

    firewall: str
    members: int
    hosts: int
    placement: str
    address_pairs: int
    joins: int
    leaves: int
    timing_repeats: int
    profile: str
    control: str
    group: str

    @classmethod
    def implied(cls, values: dict, given: set) -> dict:
        """``firewall=ovn`` is ML2/OVN's own firewall, so it implies ``control=ovn``, and ``control=ovn``
        has no other firewall; a contradicting pair set together is refused."""
        return cls.imply_each_other(
            values,
            given,
            ("firewall", "ovn"),
            ("control", "ovn"),
            "firewall=ovn is ML2/OVN's own firewall (control=ovn); control={value} runs an L2 agent's firewall: "
            + ", ".join(AGENT_FIREWALLS),
            "control=ovn has ML2/OVN's own firewall only (firewall=ovn), not firewall={value}",
        )
