"""What each firewall strategy writes when a remote group's membership changes.

One agent-loop iteration on a host is handed the devices to refresh
(``devices_to_refilter``), the new devices to prepare, the removed ones, and
the group's membership as the server answered ``security_group_info_for_devices``.
:func:`apply_iteration` updates the host's data-plane state and returns the
:class:`Work` done: counts from the strategy's semantics, duration from the
cost profile. Nothing here schedules events: the caller turns the duration
into a single SimPy timeout (one per iteration, never one per rule).

Counting conventions (the summary's ``updates_total`` is
``filters_written + filters_removed + group_writes``):

- a *filter* is one port's set of rules or flows (iptables i/o/s chains, the
  OVS firewall's per-port flows); *written* when the driver rewrites it;
- a *group object* is a per-host, per-remote-group data-plane object: the
  ipset ``NIPv4<sg>``, the OVS ``ConjIPFlowManager`` dimension-1 flow set for
  the (VLAN, remote group), or the proposed subtable; *written* when its
  content changes (create, entries added/removed, destroy);
- ``rules_written`` counts rules/flows/entries in what was written, each
  once: the rules a rewritten filter holds afterwards, the entries added to
  or removed from a group object (what the emulation counts in the kernel:
  rules with new handles, flows re-added, set entries changed). The OVS
  update's temporary-cookie install is a cost (3 flow-mod passes), not a
  second copy of the filter;
- ``objects_changed`` counts written objects whose *content* differs from
  before (an iptables-save / dump-flows diff would show them).

Formulas for one port joining a self-referencing group (R rules referencing
the group, b the port's other rules, M existing members spread over hosts
with m_h members each, H_m hosts with members after the join, the new port
on a host that already has members):

=========  =====================  ==============================  ===================
strategy   filters written        group objects written           rules written
=========  =====================  ==============================  ===================
iptables   M + 1                  0                               (M+1)(b + R*M)
ipset      M + 1                  H_m (one ipset per host)        (M+1)(b+R) + H_m
ovs        M + 1                  H_m (dimension-1 flow sets)     f(M+1) + 2R*H_m
subtable   1                      H_m (one subtable per host)     f + H_m
=========  =====================  ==============================  ===================

b: the port's other iptables rules (IPTABLES_PORT_BASE_RULES + plain SG
rules); f: the port's flow count under OVS. So 170 members on one host, one join: iptables 171, ipset and
ovs 172, subtable 2; spread over H hosts: iptables/ipset/ovs still grow with
M, the subtable costs 1 + H. A join onto a host with no member yet also
creates that host's group object with all M+1 entries.

When other groups reference the group (group A's rule names B as remote group, B's members join and
leave), the filters refreshed are those of every local port whose groups' rules name B, members of B or
not (``security_group_source_groups``, see :mod:`..spec`), each with its own rules (:class:`GroupRules` per
port); B's own members are refreshed only when B references itself, and a joining port that does not
reference B is ready once its own filter is prepared. A host's group object for B exists while it has a
port referencing B. Under the OVS firewall its dimension-1 flows are counted as 2 per address per
remote-group rule of the port with the most such rules on the host (simplification: Neutron keys
conjunctions per (group, remote group, direction, ethertype), so two referencing groups on one host share
an address's flow with two conj_ids; that is not modelled, and the labtwin emulation of a cross-group
layout draws one remote rule per port as well).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Optional, Union

from ..profiles import CostProfile
from ..spec import GroupRules, Member, group_addresses

__all__ = ["GroupRules", "apply_iteration", "filter_size"]  # GroupRules: the spec's, used here

#: A port's rules: one GroupRules for every port, or a function of the port's name (a topology's ports differ)
Rules = Union[GroupRules, Callable[[str], GroupRules]]

#: Rules in one IPv4 port's own chains under the hybrid iptables driver besides
#: its security-group rules, from iptables_firewall.py and checked against what
#: Neutron 29's own driver writes here (tests/scenarios/sg_fanout/test_neutron_control.py):
#: ingress ``i`` chain (RELATED/ESTABLISHED return, DHCP replies to the port's
#: address and to broadcast, INVALID drop, fallback jump: 5), egress ``o``
#: chain (DHCP discover from 0.0.0.0, spoof jump, DHCP renew, DHCP-server
#: drop, RELATED/ESTABLISHED, INVALID, fallback: 7), spoof ``s`` chain (MAC/IP
#: pair, drop: 2). The port's jumps live in the shared FORWARD/sg-chain chains,
#: written when the port is added, not on an update: not part of the filter.
IPTABLES_PORT_BASE_RULES = 14
#: Flows of one port under the OVS firewall besides its security-group rules:
#: table 0/60 classification, 71 anti-spoof/ARP/DHCP, 72/82 established,
#: invalid and marked-connection flows, 73 accept, 81 ingress base: 20 for an
#: IPv4 port (openvswitch_firewall.rst; the IPv6/ND flows are not counted).
OVS_PORT_BASE_FLOWS = 20
#: Flows of one port under Neutron 29's own OVS firewall besides its SG rules (``control=neutron``), as
#: counted in what it wrote here (tests/scenarios/sg_fanout/test_neutron_control.py; table by table in
#: traces/sg-fanout/rules-vs-neutron.json): every port gets IPv6 flows too (its link-local address comes
#: from its MAC): table 60 classification (from the port, to its MAC: 2), 71 egress base (ARP, RARP,
#: MLD/RS/NS/NA, DHCPv4 and DHCPv6 requests, DHCP/RA server drops, IPv4 and IPv6 into conntrack, the rest
#: dropped: 15), 72 egress frame (marked, reply and related, not established, established marked: 6), 73
#: accept (commit IPv4/IPv6, to a local port, the rest: 4), 81 ingress base (ARP, MLD/NS/NA/RA, DHCPv4/v6
#: replies, IPv4 and IPv6 into conntrack, tracked: 10), 82 ingress frame (6). labtwin's own agent renders
#: the 20 IPv4 flows of :data:`OVS_PORT_BASE_FLOWS` and the IPv4 rules only: its simplification, kept
#: visible here.
NEUTRON_OVS_PORT_BASE_FLOWS = 43
#: Flows one IPv4 allowed address pair with the port's own MAC adds to the port's table 71 under the OVS
#: firewall (firewall.py ``_initialize_egress``: the pair's ARP, its IP into conntrack, its DHCP request; the
#: RARP flow matches the MAC alone, so the port already has it).
OVS_FLOWS_PER_OWN_PAIR = 3
#: A plain SG rule becomes one flow per ct_state class (new, established).
OVS_FLOWS_PER_RULE = 2
#: A remote-group rule under conjunction: dimension-2 flows (new, est) plus
#: the two accept flows of its conj_id pair (openvswitch_firewall.rst).
OVS_FLOWS_PER_CONJ_RULE = 4
#: Dimension-1 flows per member IP per remote-group rule: one per ct_state class.
OVS_DIM1_FLOWS_PER_IP = 2
#: ipset_manager.py IPSET_ADD_BULK_THRESHOLD: fewer changes use ipset add/del.
IPSET_ADD_BULK_THRESHOLD = 5

#: What reaches the kernel when the hybrid driver's chains are applied (the ``writes`` of an iteration):
#:
#: - ``diff``: Neutron's own code. ``filter_defer_apply_off`` regenerates every filtered port's chains in
#:   Python (iptables_firewall.py ``_remove_chains_apply`` + ``_setup_chains_apply``), but IptablesManager
#:   sends the kernel only the rules that differ (``_modify_rules`` / ``_generate_path_between_rules``; in
#:   stable/train too: neutron 15.3.4's ``iptables_manager.py`` ``_apply_synchronized``, see
#:   profiles.TRAIN_2019). A member joining adds R rules to each local member's chain under iptables, and
#:   nothing under ipset (the set changes instead); a member leaving deletes rules and writes none.
#: - ``rebuild``: labtwin's own agent (``control=labtwin``), which flushes and rewrites each refreshed port's
#:   chains: every rule of a refreshed filter is written again. Its simplification, kept visible here.
#:
#: The time is the same either way (the Python regeneration and the table apply, :func:`_full_chain_rebuild`);
#: only the counts of what the kernel received differ. The OVS firewall and the subtable always diff.
KERNEL_WRITES = ("rebuild", "diff")


@dataclass
class HostFirewall:
    """One host's data-plane state for the group: filtered ports and the group object."""

    host: str
    #: filtered local port -> (filter size in rules/flows, membership epoch it was computed at)
    filters: dict = field(default_factory=dict)
    #: member IPs in the host's group object (ipset / dimension-1 flows / subtable); None: none exists
    group_ips: Optional[frozenset] = None
    group_epoch: int = -1
    #: filtered local port -> the group's addresses when its filter was written (what a diff compares)
    filter_ips: dict = field(default_factory=dict)
    #: entries per address in the group object as last written (OVS: 2R dimension-1 flows): what a destroy
    #: removes once the host's last referencing port has gone
    group_per_ip: int = 0

    def view_epoch(self, port: str, firewall: str, watches: bool = True) -> int:
        """The membership epoch *port*'s filtering reflects on this host (-1: not filtered); a port that does
        not reference the group (*watches* false) reflects the epoch its own filter was written at."""
        if port not in self.filters:
            return -1
        return self.filters[port][1] if firewall == "iptables" or not watches else self.group_epoch


@dataclass
class Snapshot:
    """The group as the server answers it: an epoch that grows with each change, the addresses its group
    objects hold (fixed and allowed-address-pair IPs), the members, and each member."""

    epoch: int
    ips: frozenset
    members: frozenset
    #: member name -> its Member (fixed IP, pairs): what a port's own filter and the expansion depend on
    ports: Mapping = field(default_factory=dict)
    #: the pair addresses (as the data plane names them): a pair equal to a port's fixed IP is not skipped
    pair_ips: frozenset = frozenset()
    _changes: dict = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, epoch: int, members: Iterable[Member]) -> "Snapshot":
        ports = {m.name: m for m in members}
        pairs = frozenset(a for m in ports.values() for a in m.pair_addresses)
        return cls(epoch, group_addresses(ports.values()), frozenset(ports), ports, pairs)

    def skipped(self, port: str) -> Optional[str]:
        """The address the iptables driver leaves out of *port*'s expansion of a remote-group rule: its own
        fixed IP (``_expand_sg_rule_with_remote_ips`` skips an address whose text is one of the port's fixed
        IPs; another member's pair ``10.64.0.10/32`` is not skipped for the port at 10.64.0.10, and
        IptablesManager weeds out the duplicate rules two ports sharing a VIP make)."""
        own = self.ports[port].ip if port in self.ports else None
        return own if own in self.ips and own not in self.pair_ips else None

    def expanded(self, port: str) -> int:
        """How many addresses *port*'s expansion of a remote-group rule has (:meth:`skipped`)."""
        return len(self.ips) - (self.skipped(port) is not None)

    def changed_since(self, old: frozenset) -> int:
        """``len(self.ips ^ old)``: a host's group object against the snapshot."""
        return self._compared(old, "^")

    def added_since(self, old: frozenset) -> int:
        """``len(self.ips - old)``: the addresses a refreshed filter gains."""
        return self._compared(old, "-")

    def _compared(self, old: frozenset, how: str) -> int:
        """Computed once per earlier address set: every host, and every port of a host, holds the same
        earlier set, so 1,000 hosts (or 20,000 refreshed ports) ask the same question."""
        if old is self.ips:
            return 0
        seen = self._changes.get((how, id(old)))
        if seen is None or seen[0] is not old:  # the set itself is kept, so its id cannot be reused meanwhile
            value = len(self.ips ^ old) if how == "^" else len(self.ips - old)
            seen = self._changes[(how, id(old))] = (old, value)
        return seen[1]

    def own_pairs(self, port: str) -> int:
        """The port's own IPv4 allowed address pairs (each one more anti-spoofing rule or flows in its filter)."""
        return len(self.ports[port].pairs) if port in self.ports else 0


@dataclass
class Work:
    refreshes: int = 0
    #: ``conntrack -D`` commands Neutron's OVS firewall queued (writes="diff" only; see :func:`_ovs_conntrack_deletes`)
    conntrack_deletes: int = 0
    filters_written: int = 0
    filters_removed: int = 0
    group_writes: int = 0
    rules_written: int = 0
    objects_changed: int = 0
    #: (operation, count, duration_s, detail) in the order the agent does them
    ops: list = field(default_factory=list)

    @property
    def duration(self) -> float:
        return sum(op[2] for op in self.ops)

    @property
    def updates(self) -> int:
        return self.filters_written + self.filters_removed + self.group_writes


def filter_size(
    firewall: str, rules: GroupRules, members: int, is_member: bool, neutron: bool = False, own_pairs: int = 0
) -> int:
    """Rules (iptables, ipset) or flows (ovs, subtable) in one port's filter.

    iptables without ipset expands each remote-group rule into one rule per
    member entry, skipping the port's own address (``_expand_sg_rule_with_remote_ips``):
    R * (M - 1) for a member when *members* counts entries including its own (*is_member*), R * M when
    *members* already leaves it out. ipset: one ``--match-set`` rule per SG rule.
    OVS: base flows + 2 per plain rule + 4 per conjunctive rule; under Neutron's own
    agent (*neutron*) its base flows and the IPv6 rules' flows too. Subtable:
    base flows + 2 per plain rule + one jump per ct_state class per remote rule.
    Each of the port's *own_pairs* allowed address pairs adds an anti-spoofing rule to its ``s`` chain
    (iptables, ipset) or its flows to table 71 (OVS, subtable: :data:`OVS_FLOWS_PER_OWN_PAIR`).
    """
    if firewall == "iptables":
        others = members - 1 if is_member else members
        fixed = rules.other + rules.other_entries  # rules naming another (unchanging) group: expanded per address
        return IPTABLES_PORT_BASE_RULES + own_pairs + fixed + rules.remote * max(0, others)
    if firewall == "ipset":
        return IPTABLES_PORT_BASE_RULES + own_pairs + rules.other + rules.other_remote + rules.remote
    base = OVS_FLOWS_PER_OWN_PAIR * own_pairs
    conj = rules.remote + rules.other_remote
    if firewall == "ovs" and neutron:
        plain, remote = rules.other + rules.other_v6, conj + rules.remote_v6
        return base + NEUTRON_OVS_PORT_BASE_FLOWS + OVS_FLOWS_PER_RULE * plain + OVS_FLOWS_PER_CONJ_RULE * remote
    if firewall == "ovs":
        return base + OVS_PORT_BASE_FLOWS + OVS_FLOWS_PER_RULE * rules.other + OVS_FLOWS_PER_CONJ_RULE * conj
    return base + OVS_PORT_BASE_FLOWS + OVS_FLOWS_PER_RULE * (rules.other + conj)


def refilters_on_member_update(firewall: str) -> bool:
    """Does ``security_groups_member_updated`` put the local referencing ports in devices_to_refilter?

    Yes for every Neutron driver (securitygroups_rpc.py); no for the proposed
    subtable, whose port rules jump to the group table and need no rewrite.
    """
    return firewall != "subtable"


def apply_iteration(
    firewall: str,
    state: HostFirewall,
    refresh: list,
    new: list,
    removed: list,
    snap: Snapshot,
    rules: Rules,
    profile: CostProfile,
    writes: str = "rebuild",
) -> Work:
    """Do one loop iteration's firewall work on one host; mutate *state*; return the Work.

    *rules*: every port's (:class:`GroupRules`), or a function of the port's name.
    *writes*: what reaches the kernel under the hybrid driver (:data:`KERNEL_WRITES`).
    """
    if writes not in KERNEL_WRITES:
        raise ValueError(f"writes must be one of {', '.join(KERNEL_WRITES)}, not {writes!r}")
    rules = _per_port(rules)
    work = Work()
    for port in removed:
        state.filter_ips.pop(port, None)
        if state.filters.pop(port, None) is not None:
            # remove_port_filter: the port's chains / flows are gone, which a diff shows
            work.filters_removed += 1
            work.objects_changed += 1
    if writes == "diff" and firewall == "ovs":
        work.conntrack_deletes = _ovs_conntrack_deletes(refresh, new, snap)
    if removed:
        work.ops.append(("filter_remove", len(removed), profile.port_filter_s * len(removed), {}))
    _write_filters(firewall, state, refresh, new, snap, rules, profile, work, writes)
    if firewall != "iptables":
        _sync_group_object(firewall, state, snap, rules, profile, work)
    if firewall in ("iptables", "ipset"):
        _full_chain_rebuild(firewall, state, profile, work)
    elif work.ops:
        work.ops.append(("flows_apply", 1, profile.ovs_apply_fixed_s, {}))
    return work


def _per_port(rules: Rules) -> Callable[[str], GroupRules]:
    if isinstance(rules, GroupRules):
        return lambda _port: rules
    return rules


def _write_filters(firewall, state, refresh, new, snap, rules, profile, work, writes="rebuild") -> None:
    """update_port_filter for *refresh*, prepare_port_filter for *new* (*rules*: a port's GroupRules)."""
    for kind, ports in (("filter_rewrite", refresh), ("filter_prepare", new)):
        if not ports:
            continue
        flows = changed = written = 0
        for port in ports:
            own = rules(port)
            size = filter_size(
                firewall, own, snap.expanded(port), False, neutron=writes == "diff", own_pairs=snap.own_pairs(port)
            )
            old = state.filters.get(port)
            # iptables filters embed the member IPs: a new epoch changes them (if the port references the group).
            changed += old is None or (firewall == "iptables" and own.remote > 0 and old[1] != snap.epoch)
            if old is not None and writes == "diff" and firewall in ("iptables", "ipset"):
                fresh = _fresh_rules(firewall, own, snap, state.filter_ips.get(port, frozenset()), port)
            else:
                fresh = size
            state.filters[port] = (size, snap.epoch)
            state.filter_ips[port] = snap.ips
            flows += fresh
            written += fresh > 0
        cost = profile.port_filter_s * len(ports)
        if firewall in ("ovs", "subtable"):
            # OVS update_port_filter: install under a temporary cookie, delete the
            # old flows strictly, reinstall with the default cookie (3 flow-mod
            # passes: a cost); the filter written is the port's f flows, once.
            passes = 3 if kind == "filter_rewrite" else 1
            cost += passes * flows * profile.ovs_flow_s
        # iptables/ipset: generating and applying the chains is the full rebuild's cost.
        work.refreshes += len(ports)
        work.filters_written += written
        work.objects_changed += changed
        work.rules_written += flows
        work.ops.append((kind, len(ports), cost, {"rules": flows}))


def _ovs_conntrack_deletes(refresh: list, new: list, snap: Snapshot) -> int:
    """The ``conntrack -D`` commands Neutron 29's OVS firewall queues in one iteration: each prepared or updated
    port's invalid-marked connections (``_schedule_invalid_conntrack_entries_cleanup``), one command per
    direction for each of its IPv4 addresses, its fixed IP and its allowed address pairs
    (``IpConntrackManager._get_conntrack_cmds``). They run on a background thread (ip_conntrack.py
    ``IpConntrackManager._process_queue_worker``), so they cost the iteration, and the time to ready, nothing.

    The hybrid driver's cleanup (a departed member's address, per local port referencing the group) is not
    modelled: Neutron 29's own runs here queue a number that depends on the order of its applies on
    the departed port's host (without ipset, the removal's own apply drops the waiting devices before the
    refresh learns the new members, so that host cleans nothing for the others; with ipset, a departed
    port's device lingers in the waiting list). The emulation reports what Neutron queued.
    """
    return sum(2 * (1 + snap.own_pairs(port)) for port in set(refresh) | set(new))


def _fresh_rules(firewall: str, rules: GroupRules, snap: Snapshot, before: frozenset, port: str) -> int:
    """Rules a refreshed filter gains under Neutron's diff: R per address added since *before* (iptables
    expands the remote group per member address and pair, *port*'s own address skipped); none under ipset
    (its rule names the set)."""
    if firewall != "iptables":
        return 0
    skipped = snap.skipped(port)
    return rules.remote * (snap.added_since(before) - (skipped is not None and skipped not in before))


def _sync_group_object(firewall, state, snap, rules, profile, work) -> None:
    """Bring the host's group object (ipset / dimension-1 flows / subtable) to the snapshot.

    The object exists while the host has a local port referencing the group
    (an empty group gets no ipset). Entries: one per member IP, times
    2R for the OVS dimension-1 flows (one per ct_state class per rule; R: the
    most remote-group rules of a local referencing port, see the module docstring).
    """
    remote = [rules(p).remote for p in state.filters if rules(p).remote]  # IPv4 rules: the IPv4 object
    has_refs = bool(remote)
    target = snap.ips if has_refs else None
    per_ip = OVS_DIM1_FLOWS_PER_IP * max(remote, default=0) if firewall == "ovs" else 1
    if target is None:  # a destroy removes the entries as they were written, not as no port would have them
        per_ip = state.group_per_ip
    old = state.group_ips
    state.group_epoch = snap.epoch if target is not None else -1
    if target is None and old is None:
        return
    changes = len(old) if target is None else len(target) if old is None else snap.changed_since(old)
    if changes == 0:
        return
    if target is None:  # the host's last port using the group left: every entry goes (ipset destroy, conj/
        op_detail = {"action": "destroy"}  # subtable flows deleted one by one)
    else:
        op_detail = {"action": "create" if old is None else "diff"}
    entries = changes * per_ip
    state.group_ips, state.group_per_ip = target, per_ip
    work.group_writes += 1
    work.objects_changed += 1
    work.rules_written += entries
    op = {"ipset": "ipset_write", "ovs": "conj_ip_flows", "subtable": "group_table_write"}[firewall]
    work.ops.append((op, entries, _group_cost(firewall, old, target, changes, entries, profile), op_detail))


def _group_cost(firewall, old, target, changes, entries, profile) -> float:
    """*changes*: addresses added or removed (all of them on a create or destroy)."""
    if firewall != "ipset":
        return entries * profile.ovs_flow_s
    if old is not None and target is not None and changes < IPSET_ADD_BULK_THRESHOLD:
        return changes * profile.ipset_cmd_s  # one `ipset add/del` per change
    # create, or >= 5 changes: `ipset restore` of <name>-n, then swap and destroy
    return 3 * profile.ipset_cmd_s + len(target or ()) * profile.ipset_entry_s


def _full_chain_rebuild(firewall, state, profile, work) -> None:
    """filter_defer_apply_off: rebuild every filtered port's chains, then save/restore the table.

    The cost grows with the total rules on the host, not with what changed.
    Recorded as an operation; not counted in updates (unchanged chains come
    out identical).
    """
    if not work.ops:
        return
    total = sum(size for size, _ in state.filters.values())
    fixed, per_rule = profile.rebuild_costs(firewall)
    cost = fixed + total * per_rule
    work.ops.append(("chain_rebuild", total, cost, {"ports": len(state.filters)}))
