"""sg-fanout: what the emulated agent writes per port and per member IP is what the model counts.

The twin compares ``rules_written``; this checks the two sides' units without
root: the rules/flows the emulation renders for one port's filter and for one
member IP in a group object, against the model's per-strategy sizes.
"""

from __future__ import annotations

import pytest

from labtwin.description import load_cloud
from labtwin.scenarios import topologies_dir
from labtwin.scenarios.sg_fanout.emulation import rules
from labtwin.scenarios.sg_fanout.model.strategies import OVS_DIM1_FLOWS_PER_IP, GroupRules, filter_size
from labtwin.scenarios.sg_fanout.spec import AGENT_FIREWALLS, generated_layout, group_addresses, layout_from_cloud

LAYOUTS = {
    "generated": generated_layout(6, 2, "spread", 1, 0),
    "generated, 2 pairs each": generated_layout(6, 2, "spread", 1, 0, address_pairs=2),
    "sg-fanout.yaml": layout_from_cloud(load_cloud(topologies_dir() / "sg-fanout.yaml"), "spread", 1, 0),
}


def rendered_filter(firewall: str, layout, port, member_ips: list[str]) -> list[str]:
    if firewall in ("iptables", "ipset"):
        return [line for line in rules.port_chains(port, layout, firewall, member_ips) if line.startswith("-A ")]
    return rules.ovs_port_flows(port, layout, firewall)


@pytest.mark.parametrize("name", sorted(LAYOUTS))
@pytest.mark.parametrize("firewall", AGENT_FIREWALLS)
def test_a_members_rendered_filter_has_the_models_size(name, firewall):
    layout = LAYOUTS[name]
    ports = rules.eports(layout)
    member_ips = sorted(group_addresses(layout.members))  # fixed and pair addresses
    port = ports[layout.members[0].name]
    written = rendered_filter(firewall, layout, port, member_ips)
    assert len(set(written)) == len(written)  # no two identical flows (OVS would keep one)
    assert len(written) == filter_size(
        firewall, GroupRules(layout.remote_rules, layout.other_rules), len(member_ips), True, own_pairs=len(port.pairs)
    )


@pytest.mark.parametrize("firewall,per_ip", [("ovs", OVS_DIM1_FLOWS_PER_IP), ("subtable", 1)])
def test_one_member_ip_in_the_group_object_is_what_the_model_counts(firewall, per_ip):
    layout = LAYOUTS["generated"]
    one = rules.ovs_group_flows(layout, firewall, ["10.64.0.10"])
    assert len(set(one)) == len(one) == per_ip * layout.remote_rules
    assert len(rules.ovs_group_matches(layout, firewall, "10.64.0.10")) == len(one)
    assert rules.ipset_restore("s", ["10.64.0.10"]).count("\nadd ") == 1  # ipset: one entry per member IP


# --- what reaches the kernel: Neutron's diff (control=neutron) against labtwin's rebuild -----------------------
def one_join(firewall: str, writes: str, members: int = 6) -> dict:
    from labtwin.scenarios.sg_fanout.calibrate import MEASURED_PROFILE
    from labtwin.scenarios.sg_fanout.model import simulate_layout, summarize

    layout = generated_layout(members, 2, "spread", 1, 1)
    return summarize(simulate_layout(layout, firewall, str(MEASURED_PROFILE), 1, writes))


def test_neutrons_diff_writes_one_rule_per_member_under_iptables_and_none_under_ipset():
    """6 members over 2 hosts (3 each), one join onto compute-1, then the newest existing member leaves.

    iptables: the join adds R=1 rule to each of the 6 members' chains (each written) plus the new port's
    filter; the leave deletes rules (nothing written). ipset: the members' chains do not change at all.
    """
    rules_ = GroupRules(1, 1)
    new_port = filter_size("iptables", rules_, 7, True)
    diff = one_join("iptables", "diff")
    assert (diff["filters_written"], diff["rules_written"], diff["filters_removed"]) == (7, 6 + new_port, 1)
    rebuild = one_join("iptables", "rebuild")
    assert rebuild["rules_written"] > diff["rules_written"] and rebuild["filters_written"] > 7  # the leave rewrites
    assert diff["refreshes_total"] == rebuild["refreshes_total"]  # Neutron recomputes the same filters either way

    ipset = one_join("ipset", "diff")
    # the new port's filter, and one set entry per host on the join and on the leave
    assert (ipset["filters_written"], ipset["group_writes"]) == (1, 4)
    assert ipset["rules_written"] == filter_size("ipset", rules_, 7, True) + 4


@pytest.mark.parametrize("pairs", [1, 3])
def test_each_pair_address_is_one_more_member_address_for_every_driver(pairs):
    """6 members over 2 hosts with *pairs* allowed address pairs each, one join (Neutron's diff): the pair
    addresses are group members (Neutron's ``_select_ips_for_remote_group``), so under iptables each member's
    chain gains a rule per address of the new port, under ipset and OVS each host's set or dimension-1 flows
    gain an entry per address, and the new port's own filter holds its pairs' anti-spoofing rules or flows."""
    from labtwin.scenarios.sg_fanout.calibrate import MEASURED_PROFILE
    from labtwin.scenarios.sg_fanout.model import simulate_layout, summarize

    def join(firewall: str, k: int) -> dict:
        layout = generated_layout(6, 2, "spread", 1, 0, address_pairs=k)
        return summarize(simulate_layout(layout, firewall, str(MEASURED_PROFILE), 1, "diff"))

    rules_, per = GroupRules(1, 1), 1 + pairs  # addresses per port
    iptables = join("iptables", pairs)
    new_port = filter_size("iptables", rules_, 7 * per, True, own_pairs=pairs)  # all but its own fixed IP
    assert iptables["rules_written"] == 6 * per + new_port
    assert join("iptables", 0)["rules_written"] == 6 + filter_size("iptables", rules_, 7, True)  # pairs change it
    ipset = join("ipset", pairs)
    assert ipset["rules_written"] == filter_size("ipset", rules_, 7, True, own_pairs=pairs) + 2 * per  # 2 hosts
    ovs = join("ovs", pairs)
    port_flows = filter_size("ovs", GroupRules(1, 1, 1, 1), 0, False, neutron=True, own_pairs=pairs)
    assert ovs["rules_written"] == 7 * port_flows + 2 * per * OVS_DIM1_FLOWS_PER_IP
    assert ovs["conntrack_deletes"] == 7 * 2 * per  # both directions, each of a written port's addresses


def test_a_topologys_pairs_are_read_and_a_pair_with_its_own_mac_is_refused(tmp_path):
    text = (topologies_dir() / "sg-fanout.yaml").read_text()
    cloud = load_cloud(topologies_dir() / "sg-fanout.yaml")
    group = layout_from_cloud(cloud, "spread", 1, 0)
    port = next(p for p in cloud.ports if p.name == group.members[0].name)
    assert all(not m.pairs for m in group.members)  # the shipped file has none
    marker = f"{{name: {port.name}, "
    assert text.count(marker) == 1

    def with_pair(pair: str, name: str):
        (tmp_path / name).write_text(text.replace(marker, f"{marker}allowed_address_pairs: [{pair}], "))
        return load_cloud(tmp_path / name)

    paired = layout_from_cloud(with_pair("{ip_address: 10.99.0.5}", "pairs.yaml"), "spread", 1, 0)
    assert next(m for m in paired.members if m.name == port.name).pairs == ("10.99.0.5/32",)
    own_mac = with_pair("{ip_address: 10.99.0.5, mac_address: 'fa:16:3e:00:00:99'}", "mac.yaml")
    with pytest.raises(ValueError, match=f"port {port.name}: allowed address pair 10.99.0.5 names MAC"):
        layout_from_cloud(own_mac, "spread", 1, 0)


def test_writes_must_be_rebuild_or_diff():
    with pytest.raises(ValueError, match="writes must be one of rebuild, diff"):
        one_join("iptables", "partial")


def test_under_neutrons_code_a_join_writes_linearly_under_iptables_and_a_constant_under_ipset():
    """neutron-29 with control=neutron (Neutron's diff): one join into M members on one host writes 2M + 15
    iptables rules (one per member chain, and the new port's filter), and 17 under ipset whatever M; labtwin's
    rebuild of every member's chains grows with M squared."""
    from labtwin import api

    def written(firewall: str, members: int, control: str = "neutron") -> int:
        run = api.simulate(
            "sg-fanout",
            firewall=firewall,
            members=members,
            hosts=1,
            placement="packed",
            control=control,
            profile="neutron-29",
        )
        return run.summary["rules_written"]

    sizes = (50, 100, 200)
    iptables = [written("iptables", m) for m in sizes]
    assert iptables == [2 * m + 15 for m in sizes]
    assert {written("ipset", m) for m in sizes} == {17}
    rebuild = [written("iptables", m, "labtwin") for m in sizes]
    assert rebuild[2] - rebuild[1] > 3 * (rebuild[1] - rebuild[0])  # quadratic: doubling M quadruples the step


def test_the_last_member_leaving_a_host_destroys_every_dimension_1_flow_it_had():
    """m-0003 is compute-3's only member: its leave destroys the host's OVS dimension-1 flow set, 2 flows per
    address per remote-group rule as written (4 addresses after the join: 8), not as a host with no port left
    would size it (0, which f76f921 counted and the kernel-diffing emulation did not: the contract case broke)."""
    from labtwin import api
    from labtwin.scenarios.sg_fanout.calibrate import MEASURED_PROFILE

    knobs = {"firewall": "ovs", "members": 3, "hosts": 3, "joins": 1, "leaves": 1}
    run = api.simulate("sg-fanout", seed=1, profile=str(MEASURED_PROFILE), **knobs)  # the contract case's twin
    ops = run.operations
    destroy = ops[(ops.op == "conj_ip_flows") & ops.detail.apply(lambda d: d.get("action") == "destroy")]
    assert list(destroy.host) == ["compute-3"]
    assert list(destroy["count"]) == [4 * OVS_DIM1_FLOWS_PER_IP]
