"""Labtwin's answers beside Neutron's, object by object: where they differ, Neutron is right.

Compared, per object in the file:

- **ports**: created or refused (and with which Neutron exception); ``ip_allocation``
  (``immediate``, ``deferred`` until bound on a routed network, ``none``); how many addresses on
  which subnets; the addresses the file names, and SLAAC/EUI-64 addresses (made from the MAC,
  which the oracle gives Neutron). Pool addresses Neutron chooses are not compared one by
  one: its IPAM picks at random among the first free ones, labtwin takes the lowest (stated in
  :mod:`labtwin.description.resolve`);
- **floating IPs**: created or refused;
- **routers**: created or refused, and whether the gateway takes an address on the external
  network; each interface added or refused;
- **subnets**: the gateway and allocation pools (Neutron's defaults where the file gives none);
- **the ports Neutron makes by itself**: per network its DHCP ports, per router its SNAT ports, per host
  its floating-IP agent gateway ports, each on which subnets;
- **networks, segments, subnets, security groups and rules**: labtwin accepted them (the file
  loaded), so Neutron must too: a refusal is a difference; each group's rules as Neutron holds them.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Optional

from labtwin.description.errors import Problem, field_path
from labtwin.description.loader import Declared
from labtwin.description.neutron_ports import DHCP_OWNER, METADATA_OWNER, SNAT_OWNER
from labtwin.description.schema import Cloud, Port

from .load import Loc, NeutronLoad


@dataclass(frozen=True)
class Difference:
    """One object where labtwin and Neutron answer differently."""

    loc: Loc
    name: str
    what: str
    labtwin: str
    neutron: str

    def __str__(self) -> str:
        return f"{field_path(self.loc)} ({self.name}): {self.what}: labtwin {self.labtwin}; Neutron {self.neutron}"


@dataclass(frozen=True)
class Outcome:
    """One side's answer for a port: refused (with the exception), or its allocation and addresses."""

    refused: str = ""  # Neutron's exception name ('' when created)
    ip_allocation: str = ""
    addresses: tuple[tuple[str, str], ...] = ()  # (subnet name, address), sorted
    groups: tuple[str, ...] = ()  # security group names, sorted

    def subnets(self) -> list[str]:
        return sorted(subnet for subnet, _ in self.addresses)

    def describe(self) -> str:
        if self.refused:
            return f"refuses it ({self.refused})"
        where = ", ".join(f"{ip} on {subnet}" for subnet, ip in self.addresses) or "no address"
        return f"gives {where} (ip_allocation {self.ip_allocation}; groups {', '.join(self.groups) or 'none'})"


def differences(declared: Declared, load: NeutronLoad) -> list[Difference]:
    """Every object where labtwin's answer (:class:`Declared`) and Neutron's (*load*) differ."""
    if declared.resolved is None:
        return refusal_differences(declared, load)
    found = []
    refusals = {p.loc[:2]: p for p in declared.problems}
    exact = _eui64_subnets(declared.cloud)
    for i, port in enumerate(declared.cloud.ports):
        ours = labtwin_port(declared.resolved, i, refusals.get(("ports", i)))
        theirs = neutron_port(load, ("ports", i))
        found += _port_differences(i, port, ours, theirs, exact)
    for i, fip in enumerate(declared.cloud.floatingips):
        ours_refused = _exception_of(refusals.get(("floatingips", i)))
        answer = load.answers[("floatingips", i)]
        if ours_refused != answer.error:  # both accept (''), or both refuse with one exception
            said = f"refuses it ({ours_refused})" if ours_refused else "gives an address"
            found.append(Difference(("floatingips", i), fip.port_id, "floating IP", said, _neutron_says(answer)))
    for i, host in enumerate(declared.cloud.hosts):  # each L3 agent's fg- port request (.l3_agent)
        ours_refused = _exception_of(refusals.get(("hosts", i)))
        asked = load.answers.get(("hosts", i))
        if asked is not None and ours_refused != asked.error:
            said = f"refuses it ({ours_refused})" if ours_refused else "gives its agent gateway ports"
            found.append(Difference(("hosts", i), host.name, "L3 agent's fg- port", said, _neutron_says(asked)))
    found += _router_differences(declared, load)
    found += _subnet_differences(declared.cloud, load)
    found += _refused_by_neutron_only(declared.cloud, load)
    found += _rule_differences(declared, load)
    found += _network_port_differences(declared, load)
    return found


def refusal_differences(declared: Declared, load: NeutronLoad) -> list[Difference]:
    """A file labtwin's consistency checks refuse: each refused object must be refused by Neutron too, with
    one of the exceptions labtwin names for it. Objects labtwin accepts are not compared here: Neutron's
    answers to them may follow from the refused ones (a port on a subnet that was never created)."""
    named: dict[Loc, set[str]] = {}
    for problem in declared.problems:
        named.setdefault(_object_loc(problem.loc), set()).add(_exception_of(problem))
    found = []
    for loc, exceptions in named.items():
        answer = _answer_for(declared.cloud, load, loc)
        if answer is None or "missing-" in answer.message:
            continue  # not asked by itself (a physnet), or asked with an object Neutron never created
        exceptions.discard("refused")
        if answer.ok or (exceptions and answer.error not in exceptions):
            said = f"refuses it ({', '.join(sorted(exceptions))})" if exceptions else "refuses it"
            name = _object_name(declared.cloud, loc)
            found.append(Difference(loc, name, _KIND_ALL.get(str(loc[0]), str(loc[0])), said, _neutron_says(answer)))
    return found


def _answer_for(cloud: Cloud, load: NeutronLoad, loc: Loc) -> Any:
    """Neutron's answer about the object at *loc*; a network's first segment is created with the network."""
    answer = load.answers.get(loc) or load.answers.get(loc[:2])
    if answer is None and loc[0] == "segments":
        network = cloud.segments[int(loc[1])].network_id
        index = next((i for i, n in enumerate(cloud.networks) if n.name == network), None)
        answer = load.answers.get(("networks", index)) if index is not None else None
    return answer


def _object_loc(loc: Loc) -> Loc:
    """The object a problem is about: ``ports[3]``, or a router's interface or a group's rule."""
    return loc[:4] if len(loc) >= 4 and loc[2] in ("rules", "interfaces") else loc[:2]


def _object_name(cloud: Cloud, loc: Loc) -> str:
    items = getattr(cloud, str(loc[0]), ())
    index = loc[1] if len(loc) > 1 and isinstance(loc[1], int) and loc[1] < len(items) else None
    return "" if index is None else str(getattr(items[index], "name", None) or getattr(items[index], "port_id", ""))


def labtwin_port(resolved: Cloud, i: int, problem: Optional[Problem]) -> Outcome:
    """Labtwin's answer for port *i* of a file that passed the checks: its refusal, else what it resolved."""
    if problem is not None:
        return Outcome(refused=_exception_of(problem) or "refused")
    port = resolved.ports[i]
    addresses = tuple(sorted((f.subnet_id, str(f.ip_address)) for f in port.fixed_ips))
    groups = tuple(sorted(port.security_groups or ()))
    return Outcome(ip_allocation=_labtwin_allocation(resolved, port), addresses=addresses, groups=groups)


def neutron_port(load: NeutronLoad, loc: Loc) -> Outcome:
    answer = load.answers[loc]
    if not answer.ok:
        return Outcome(refused=answer.error)
    port = answer.body["port"]
    addresses = tuple(
        sorted((load.names.get(f["subnet_id"], f["subnet_id"]), f["ip_address"]) for f in port["fixed_ips"])
    )
    groups = tuple(sorted(load.names.get(g, g) for g in port.get("security_groups") or ()))
    return Outcome(ip_allocation=port.get("ip_allocation") or "", addresses=addresses, groups=groups)


def _labtwin_allocation(cloud: Cloud, port: Port) -> str:
    """``ip_allocation`` as Neutron defines it: ``deferred`` for an unbound port on a routed network
    that got no address, ``none`` for a port with no address and nothing to wait for, else ``immediate``."""
    if port.fixed_ips:
        return "immediate"
    routed = any(s.segment_id for s in cloud.subnets if s.network_id == port.network_id)
    return "deferred" if routed and port.host is None else "none"


def _eui64_subnets(cloud: Cloud) -> set[str]:
    """Subnets whose addresses are made from the MAC (the oracle gives Neutron labtwin's MACs): compared exactly."""
    return {s.name for s in cloud.subnets if s.auto_address}


def _port_differences(i: int, port: Port, ours: Outcome, theirs: Outcome, exact: set[str]) -> list[Difference]:
    loc = ("ports", i)
    if ours.refused or theirs.refused:
        if ours.refused != theirs.refused:
            return [Difference(loc, port.name, "port", ours.describe(), theirs.describe())]
        return []
    named = {(f.subnet_id, str(f.ip_address)) for f in port.fixed_ips if f.ip_address is not None}
    named |= {(subnet, ip) for subnet, ip in ours.addresses if subnet in exact}
    same = (
        ours.ip_allocation == theirs.ip_allocation
        and ours.subnets() == theirs.subnets()
        and named <= set(theirs.addresses)
        and ours.groups == theirs.groups
    )
    return [] if same else [Difference(loc, port.name, "port", ours.describe(), theirs.describe())]


def _router_differences(declared: Declared, load: NeutronLoad) -> list[Difference]:
    found = []
    for i, router in enumerate(declared.cloud.routers):
        answer = load.answers[("routers", i)]
        if not answer.ok:
            found.append(Difference(("routers", i), router.name, "router", "creates it", _neutron_says(answer)))
            continue
        found += _gateway_difference(declared, load, i)
        for j, subnet in enumerate(router.interfaces):
            loc = ("routers", i, "interfaces", j)
            added = load.answers[loc]
            ours = _exception_of(next((p for p in declared.problems if p.loc[:4] == loc), None))
            if ours != added.error:  # both add it (''), or both refuse it with one exception
                said = f"refuses it ({ours})" if ours else "adds it"
                found.append(Difference(loc, router.name, f"interface on {subnet}", said, _neutron_says(added)))
    return found


def _network_port_differences(declared: Declared, load: NeutronLoad) -> list[Difference]:
    """The ports Neutron's server makes by itself: per router its SNAT ports, per host its floating-IP agent
    gateway ports, per network its DHCP ports (with the host of the agent Neutron's scheduler chose) and its
    metadata port, each as (network, its subnets) on both sides. Addresses from the pools are not compared (Neutron
    picks at random), only which ports exist on which subnets."""
    if declared.resolved is None:
        return []
    cloud = declared.cloud
    ours: dict[tuple[str, str], list[str]] = {}
    for port in declared.resolved.network_ports:
        ours.setdefault(_made_by(port.device_owner, port.router, port.host, port.network_id), []).append(
            _made_port(port.device_owner, port.network_id, [f.subnet_id for f in port.fixed_ips], port.host)
        )
    theirs: dict[tuple[str, str], list[str]] = {}
    for made in load.network_ports:
        network = load.names.get(made["network_id"], made["network_id"])
        router = load.names.get(made["device_id"], made["device_id"])
        subnets = [load.names.get(f["subnet_id"], f["subnet_id"]) for f in made["fixed_ips"]]
        theirs.setdefault(_made_by(made["device_owner"], router, made.get("binding:host_id"), network), []).append(
            _made_port(made["device_owner"], network, subnets, made.get("binding:host_id"))
        )
    found = []
    for kind, name in sorted(set(ours) | set(theirs)):
        if sorted(ours.get((kind, name), [])) == sorted(theirs.get((kind, name), [])):
            continue
        items = getattr(cloud, kind)
        index = next((i for i, item in enumerate(items) if item.name == name), None)
        found.append(
            Difference(
                (kind, index) if index is not None else (),
                name,
                "ports Neutron makes",
                "makes " + ("; ".join(sorted(ours.get((kind, name), []))) or "none"),
                "makes " + ("; ".join(sorted(theirs.get((kind, name), []))) or "none"),
            )
        )
    return found


def _subnet_differences(cloud: Cloud, load: NeutronLoad) -> list[Difference]:
    """Each subnet's gateway and allocation pools: labtwin's defaults must be Neutron's."""
    found = []
    for i, subnet in enumerate(cloud.subnets):
        answer = load.answers.get(("subnets", i))
        if answer is None or not answer.ok:
            continue  # a refusal is compared with the other objects Neutron refuses
        given = answer.body["subnet"]
        ours = _subnet_shape(subnet.gateway_ip, [(p.start, p.end) for p in subnet.allocation_pools])
        theirs = _subnet_shape(given["gateway_ip"], [(p["start"], p["end"]) for p in given["allocation_pools"]])
        if ours != theirs:
            found.append(Difference(("subnets", i), subnet.name, "gateway and pools", ours, theirs))
    return found


def _subnet_shape(gateway: Any, pools: list[tuple[Any, Any]]) -> str:
    """Both sides' addresses in one spelling (Python's; netaddr's IPv6 text may differ for the same address)."""
    pools_text = ", ".join(f"{ipaddress.ip_address(str(a))}-{ipaddress.ip_address(str(b))}" for a, b in pools)
    gateway_text = ipaddress.ip_address(str(gateway)) if gateway else "none"
    return f"gateway {gateway_text}, pools {pools_text or 'none'}"


def _made_by(owner: str, router: Optional[str], host: Optional[str], network: str) -> tuple[str, str]:
    """What a port Neutron makes belongs to, as ``(kind in the file, name)``: a SNAT port its router, a DHCP port
    or a metadata port its network, an agent gateway port its host."""
    if owner == SNAT_OWNER:
        return "routers", str(router)
    if owner in (DHCP_OWNER, METADATA_OWNER):
        return "networks", network
    return "hosts", str(host)


def _made_port(owner: str, network: str, subnets, host: Optional[str] = None) -> str:
    """A made port in words; a DHCP port names its agent's host (which agent Neutron's scheduler chose)."""
    kind = {SNAT_OWNER: "SNAT port", DHCP_OWNER: "DHCP port", METADATA_OWNER: "metadata port"}.get(
        owner, "agent gateway port"
    )
    of = f" of {host}" if owner == DHCP_OWNER else ""
    return f"{kind}{of} on {network} ({', '.join(sorted(subnets))})"


def _gateway_difference(declared: Declared, load: NeutronLoad, i: int) -> list[Difference]:
    """The gateway port's addresses: the same subnets on both sides (and the addresses the file names)."""
    resolved = declared.resolved
    gateway = resolved.routers[i].external_gateway_info if resolved is not None else None
    if gateway is None:
        return []
    ours = sorted((f.subnet_id, str(f.ip_address)) for f in gateway.external_fixed_ips)
    given = load.answers[("routers", i)].body["router"].get("external_gateway_info") or {}
    theirs = sorted(
        (load.names.get(f["subnet_id"], f["subnet_id"]), f["ip_address"]) for f in given.get("external_fixed_ips") or []
    )
    written = declared.cloud.routers[i].external_gateway_info
    named = {(f.subnet_id, str(f.ip_address)) for f in (written.external_fixed_ips if written else ()) if f.ip_address}
    if [s for s, _ in ours] == [s for s, _ in theirs] and named <= set(theirs):
        return []
    router = declared.cloud.routers[i].name
    return [
        Difference(
            ("routers", i, "external_gateway_info"),
            router,
            "gateway port",
            "gives it " + (", ".join(f"{ip} on {s}" for s, ip in ours) or "no address"),
            "gives it " + (", ".join(f"{ip} on {s}" for s, ip in theirs) or "no address"),
        )
    ]


def _refused_by_neutron_only(cloud: Cloud, load: NeutronLoad) -> list[Difference]:
    """Objects the file loaded with (so labtwin accepts) that Neutron refuses."""
    return [
        Difference(
            loc,
            getattr(cloud, loc[0])[loc[1]].name,
            _KIND[loc[0]] + (" rule" if len(loc) > 2 else ""),
            "accepts it",
            _neutron_says(answer),
        )
        for loc, answer in load.answers.items()
        if loc[0] in _KIND and not answer.ok and answer.error != "SecurityGroupRuleExists"  # present already
    ]


def _rule_differences(declared: Declared, load: NeutronLoad) -> list[Difference]:
    """Each group's rules, labtwin's (listed plus Neutron's defaults) against Neutron's, as sets of
    (direction, ethertype, protocol, ports, remote prefix, remote group)."""
    found = []
    resolved = declared.resolved
    for i, group in enumerate(resolved.security_groups if resolved is not None else ()):
        ours = {_rule_key(r.model_dump(mode="json")) for r in group.rules}
        theirs = {_neutron_rule_key(r, load.names) for r in load.group_rules.get(group.name, [])}
        if ours != theirs:
            found.append(
                Difference(
                    ("security_groups", i, "rules"),
                    group.name,
                    "rules",
                    "has " + (_rules_text(ours - theirs) or "no other rule"),
                    "has " + (_rules_text(theirs - ours) or "no other rule"),
                )
            )
    return found


def _rule_key(rule: dict) -> tuple:
    """A rule as Neutron compares rules: its protocol by number (neutron-lib's ``IP_PROTOCOL_MAP``:
    ``vrrp`` is ``112``, labtwin's ``icmpv6`` is Neutron's ``ipv6-icmp``; one rule each)."""
    from neutron_lib import constants

    given = None if rule.get("protocol") in (None, "any") else str(rule["protocol"]).lower()
    protocol = constants.IP_PROTOCOL_MAP.get(given, given) if given else None
    protocol = int(protocol) if protocol is not None and str(protocol).isdigit() else protocol
    protocol = protocol or None  # 0 is any
    keys = ("direction", "ethertype", "port_range_min", "port_range_max", "remote_ip_prefix", "remote_group_id")
    return (protocol, *(rule.get(k) for k in keys))


def _neutron_rule_key(rule: dict, names: dict[str, str]) -> tuple:
    group = rule.get("remote_group_id")
    return _rule_key({**rule, "remote_group_id": names.get(group, group) if group else None})


def _rules_text(rules: set) -> str:
    return "; ".join(
        f"{d} {e} {p or 'any'}{f' {lo}-{hi}' if lo is not None else ''}"
        f"{f' from/to {prefix}' if prefix else ''}{f' group {g}' if g else ''}"
        for p, d, e, lo, hi, prefix, g in sorted(rules, key=str)
    )


_KIND = {"networks": "network", "segments": "segment", "subnets": "subnet", "security_groups": "security group"}
_KIND_ALL = {**_KIND, "ports": "port", "routers": "router", "floatingips": "floating IP", "hosts": "L3 agent"}


def _neutron_says(answer: Any) -> str:
    return "accepts it" if answer.ok else f"refuses it: {answer.status} {answer.error} ({answer.message})"


_EXCEPTION = re.compile(r"\(([A-Z][A-Za-z]+)(?:, \d{3})?\)")


def _exception_of(problem: Optional[Problem]) -> str:
    """The Neutron exception a labtwin problem names, e.g. ``(IpAddressGenerationFailure)``."""
    if problem is None:
        return ""
    match = _EXCEPTION.search(problem.message)
    return match.group(1) if match else "refused"
