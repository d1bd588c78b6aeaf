"""labtwin's agent against Neutron's: the rules each writes for the same port, side by side.

``python -m labtwin.scenarios.sg_fanout.emulation.compare_rules --out FILE`` (root, Open vSwitch):
a generated group (3 members on one host) is realised once per firewall; Neutron 29's own agent
(``control=neutron``) writes the filters, and one member's filter is read back from the kernel.
labtwin's agent renders the same port's filter (:mod:`.rules`). Both are normalised: comments
dropped, the port's address, MAC, tap and chains, the other members' addresses and the group's set
replaced by placeholders. What is left is listed per part of the filter: the port's ingress
(``i``), egress (``o``) and anti-spoof (``s``) chains, and its jumps from the shared chains.

Under ``ovs`` (:func:`compare_flows`) the filter is the port's flows on its host's br-int, Neutron's
``OVSFirewallDriver`` on the host's private OVS against labtwin's rendering (:func:`.rules.ovs_port_flows`).
The two are printed differently (dump-flows against add-flow text), so each flow is compared by its
shape: table, priority, and which fields it matches (values kept only where they say what the flow
is for: the protocol, ``ct_state``, ICMP types and ports), listed per table.

The sg-fanout notebook shows the committed result (``traces/sg-fanout/rules-vs-neutron.json``); a
live test compares a fresh one with it, so it stays true.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from labtwin.emulation import naming
from labtwin.emulation.naming import new_run_id
from labtwin.emulation.realise import Realisation

from ..spec import generated_layout
from . import neutron_agent, rules, state
from .plan import build

#: The parts of a port's filter: its own chains, and the rules elsewhere that name its tap.
PARTS = ("i", "o", "s", "jumps")
_ZONE = re.compile(r"--zone \d+")
_COMMENT = re.compile(r'(?:^|\s)-m comment --comment (?:"[^"]*"|\S+)')


def compare(firewall: str, members: int = 3) -> dict:
    """{part: {"both": n, "only_neutron": [...], "only_labtwin": [...]}} for one member's filter."""
    layout = generated_layout(members, 1, "packed", 0, 0)
    ports = rules.eports(layout)
    the_plan, shape = build(layout, ports, firewall, new_run_id(), "neutron")
    with Realisation(the_plan) as real:
        agents = neutron_agent.start_agents(real, shape, layout, firewall, ports, set())
        dump = agents[layout.hosts[0]].read_state()["iptables"]
    port = ports[layout.members[0].name]
    others = [m.ip for m in layout.members if m.ip != port.ip]
    neutron = _parts(_chains(dump.splitlines()), port)
    ours_text = ["*filter", *rules.port_chains(port, layout, firewall, sorted(m.ip for m in layout.members))]
    ours_text += [f"-A {chain} {rule}" for chain, rule in rules.port_jump_rules(port)]
    ours = _parts(_chains(ours_text), port)
    placeholders = _placeholders(port, others, rules.group_set(layout))
    return {part: _difference(neutron[part], ours[part], placeholders) for part in PARTS}


#: Match fields whose value says what a flow is for (kept in its shape); other values are addresses and ports.
_KEPT_VALUES = ("ct_state", "icmp_type", "tp_src", "tp_dst", "dl_type", "nw_proto", "ct_mark")


def compare_flows(members: int = 3) -> dict:
    """{table: {"both": n, "only_neutron": [...], "only_labtwin": [...]}} for one member's OVS filter."""
    layout = generated_layout(members, 1, "packed", 0, 0)
    ports = rules.eports(layout)
    the_plan, shape = build(layout, ports, "ovs", new_run_id(), "neutron")
    with Realisation(the_plan) as real:
        neutron_agent.plug_own_ovs(real, shape, ports)
        ports = neutron_agent.with_own_ofports(real, shape, ports)
        agents = neutron_agent.start_agents(real, shape, layout, "ovs", ports, set())
        dump = agents[layout.hosts[0]].read_state()["flows"]
    port = ports[layout.members[0].name]
    if port.ofport is None:
        raise RuntimeError(f"{port.name} has no ofport on its host's own OVS")
    owner_of = state.ovs_owner({port.ofport: "port"}, {port.mac: "port"}, "group")
    theirs = [_shape(f.table, f.match) for f in state.parse_dump_flows(dump) if owner_of(f) == "port"]
    mine = [_shape(*_table_and_match(text)) for text in rules.ovs_port_flows(port, layout, "ovs")]
    return {
        str(table): _shape_difference([m for t, m in theirs if t == table], [m for t, m in mine if t == table])
        for table in sorted({t for t, _ in theirs + mine})
    }


def _table_and_match(flow: str) -> tuple[int, str]:
    """(table, priority and match) of an add-flow text ``cookie=..,table=..,priority=..,<match>,actions=..``."""
    head = flow.split(",actions=", 1)[0]
    fields = [f for f in head.split(",") if not f.startswith(("cookie=", "table="))]
    table = next(int(f.split("=", 1)[1]) for f in head.split(",") if f.startswith("table="))
    return table, ",".join(fields)


def _shape(table: int, match: str) -> tuple[int, str]:
    """A flow's shape: its table, and its priority and match fields with only the telling values kept."""
    out = []
    for field in match.replace(" ", ",").split(","):
        if not field:
            continue
        key, _, value = field.partition("=")
        if key == "ct_state":  # "+new-est+trk" and "+trk+new-est" alike: the flags, in order
            value = "".join(sorted(re.findall(r"[+-][a-z]+", value)))
        out.append(field if not value or key in _KEPT_VALUES or key == "priority" else key)
    return table, ",".join(sorted(out))


def _shape_difference(neutron: list[str], ours: list[str]) -> dict:
    return {
        "both": sum(1 for m in neutron if m in ours),
        "neutron_flows": len(neutron),
        "labtwin_flows": len(ours),
        "only_neutron": sorted(set(neutron) - set(ours)),
        "only_labtwin": sorted(set(ours) - set(neutron)),
    }


def _chains(lines: list[str]) -> dict[tuple[str, str], tuple[str, ...]]:
    """(table, chain) -> rules, from iptables-save or restore text."""
    out: dict[tuple[str, str], list[str]] = {}
    table = ""
    for line in lines:
        if line.startswith("*"):
            table = line[1:].strip()
        elif line.startswith("-A "):
            _, chain, rule = line.split(" ", 2)
            out.setdefault((table, chain), []).append(rule)
    return {key: tuple(r) for key, r in out.items()}


def _parts(chains: dict, port) -> dict[str, list[str]]:
    own = {d: ("filter", chain) for d, chain in zip("ios", port.chains())}
    parts = {d: list(chains.get(key, ())) for d, key in own.items()}
    parts["jumps"] = [
        f"{table} {chain}: {rule}"
        for (table, chain), rs in chains.items()
        if (table, chain) not in own.values()
        for rule in rs
        if port.tap in rule or _qvb(port) in rule
    ]
    return parts


def _qvb(port) -> str:
    return naming.prefixed("qvb", port.port_id)


def _placeholders(port, others: list[str], group_set: str) -> list[tuple[str, str]]:
    subs = [(port.tap, "<tap>"), (_qvb(port), "<qvb>"), (port.ip, "<port-ip>")]
    subs += [(port.mac.upper(), "<mac>"), (port.mac, "<mac>")]
    subs += [(c, f"<{d}-chain>") for d, c in zip("ios", port.chains())]
    subs += [(group_set, "<group-set>")] + [(ip, "<member-ip>") for ip in others]
    return subs


def _normal(rule: str, placeholders: list[tuple[str, str]]) -> str:
    text = _ZONE.sub("--zone <zone>", _COMMENT.sub("", rule))
    for old, new in placeholders:
        text = text.replace(old, new)
    return " ".join(text.split())


def _difference(neutron: list[str], ours: list[str], placeholders) -> dict:
    theirs = [_normal(r, placeholders) for r in neutron]
    mine = [_normal(r, placeholders) for r in ours]
    return {
        "both": sum(1 for r in theirs if r in mine),
        "only_neutron": sorted(set(theirs) - set(mine)),
        "only_labtwin": sorted(set(mine) - set(theirs)),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    result = {firewall: compare(firewall) for firewall in ("iptables", "ipset")}
    result["ovs"] = compare_flows()
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps(result, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
