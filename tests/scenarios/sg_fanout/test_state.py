"""sg-fanout kernel-state parsers and diffs, on state recorded from a live run (members=2, hosts=2, one join).

On compute-1 the join rewrote m-0001's filter and created j-0001's; the
outsider's filter was not touched. These samples need no root.
"""

import json
from pathlib import Path

import pytest

from labtwin.scenarios.sg_fanout.emulation import state

SAMPLES = Path(__file__).parent / "samples"


def sample(firewall, name):
    return (SAMPLES / f"{firewall}-{name}").read_text()


def meta(firewall):
    return json.loads(sample(firewall, "meta.json"))


def hybrid_change(firewall):
    owner = {c: name for name, p in meta(firewall)["ports"].items() for c in p["chains"]}
    return state.iptables_change(
        owner,
        state.parse_iptables_save(sample(firewall, "before.iptables")),
        state.parse_iptables_save(sample(firewall, "after.iptables")),
        state.parse_nft_handles(sample(firewall, "before.nft")),
        state.parse_nft_handles(sample(firewall, "after.nft")),
    )


def test_iptables_per_member_rules_change_the_refreshed_filter():
    change = hybrid_change("iptables")
    assert change.written == {"m-0001", "j-0001"}
    assert change.changed == {"m-0001", "j-0001"}  # m-0001's chain gained j-0001's address
    assert "outsider" not in change.written
    assert change.rules_written > 0


def test_ipset_rewrites_the_member_filter_without_changing_it():
    change = hybrid_change("ipset")
    assert change.written == {"m-0001", "j-0001"}  # new rule handles: update_port_filter rebuilt it
    assert change.changed == {"j-0001"}  # ... but the --match-set rule text is the same
    sets = state.parse_ipset_save(sample("ipset", "after.ipset"))
    before = state.parse_ipset_save(sample("ipset", "before.ipset"))
    (name,) = sets
    assert len(sets[name]) == len(before[name]) + 1
    assert state.set_change(name, before, sets).written == {name}
    assert state.set_change(name, sets, sets).written == set()


def test_nft_handles_are_per_chain_and_not_table_headers():
    handles = state.parse_nft_handles(sample("ipset", "after.nft"))
    assert all(isinstance(h, int) for hs in handles.values() for h in hs)
    rules = state.parse_iptables_save(sample("ipset", "after.iptables"))
    for chain, hs in handles.items():
        if chain in rules:
            assert len(hs) == len(rules[chain]), chain


@pytest.mark.parametrize("firewall, changed", [("ovs", {"j-0001"}), ("subtable", {"j-0001"})])
def test_ovs_rewrites_seen_by_flow_age(firewall, changed):
    m = meta(firewall)
    ports = m["ports"]
    owner_of = state.ovs_owner(
        {p["ofport"]: n for n, p in ports.items()}, {p["mac"]: n for n, p in ports.items()}, "group"
    )
    before, after = (
        state.parse_dump_flows(sample(firewall, "before.flows")),
        state.parse_dump_flows(sample(firewall, "after.flows")),
    )
    filters = state.flows_change(lambda f: None if owner_of(f) == "group" else owner_of(f), before, after, m["apply_s"])
    group = state.group_flows_change(lambda f: owner_of(f) == "group", before, after)
    rewritten = {"m-0001", "j-0001"} if firewall == "ovs" else {"j-0001"}  # the subtable leaves m-0001 alone
    assert filters.written == rewritten
    assert filters.changed == changed
    assert group.written == {"group"} and group.rules_written == 1  # one new member IP in the group object


def test_dump_flows_parser_keeps_match_and_age():
    flows = state.parse_dump_flows(sample("ovs", "after.flows"))
    assert flows and all(f.duration >= 0 for f in flows)
    assert any(f.match.startswith("priority=0") and f.table == 0 for f in flows)
    assert any("conjunction(" in f.actions for f in flows)
