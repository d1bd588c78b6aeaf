"""What one membership change writes under ML2/OVN (``firewall=ovn``, ``control=ovn``): NB, SB, OpenFlow.

ML2/OVN has no agent loop and no per-port filter to refresh. Neutron's OVN driver keeps one port
group ``pg_<group id>`` per security group with one ACL per rule (``neutron/common/ovn/acl.py``:
``outport == @pg && ip4 && ip4.src == $pg_<id>_ip4`` for an ingress rule whose remote is the group
itself, ``inport == @pg && ip4`` for an egress rule), and every port with port security in
``neutron_pg_drop``. A join (the port gains the group) only changes the port group's port list
and, through it, the address set ``$pg_<id>_ip4`` ovn-northd derives from it; the ACLs and their
logical flows stay as they are (the PTG's "one table per remote group" is OVN's design). The
fanout happens in each chassis's ovn-controller, which expands every logical flow into OpenFlow:

- an ACL becomes two logical flows (``allow-related``: one for new connections, committing them to
  conntrack, one for established ones), each expanded on every chassis where the network's
  datapath is local;
- the expansion's dimensions: the port group's ports *on that chassis* (ovn-controller keeps
  local ports only) and, for a remote-group rule, every address in the address set; a port range
  would be a third. With two or more dimensions holding more than one value, ovn-controller
  writes a **conjunctive match**: one flow per value of each dimension plus one ``conj_id``
  flow; otherwise the **cross product**, one flow per combination (ovn ``lib/expr.c``,
  ``expr_to_matches`` / ``lflow.c``). A change writes the symmetric difference of the two flow
  sets: going from 1 to 2 local ports rewrites every flow of the rule, a member added to a
  conjunction adds one flow per dimension it enters.

Constants of a port's own rows and flows, measured on OVN 23.03 with Neutron 29 (the live test
``tests/scenarios/sg_fanout/test_ovn_control.py`` checks them, the model computes only the
security-group part from structure):

- a join writes 2 NB rows (the port, its ``neutron:revision_number`` and group ids; the group's
  port group) and 3 SB rows (the port group, the address set, the port binding's copy of the
  port's external ids), and no logical flow;
- a leave (the port deleted) writes 4 NB rows (the switch's port list, the port, both port groups
  it was in), 10 SB rows (its 3 logical flows, 2 port groups, 2 address sets, its binding, the
  switch's 2 multicast groups), and on its chassis 39 OpenFlow flows of its own besides the
  security-group flows, 3 on every other chassis of the network (its MAC's output via Geneve).

Time to ready (only with a calibration of this machine, ``labtwin calibrate sg-fanout --set
control=ovn``; otherwise None): Neutron's API call (``ovn_update_port_s``), then OVN's propagation, a
fixed part (``ovn_propagate_s``: northd, the chassis's incremental run) plus a cost per OpenFlow flow
written on the busiest chassis (``ovn_flow_s``). Measured here at 150 members on one chassis: 0.134 s,
0.115 s of it the API call (traces/sg-fanout/ovn-150).

Simplifications, stated: the members are IPv4-only (an IPv6 remote-group rule expands to nothing:
its address set is empty); every host keeps at least one port of the network, so no datapath
appears on or disappears from a chassis during the run; port ranges other than one port or all
ports are refused (their mask expansion is not modelled).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Optional

from labtwin.records import Recorder

from ..profiles import CostProfile
from ..spec import Layout, Member, vip_source

#: The summary's OVN counts (the emulation's are the same keys: emulation.ovn_workload.COUNTS).
COUNTS = ("nb_rows_written", "sb_rows_written", "lflows_written", "openflows_written")
#: Why a member's VIP is not admitted by its group's remote-group rule under ML2/OVN: Neutron 29's
#: ``ovn_client._get_allowed_addresses_from_port`` puts an allowed address pair with the port's MAC into the
#: port's ``port_security`` and its ``addresses`` keep the fixed IPs only, and ovn-northd builds
#: ``pg_<id>_ip4`` from ``addresses`` (OVN 23.03 ``northd/en-sync-sb.c`` ``build_port_group_address_set``).
VIP_NOT_MEMBER = "pair address not in the port group's address set (ML2/OVN)"
#: Logical flows per allow-related ACL (new and established connections).
LFLOWS_PER_ACL = 2
#: Measured on OVN 23.03 + Neutron 29 (module docstring): rows and flows of the port itself.
JOIN_NB_ROWS, JOIN_SB_ROWS = 2, 3
LEAVE_NB_ROWS, LEAVE_SB_ROWS, LEAVE_LFLOWS = 4, 10, 3
VIF_LOCAL_FLOWS, VIF_REMOTE_FLOWS = 39, 3
#: ... and each allowed address pair with the port's MAC adds flows of the port's own on its chassis: its
#: ``port_security`` entry gains the pair's address, which OVN's port-security stages match (measured: 3 per
#: pair, 1 and 2 pairs, by the live test).
VIF_LOCAL_FLOWS_PER_PAIR = 3


def expansion(dimensions: list[frozenset]) -> frozenset:
    """The OpenFlow flows ovn-controller writes for one logical flow whose match has these value sets.

    >>> sorted(expansion([frozenset("ab"), frozenset("xyz")]))  # doctest: +NORMALIZE_WHITESPACE
    [('conj',), ('dim', 0, 'a'), ('dim', 0, 'b'), ('dim', 1, 'x'), ('dim', 1, 'y'), ('dim', 1, 'z')]
    >>> len(expansion([frozenset("a"), frozenset("xyz")])), len(expansion([frozenset(), frozenset("xy")]))
    (3, 0)
    """
    if any(not d for d in dimensions):
        return frozenset()
    multi = [i for i, d in enumerate(dimensions) if len(d) > 1]
    if len(multi) >= 2:
        return frozenset({("conj",)} | {("dim", i, v) for i in multi for v in dimensions[i]})
    product: set[tuple] = {()}
    for d in dimensions:
        product = {p + (v,) for p in product for v in d}
    return frozenset(product)


@dataclass(frozen=True)
class Acl:
    """One rule of the group as ovn-controller sees its match: which dimensions it has."""

    ethertype: str
    remote_group: bool
    port_masks: int  # values of the port dimension (1: one port or none)


def acls(layout: Layout) -> list[Acl]:
    """The group's rules as ACLs (Neutron's ``acl.py``: one per rule)."""
    out = []
    for rule in layout.rules:
        low, high = rule.port_range_min, rule.port_range_max
        if low is not None and high is not None and low != high and (low, high) != (1, 65535):
            raise ValueError(
                f"firewall=ovn: rule {rule.proto} {low}-{high}: the mask expansion of a port range is not modelled"
            )
        out.append(Acl(rule.ethertype, rule.remote_group_id == layout.group, 1))
    return out


@dataclass
class OvnState:
    """Who is where: every port's chassis, the group's members (name -> address)."""

    port_host: dict[str, str]
    members: dict[str, str]
    acls: list[Acl]
    #: grows with each membership change (join and leave below)
    version: int = 0
    #: (version, host -> local members, the address set): rebuilt once per membership change
    _index: Optional[tuple] = field(default=None, repr=False)

    def dims(self, host: str, acl: Acl) -> list[frozenset]:
        """The value sets ovn-controller on *host* expands *acl*'s logical flows over: the group's ports bound
        to that chassis, and for a remote-group rule every address in the address set."""
        local, addresses = self._local_and_addresses(host)
        remote = addresses if acl.ethertype == "IPv4" else frozenset()  # IPv4-only members
        return [local, remote] if acl.remote_group else [local]

    def all_dims(self, host: str) -> list[list[frozenset]]:
        return [self.dims(host, acl) for acl in self.acls]

    def datapath_hosts(self) -> set[str]:
        return set(self.port_host.values())

    def _local_and_addresses(self, host: str) -> tuple[frozenset, frozenset]:
        version = self.version
        if self._index is None or self._index[0] != version:
            by_host: dict[str, set] = {}
            for name in self.members:
                by_host.setdefault(self.port_host[name], set()).add(name)
            local = {h: frozenset(names) for h, names in by_host.items()}
            self._index = (version, local, frozenset(self.members.values()))
        return self._index[1].get(host, frozenset()), self._index[2]


def flows_changed(
    before: list[list[frozenset]], after: list[list[frozenset]], sizes: Optional["_SetSizes"] = None
) -> int:
    """``len(flows before ^ flows after)`` on one chassis, from each ACL's value sets before and after, without
    building the flows with :func:`expansion` (at 20,000 members on 1,000 chassis they would be tens of
    millions of tuples). *sizes*: shared by every chassis of one change, so the address set's before and
    after are compared once."""
    sizes = sizes if sizes is not None else _SetSizes()
    return LFLOWS_PER_ACL * sum(_expansion_changed(b, a, sizes) for b, a in zip(before, after))


def _kind(dims: list[frozenset]) -> str:
    if any(not d for d in dims):
        return "empty"
    return "conj" if sum(len(d) > 1 for d in dims) >= 2 else "product"


def _count(dims: list[frozenset]) -> int:
    kind = _kind(dims)
    if kind == "empty":
        return 0
    if kind == "conj":
        return 1 + sum(len(d) for d in dims if len(d) > 1)
    return math.prod(len(d) for d in dims)


def _expansion_changed(before: list[frozenset], after: list[frozenset], sizes: "_SetSizes") -> int:
    """``len(expansion(before) ^ expansion(after))`` (see :func:`expansion`): flows of different kinds never
    coincide; two conjunctions share their conj_id flow and each dimension's common values; two products share
    the combinations of common values."""
    kind_b, kind_a = _kind(before), _kind(after)
    if kind_b != kind_a or kind_b == "empty":
        return _count(before) + _count(after)
    if kind_b == "product":
        common = math.prod(sizes.common(b, a) for b, a in zip(before, after))
        return _count(before) + _count(after) - 2 * common
    changed = 0
    for b, a in zip(before, after):
        multi_b, multi_a = len(b) > 1, len(a) > 1
        if multi_b and multi_a:
            changed += len(b) + len(a) - 2 * sizes.common(b, a)
        else:
            changed += len(b) if multi_b else len(a) if multi_a else 0
    return changed


class _SetSizes:
    """``len(b & a)``, computed once per pair of sets (every chassis shares the address set's before and after)."""

    def __init__(self) -> None:
        self._common: dict[tuple[int, int], int] = {}

    def common(self, b: frozenset, a: frozenset) -> int:
        if b is a:
            return len(b)
        key = (id(b), id(a))
        if key not in self._common:
            self._common[key] = len(b & a)
        return self._common[key]


@dataclass
class Change:
    """What one join or leave wrote."""

    nb_rows: int
    sb_rows: int
    lflows: int
    openflows: dict[str, int] = field(default_factory=dict)


def join(state: OvnState, hosts: Iterable[str], port: Member) -> Change:
    before = {h: state.all_dims(h) for h in hosts}
    state.members[port.name] = port.ip
    state.version += 1
    sizes = _SetSizes()
    written = {h: flows_changed(before[h], state.all_dims(h), sizes) for h in before}
    return Change(JOIN_NB_ROWS, JOIN_SB_ROWS, 0, written)


def leave(state: OvnState, hosts: Iterable[str], name: str, pairs: int = 0) -> Change:
    """*name* deleted (it had *pairs* allowed address pairs)."""
    home = state.port_host[name]
    on_datapath = state.datapath_hosts()
    before = {h: state.all_dims(h) for h in hosts}
    del state.members[name]
    del state.port_host[name]
    state.version += 1
    written, sizes = {}, _SetSizes()
    for h in before:
        if h == home:
            own = VIF_LOCAL_FLOWS + VIF_LOCAL_FLOWS_PER_PAIR * pairs
        else:
            own = VIF_REMOTE_FLOWS if h in on_datapath else 0
        written[h] = flows_changed(before[h], state.all_dims(h), sizes) + own
    return Change(LEAVE_NB_ROWS, LEAVE_SB_ROWS, LEAVE_LFLOWS, written)


def ready_s(profile: CostProfile, change: Change) -> Optional[float]:
    """A join's time to ready under *profile*'s OVN costs (None when it has none: not calibrated)."""
    costs = (profile.ovn_update_port_s, profile.ovn_propagate_s, profile.ovn_flow_s)
    if any(c is None for c in costs):
        return None
    api, fixed, per_flow = (float(c) for c in costs)  # type: ignore[arg-type]
    return api + fixed + per_flow * max(change.openflows.values(), default=0)


def run_layout(layout: Layout, rec: Recorder, profile: Optional[CostProfile] = None) -> dict:
    """The layout's joins then leaves, one at a time; the summary's OVN counts (and ``ready_s``, each join's
    time to ready, when *profile* has OVN costs); probes recorded."""
    ports = [*layout.members, *layout.joins, *([layout.outsider] if layout.outsider else [])]
    state = OvnState({p.name: p.host for p in ports}, {m.name: m.ip for m in layout.members}, acls(layout))
    totals = {"nb_rows_written": 0, "sb_rows_written": 0, "lflows_written": 0, "openflows_written": 0}
    by_chassis = {h: 0 for h in layout.hosts}
    proto, _, port = layout.probe.partition(":")
    dport = int(port) if port else None
    changes = []
    ready: list[float] = []
    for new in layout.joins:
        change = join(state, layout.hosts, new)
        changes.append((new.name, change))
        _record_join(rec, layout, new, state, proto, dport)
        took = ready_s(profile, change) if profile is not None else None
        if took is not None:
            ready.append(took)
            rec.event(0.0, "port_ready", new.host, new.name, latency_s=round(took, 6))
    before_run = {m.name for m in layout.members}
    pairs = {p.name: len(p.pairs) for p in ports}
    for name in layout.leaves:
        changes.append((name, leave(state, layout.hosts, name, pairs[name])))
        for other in sorted(before_run & state.members.keys()):
            rec.probe(name, other, proto, dport, "blocked", 0.0, None, leave=name, reason="left the group")
    for subject, change in changes:
        totals["nb_rows_written"] += change.nb_rows
        totals["sb_rows_written"] += change.sb_rows
        totals["lflows_written"] += change.lflows
        totals["openflows_written"] += sum(change.openflows.values())
        for h, n in change.openflows.items():
            by_chassis[h] += n
        rec.operation("ovn_diff", "central", 0.0, 0.0, change.nb_rows + change.sb_rows, subject, **_detail(change))
    return {**totals, "openflows_by_chassis": by_chassis, "ready_s": ready}


def _record_join(rec: Recorder, layout: Layout, new: Member, state: OvnState, proto: str, dport) -> None:
    for name in state.members:
        if name != new.name:
            for src, dst in ((new.name, name), (name, new.name)):
                rec.probe(src, dst, proto, dport, "allowed", 0.0, None, join=new.name)
    vip = vip_source(new.name, new.pairs)
    if vip is not None:
        for name in state.members:
            if name != new.name:
                rec.probe(vip[0], name, proto, dport, "blocked", 0.0, None, join=new.name, reason=VIP_NOT_MEMBER)
    if layout.outsider is not None:
        for src, dst in ((new.name, layout.outsider.name), (layout.outsider.name, new.name)):
            rec.probe(src, dst, proto, dport, "blocked", 0.0, None, join=new.name, reason="not a member")


def _detail(change: Change) -> dict:
    return {
        "nb_rows_written": change.nb_rows,
        "sb_rows_written": change.sb_rows,
        "lflows_written": change.lflows,
        "openflows_written": sum(change.openflows.values()),
        "openflows_by_chassis": dict(change.openflows),
    }


def conj_flows(local: int, addresses: int) -> int:
    """Flows of one remote-group logical flow on a chassis with *local* member ports and *addresses* members.

    >>> conj_flows(1, 170), conj_flows(40, 170), conj_flows(0, 170)
    (170, 211, 0)
    """
    dims = [frozenset(range(local)), frozenset(range(addresses))]
    return len(expansion(dims))
