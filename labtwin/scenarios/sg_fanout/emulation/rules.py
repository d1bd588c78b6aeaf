"""sg-fanout's data-plane state per firewall strategy, as plain text (no effects, no root).

Each port of the layout (:mod:`labtwin.scenarios.sg_fanout.spec`) becomes an
:class:`EPort` (its tap, MAC, chain id, conntrack zone, and under OVS its
ofport). From those, this module renders what each strategy's agent writes:

- ``iptables`` / ``ipset`` (hybrid driver): the port's ``i``/``o``/``s``
  chains as ``iptables-restore --noflush`` text (a ``:chain`` line flushes the
  chain, so a restore *rebuilds* it), the host's ``sg-chain``/``sg-fallback``
  frame, and Neutron's ipset ``NIPv4<sg-id>`` (``ipset restore`` text).
  ``iptables`` expands the remote group into one rule per member IP, skipping
  the port's own (``_expand_sg_rule_with_remote_ips``); ``ipset`` has one
  ``--match-set`` rule.
- ``ovs`` (native firewall, simplified): per port, table 0 classification,
  60 (to a local MAC -> ingress), 71 anti-spoof + ``ct()``, 72 egress rules,
  81 ``ct()``, 82 ingress rules where the remote-group rule is a conjunction:
  dimension 2/2 per port, dimension 1/2 one flow per member IP per host
  (``ConjIPFlowManager``), accept flow per port.
- ``subtable`` (the PTG proposal), realised as an **OVS table** (83) per
  remote group per host: the port's ingress rule resubmits to it, and it holds
  one flow per member IP. OVS rather than an iptables chain because the
  proposal was made for the OVS firewall's conjunction flows (and the model
  costs it with OVS flow costs), and "jump to a shared per-group table" is
  exactly an OpenFlow ``resubmit``.

Simplifications, stated: one conntrack zone per port (unique across the
emulation, since every userspace bridge shares one datapath and one conntrack
table); ARP is switched with ``NORMAL`` (no ARP spoofing rules); the
remote-group rule matches the layout's probe protocol (the generated default
group's rule is ``any``; ICMP is what is probed); the port's other rules are
rendered as egress ``any``; IPv4 only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Optional

from labtwin.description.schema import derived_id
from labtwin.emulation.naming import chain_name, ipset_name, tap_name

from ..spec import Layout, Member, group_addresses

WRAP = "neutron-openvswi-"
FORWARD = WRAP + "FORWARD"
SG_CHAIN = WRAP + "sg-chain"
FALLBACK = WRAP + "sg-fallback"
#: OVS firewall tables (ovs_constants), and the subtable's table.
T_CLASSIFY, T_TRANSIENT, T_BASE_EGRESS, T_RULES_EGRESS, T_ACCEPT_EGRESS = 0, 60, 71, 72, 73
T_BASE_INGRESS, T_RULES_INGRESS, T_GROUP = 81, 82, 83
#: conj_id of the (group, group, ingress, IPv4) rule: a multiple of 8, as ConjIdMap hands out; the
#: established class uses the next id (Neutron's pair of ids per conj key).
CONJ_ID = 8
#: Neutron renders every rule once per ct_state class: new connections and established ones.
CT_NEW, CT_EST = "+new-est", "+est-rel-rpl"
PRIO_RULE = 70


@dataclass(frozen=True)
class EPort:
    """One port as the emulation realises it."""

    name: str
    host: str
    ip: str
    port_id: str
    mac: str
    zone: int
    member: bool  # in the studied group (the referrers and the outsider are not)
    ofport: Optional[int] = None
    #: IPv4 allowed address pairs as Neutron holds them (``10.66.0.1/32``), each with the port's MAC
    pairs: tuple[str, ...] = ()
    #: its IPv4 rules naming the studied group as remote group, and its other rules (rendered as egress any)
    remote_rules: int = 0
    other_rules: int = 1
    #: the flow its rules from the studied group admit (``icmp``, ``tcp:22``)
    flow: str = "icmp"

    @property
    def watches(self) -> bool:
        """Does the port's filter reference the studied group (refreshed on each of its changes)?"""
        return self.remote_rules > 0

    @property
    def tap(self) -> str:
        return tap_name(self.port_id)

    def chains(self) -> tuple[str, str, str]:
        return tuple(chain_name(d, self.port_id) for d in "ios")


def eports(layout: Layout) -> dict[str, EPort]:
    """Every port the layout names (members, joins, referrers, outsider), zones numbered from 1; each with its
    rules as they bear on the studied group (the outsider with none: it admits nobody)."""
    out = {}
    people = [(m, True) for m in layout.members + layout.joins] + [(m, False) for m in layout.referrers]
    if layout.outsider is not None:
        people.append((layout.outsider, False))
    for zone, (m, member) in enumerate(people, start=1):
        pid = derived_id("port", m.name)
        digest = hashlib.sha1(pid.encode()).hexdigest()
        mac = "fa:16:3e:" + ":".join(digest[i : i + 2] for i in (0, 2, 4))
        mine = layout.rules_of(m.name) if m is not layout.outsider else None
        remote, other = (mine.remote, mine.other) if mine is not None else (0, layout.other_rules)
        flow = layout.probe_of(m.name) or layout.probe
        out[m.name] = EPort(m.name, m.host, m.ip, pid, mac, zone, member, None, m.pairs, remote, other, flow)
    return out


def group_set(layout: Layout) -> str:
    """Neutron's ipset for the group: ``NIPv4`` + its id, 29 characters."""
    return ipset_name(derived_id("security-group", layout.group), "IPv4")


def probe_match(layout: Layout, kind: str, flow: str = "") -> str:
    """The remote-group rule's protocol match (*kind* ``iptables`` or ``ovs``) for *flow* (default: the layout's).

    >>> from labtwin.scenarios.sg_fanout.spec import generated_layout
    >>> probe_match(generated_layout(2, 1, "packed", 1, 0), "ovs")
    'icmp'
    """
    proto, _, port = (flow or layout.probe).partition(":")
    if kind == "ovs":
        return f"{proto},tp_dst={int(port)}" if port else ("icmp" if proto == "icmp" else proto)
    return f"-p {proto} -m {proto} --dport {int(port)}" if port else f"-p {proto}"


# --- iptables (hybrid driver) ------------------------------------------------------
def port_chains(port: EPort, layout: Layout, firewall: str, member_ips: list[str]) -> list[str]:
    """``iptables-restore -n`` lines that (re)build the port's i/o/s chains."""
    i, o, s = port.chains()
    ingress = [
        "-m state --state RELATED,ESTABLISHED -j RETURN",
        # DHCP replies to the port's address and to broadcast (Neutron 29 writes both, before the SG rules)
        f"-d {port.ip}/32 -p udp -m udp --sport 67 --dport 68 -j RETURN",
        "-d 255.255.255.255/32 -p udp -m udp --sport 67 --dport 68 -j RETURN",
        "-m state --state INVALID -j DROP",
    ]
    if port.watches:
        match = probe_match(layout, "iptables", port.flow)
        for _ in range(port.remote_rules):
            if firewall == "ipset":
                ingress.append(f"-m set --match-set {group_set(layout)} src {match} -j RETURN")
            else:
                ingress += [f"-s {_cidr(ip)} {match} -j RETURN" for ip in member_ips if ip != port.ip]
    ingress.append(f"-j {FALLBACK}")
    egress = [
        "-s 0.0.0.0/32 -d 255.255.255.255/32 -p udp -m udp --sport 68 --dport 67 -j RETURN",
        f"-j {s}",
        "-p udp -m udp --sport 68 --dport 67 -j RETURN",
        "-p udp -m udp --sport 67 --dport 68 -j DROP",
        "-m state --state RELATED,ESTABLISHED -j RETURN",
        "-m state --state INVALID -j DROP",
    ]
    egress += ["-j RETURN"] * max(1, port.other_rules) + [f"-j {FALLBACK}"]
    # the pairs first, then the fixed IP (_spoofing_rule's order)
    spoof = [f"-s {_cidr(ip)} -m mac --mac-source {port.mac.upper()} -j RETURN" for ip in (*port.pairs, port.ip)]
    spoof.append("-j DROP")
    lines = [f":{c} - [0:0]" for c in (i, o, s)]
    lines += [f"-A {i} {r}" for r in ingress] + [f"-A {o} {r}" for r in egress] + [f"-A {s} {r}" for r in spoof]
    return lines


def _cidr(address: str) -> str:
    """An address as an iptables rule names it: ``10.64.0.10/32``; a network as it is."""
    return address if "/" in address else f"{address}/32"


def port_jump_rules(port: EPort) -> list[tuple[str, str]]:
    """(chain, rule) of the port's jumps from FORWARD and sg-chain."""
    i, o, _ = port.chains()
    phys = "-m physdev --physdev-{d} " + port.tap + " --physdev-is-bridged -j {to}"
    return [
        (FORWARD, phys.format(d="out", to=SG_CHAIN)),
        (FORWARD, phys.format(d="in", to=SG_CHAIN)),
        (SG_CHAIN, phys.format(d="out", to=i)),
        (SG_CHAIN, phys.format(d="in", to=o)),
    ]


def port_jumps(port: EPort) -> list[str]:
    """The port's jumps from FORWARD and sg-chain, inserted at the top (a new port only)."""
    return [f"-I {chain} 1 {rule}" for chain, rule in port_jump_rules(port)]


def port_removal(port: EPort) -> list[str]:
    """``iptables-restore -n`` lines for ``remove_port_filter``: the port's jumps, then its i/o/s chains.

    A chain can be deleted only once nothing jumps to it (``o`` jumps to ``s``): unhook, flush all, delete.
    """
    chains = port.chains()
    return (
        [f"-D {chain} {rule}" for chain, rule in port_jump_rules(port)]
        + [f"-F {c}" for c in chains]
        + [f"-X {c}" for c in chains]
    )


def restore_text(lines: list[str]) -> str:
    return "*filter\n" + "".join(line + "\n" for line in lines) + "COMMIT\n"


def host_frame() -> list[str]:
    """The host's frame: wrapped FORWARD, sg-chain ending in ACCEPT, sg-fallback DROP."""
    return [
        f":{FORWARD} - [0:0]",
        f":{SG_CHAIN} - [0:0]",
        f":{FALLBACK} - [0:0]",
        f"-A FORWARD -j {FORWARD}",
        f"-A {SG_CHAIN} -j ACCEPT",
        f"-A {FALLBACK} -j DROP",
    ]


def ipset_restore(name: str, ips) -> str:
    """``ipset restore`` input creating *name* (hash:net, as Neutron) with *ips*."""
    return f"create {name} hash:net family inet\n" + "".join(f"add {name} {ip}\n" for ip in sorted(ips))


# --- OVS (native firewall and the subtable) ---------------------------------------
def ovs_infra_flows(uplink: int) -> list[str]:
    """Per-bridge flows that belong to no port: defaults, ARP, the uplink."""
    return [
        f"table={T_CLASSIFY},priority=0,actions=resubmit(,{T_TRANSIENT})",
        f"table={T_TRANSIENT},priority=95,arp,actions=NORMAL",
        f"table={T_TRANSIENT},priority=10,in_port={uplink},actions=drop",
        f"table={T_TRANSIENT},priority=5,actions=output:{uplink}",
        f"table={T_ACCEPT_EGRESS},priority=0,actions=resubmit(,{T_TRANSIENT})",
    ] + [
        f"table={t},priority=0,actions=drop"
        for t in (T_BASE_EGRESS, T_RULES_EGRESS, T_BASE_INGRESS, T_RULES_INGRESS, T_GROUP)
    ]


def ovs_port_flows(port: EPort, layout: Layout, firewall: str, cookie: int = 0) -> list[str]:
    """The port's own flows (its 'filter'); *cookie* for Neutron's update-cookie dance.

    What Neutron's OVS firewall installs for an IPv4 port, so that the kernel
    holds as many flows per port as the model counts
    (``OVS_PORT_BASE_FLOWS`` + 2 per plain rule + 4 per conjunctive rule, 2 per
    subtable jump): :func:`_ovs_base_flows` (20), then each rule once per
    ct_state class (new, established), as ``firewall.py`` renders them.
    Flows the probes never reach (DHCP, invalid, marked) are still installed
    and rewritten: they are part of what a member change rewrites.
    """
    p, c = port.ofport, f"cookie={cookie:#x},"
    commit = "ct(commit,zone=NXM_NX_REG6[0..15])"
    flows = _ovs_base_flows(port)
    for state in (CT_NEW, CT_EST):
        for i in range(max(1, port.other_rules)):  # egress any (one priority each: identical flows would merge)
            flows.append(
                f"table={T_RULES_EGRESS},priority={PRIO_RULE - i},ct_state={state}+trk,ip,reg5={p},"
                f"actions={commit},resubmit(,{T_ACCEPT_EGRESS})"
            )
        if port.watches:  # one remote rule drawn (the layout's remote_rules is 1 where this is emulated)
            conj = CONJ_ID + (state == CT_EST)
            match = probe_match(layout, "ovs", port.flow)
            head = f"table={T_RULES_INGRESS},priority={PRIO_RULE},ct_state={state}+trk,{match},reg5={p}"
            if firewall == "ovs":
                flows += [
                    f"{head},actions=conjunction({conj},2/2)",
                    f"table={T_RULES_INGRESS},priority={PRIO_RULE},conj_id={conj},ct_state={state}+trk,ip,"
                    f"reg5={p},actions={commit},output:{p}",
                ]
            else:
                flows.append(f"{head},actions=resubmit(,{T_GROUP})")
    return [c + f for f in flows]


def _ovs_base_flows(port: EPort) -> list[str]:
    """The port's 20 flows that do not depend on its rules (IPv4; the OVS firewall's base flows).

    Classification (table 0 in_port, table 60 dl_dst), egress base (71: the
    spoof-checked IP into conntrack, ARP, DHCP request, DHCP-server drop,
    drop the rest), egress rules' frame (72: established and related accepted,
    invalid and marked connections dropped), accept (73), ingress base (81:
    conntrack, DHCP reply, ARP, drop the rest) and the ingress rules' frame (82).
    """
    p, z = port.ofport, port.zone
    ct = "ct(table={t},zone=NXM_NX_REG6[0..15])"
    regs = f"load:{p}->NXM_NX_REG5[],load:{z}->NXM_NX_REG6[]"
    flows = [
        f"table={T_CLASSIFY},priority=100,in_port={p},actions={regs},resubmit(,{T_BASE_EGRESS})",
        f"table={T_TRANSIENT},priority=90,dl_dst={port.mac},actions={regs},resubmit(,{T_BASE_INGRESS})",
        f"table={T_BASE_EGRESS},priority=95,ip,reg5={p},dl_src={port.mac},nw_src={port.ip},"
        f"actions={ct.format(t=T_RULES_EGRESS)}",
        f"table={T_BASE_EGRESS},priority=90,arp,reg5={p},dl_src={port.mac},arp_spa={port.ip},actions=NORMAL",
        f"table={T_BASE_EGRESS},priority=80,udp,reg5={p},dl_src={port.mac},tp_src=68,tp_dst=67,"
        f"actions=resubmit(,{T_ACCEPT_EGRESS})",
        *_ovs_pair_flows(port),
        f"table={T_BASE_EGRESS},priority=70,udp,reg5={p},tp_src=67,tp_dst=68,actions=drop",
        f"table={T_BASE_EGRESS},priority=10,reg5={p},actions=drop",
        f"table={T_ACCEPT_EGRESS},priority=90,reg5={p},actions=resubmit(,{T_TRANSIENT})",
        f"table={T_BASE_INGRESS},priority=95,ip,reg5={p},actions={ct.format(t=T_RULES_INGRESS)}",
        f"table={T_BASE_INGRESS},priority=96,udp,reg5={p},tp_src=67,tp_dst=68,actions=output:{p}",
        f"table={T_BASE_INGRESS},priority=90,arp,reg5={p},actions=output:{p}",
        f"table={T_BASE_INGRESS},priority=10,reg5={p},actions=drop",
    ]
    for table, accept in ((T_RULES_EGRESS, f"resubmit(,{T_ACCEPT_EGRESS})"), (T_RULES_INGRESS, f"output:{p}")):
        flows += [
            f"table={table},priority=80,ct_state={state}+trk,ip,reg5={p},actions={accept}" for state in ("+est", "+rel")
        ]
        flows += [
            f"table={table},priority=50,ct_state=+inv+trk,reg5={p},actions=drop",
            f"table={table},priority=40,ct_mark=0x1,reg5={p},actions=drop",
        ]
    return flows


def _ovs_pair_flows(port: EPort) -> list[str]:
    """Each allowed address pair's table-71 flows: its IP into conntrack, its ARP, its DHCP request (as
    ``_initialize_egress`` writes them for a pair with the port's MAC)."""
    p, ct = port.ofport, f"ct(table={T_RULES_EGRESS},zone=NXM_NX_REG6[0..15])"
    flows = []
    for pair in port.pairs:
        flows += [
            f"table={T_BASE_EGRESS},priority=95,ip,reg5={p},dl_src={port.mac},nw_src={pair},actions={ct}",
            f"table={T_BASE_EGRESS},priority=90,arp,reg5={p},dl_src={port.mac},arp_spa={pair},actions=NORMAL",
            f"table={T_BASE_EGRESS},priority=80,udp,reg5={p},dl_src={port.mac},nw_src={pair},tp_src=68,tp_dst=67,"
            f"actions=resubmit(,{T_ACCEPT_EGRESS})",
        ]
    return flows


def ovs_port_matches(port: EPort) -> list[str]:
    """Non-strict matches that together cover every flow of :func:`ovs_port_flows` (``remove_port_filter``)."""
    return [
        f"table={T_CLASSIFY},in_port={port.ofport}",
        f"table={T_TRANSIENT},dl_dst={port.mac}",
        f"reg5={port.ofport}",
    ]


def ovs_group_flows(layout: Layout, firewall: str, ips) -> list[str]:
    """The host's group object: conjunction dimension 1/2 per member IP and ct_state class, or the subtable entries."""
    if firewall == "ovs":
        return [
            f"{match},actions=conjunction({CONJ_ID + (state == CT_EST)},1/2)"
            for ip in sorted(ips)
            for state, match in _dimension1(layout, ip)
        ]
    return [
        f"table={T_GROUP},priority={PRIO_RULE},ip,nw_src={ip},actions=ct(commit,zone=NXM_NX_REG6[0..15]),"
        f"output:NXM_NX_REG5[]"
        for ip in sorted(ips)
    ]


def ovs_group_matches(layout: Layout, firewall: str, ip: str) -> list[str]:
    """The matches (for ``del-flows --strict``) of one member IP's group-object entries."""
    if firewall == "ovs":
        return [match for _, match in _dimension1(layout, ip)]
    return [f"table={T_GROUP},priority={PRIO_RULE},ip,nw_src={ip}"]


def _dimension1(layout: Layout, ip: str) -> list[tuple[str, str]]:
    """(ct_state class, match) of *ip*'s dimension-1 flows: one per class, as ConjIPFlowManager writes them."""
    return [
        (
            state,
            f"table={T_RULES_INGRESS},priority={PRIO_RULE},ct_state={state}+trk,{probe_match(layout, 'ovs')},"
            f"nw_src={ip}",
        )
        for state in (CT_NEW, CT_EST)
    ]


def member_ips(members: list[Member]) -> list[str]:
    """The group's addresses (fixed and pair ones, as the data plane names them), sorted."""
    return sorted(group_addresses(members))
