"""sg-fanout beyond self-referencing groups (issue 12): a port joins group B that other groups' rules name.

Which ports must learn of the join, as Neutron 29 (and Train) decides it: every L2 agent gets the
``security_groups_member_updated([B])`` cast and refreshes its local ports whose groups' rules name B as
remote group (``security_group_source_groups``; neutron/agent/securitygroups_rpc.py
``_security_group_updated``). The expectations are written here from the topology files by hand (which
port is in which group, which rule names which group, the iptables driver's 14 base rules), not from the
model's code.
"""

from pathlib import Path

import pytest

from labtwin import api
from labtwin.description import load_cloud, parse_cloud
from labtwin.records import Probe
from labtwin.scenarios.base import TopologyUnfit
from labtwin.scenarios.sg_fanout.model.process import FanoutRun
from labtwin.scenarios.sg_fanout.profiles import TRAIN_2019, save_profile
from labtwin.scenarios.sg_fanout.spec import GroupChoiceError, layout_from_cloud, studied_group

HERE = Path(__file__).parent / "topologies"
CROSS = HERE / "cross-group.yaml"  # web, ops -> backend -> backend; lb -> web; edge: nothing
SMALL = HERE / "remote-group.yaml"  # web -> db; db references nothing
BASE = 14  # the hybrid driver's rules of an IPv4 port besides its SG rules (i 5, o 7, s 2: iptables_firewall.py)


def refilter_by_host(run) -> dict:
    """host -> ports the first cast put in devices_to_refilter (the join's), as the model's events say."""
    ev = run.events
    cast = ev[ev.kind == "rpc_received"]
    first = cast[cast.t == cast.t.min()]
    return {r.host: r.detail["refilter"] for r in first.itertuples() if r.detail["refilter"]}


def join_problems(run, refilter: dict, refreshes: int, rules: int) -> list[str]:
    """What differs from the hand-written expectation of one join: who is refreshed per host, how many filters
    were recomputed, how many rules were written."""
    s, seen = run.summary, refilter_by_host(run)
    out = [f"refilter per host {seen} != {refilter}"] if seen != refilter else []
    out += [f"refreshes {s['refreshes_total']} != {refreshes}"] if s["refreshes_total"] != refreshes else []
    out += [f"rules {s['rules_written']} != {rules}"] if s["rules_written"] != rules else []
    return out


def ready_problems(run, hosts: set, new_host: str) -> list[str]:
    """The join's time to ready must be the end of the last of: the first loop iteration after the cast on each
    host holding a port that references the group (*hosts*), and the iteration that prepares the new port's
    filter on *new_host* (after Nova's binding and plug): no sooner, no later."""
    ev = run.events
    t_api = ev[ev.kind == "api_call"].t.min()
    t_cast = ev[ev.kind == "rpc_received"].t.min()
    ends = {}
    for r in ev[ev.kind == "loop_iteration"].itertuples():
        if r.host in hosts and r.host not in ends and r.t >= t_cast:
            ends[r.host] = r.t + r.detail["duration"]
        if r.host == new_host and r.detail["new"] and "new" not in ends:
            ends["new"] = r.t + r.detail["duration"]
    if set(ends) != hosts | {"new"}:
        return [f"hosts with work {sorted(ends)} != {sorted(hosts)} and the new port's"]
    want = round(max(ends.values()) - t_api, 6)
    got = run.summary["port_ready_s"]
    if got is None:
        return ["never ready"]
    return [] if abs(got - want) < 2e-6 else [f"port_ready_s {got} != {want} (last: {max(ends, key=ends.get)})"]


# --- which group is studied ----------------------------------------------------------------------------------
def test_the_group_is_chosen_by_the_knob_or_else_as_before():
    cross = load_cloud(CROSS)
    assert studied_group(cross).name == "backend"  # the self-referencing group with members
    assert studied_group(cross, "web").name == "web"  # referenced by lb
    assert studied_group(load_cloud(SMALL)).name == "db"  # no self-reference: the one group others name
    assert studied_group(load_cloud(Path("topologies/sg-fanout.yaml"))).name == "cluster"  # as before the knob


def test_a_bad_or_ambiguous_choice_is_a_located_error():
    cross = load_cloud(CROSS)
    with pytest.raises(GroupChoiceError, match=r"security_groups\[4\] \(edge\) as remote_group_id"):
        studied_group(cross, "edge")
    with pytest.raises(GroupChoiceError, match="no security group 'nope'"):
        studied_group(cross, "nope")
    two = parse_cloud(
        """
name: two-selfish
hosts: [{name: h1, role: compute}]
networks: [{name: n}]
subnets: [{name: s, network_id: n, cidr: 10.9.0.0/24}]
security_groups:
  - {name: a, rules: [{direction: ingress, ethertype: IPv4, remote_group_id: a}]}
  - {name: b, rules: [{direction: ingress, ethertype: IPv4, remote_group_id: b}]}
ports:
  - {name: p1, network_id: n, binding:host_id: h1, security_groups: [a]}
  - {name: p2, network_id: n, binding:host_id: h1, security_groups: [b]}
"""
    )
    with pytest.raises(GroupChoiceError, match=r"security_groups\[0\] \(a\), security_groups\[1\] \(b\).*group="):
        studied_group(two)
    assert studied_group(two, "b").name == "b"
    with pytest.raises(TopologyUnfit, match=r"cross-group.yaml: .*knob group=edge.*security_groups\[4\]"):
        api.simulate("sg-fanout", topology=CROSS, group="edge")
    with pytest.raises(GroupChoiceError, match="generated cloud has Neutron's default group only"):
        api.simulate("sg-fanout", group="web")


def test_the_layout_names_the_referencing_ports_and_not_the_chain():
    layout = layout_from_cloud(load_cloud(CROSS), "spread", 1, 0)
    assert [m.name for m in layout.members] == ["backend-1", "backend-2"]
    assert [m.name for m in layout.referrers] == ["web-1", "web-2", "ops-1"]  # lb-1 references web, not backend
    assert layout.outsider.name == "lb-1"  # in no group backend admits, referencing other groups only
    assert layout.probe_of("ops-1") == "tcp:22" and layout.probe_of("web-1") == "icmp"


# --- the model: who gets work, how much, when the port is ready ------------------------------------------------
def test_a_join_refreshes_the_members_and_the_ports_of_groups_referencing_it():
    """Join on compute-3 (spread). M=3 addresses after it. Members: 14 + egress + (3-1) = 17 rules; web and ops
    ports: 14 + egress + 3 = 18; the new port (a member) 17."""
    run = api.simulate("sg-fanout", topology=CROSS, firewall="iptables", seed=1)
    assert run.summary["hosts_refreshed"] == 3 and run.summary["referrers"] == 3
    assert join_problems(run, {"compute-1": 1, "compute-2": 2, "compute-3": 2}, 6, 17 * 2 + 18 * 3 + 17) == []
    ipset = api.simulate("sg-fanout", topology=CROSS, firewall="ipset", seed=1)
    # each filter 14 + egress + one --match-set rule; the set gains one entry on each of the 3 hosts
    assert join_problems(ipset, {"compute-1": 1, "compute-2": 2, "compute-3": 2}, 6, 6 * 16 + 3) == []
    assert ipset.summary["group_writes"] == 3


def test_a_join_into_a_group_that_does_not_reference_itself_refreshes_only_its_referrers():
    """remote-group.yaml, packed: the join lands on compute-2 beside db-1; only web-1 (compute-1) learns of it.
    web-1: 14 + egress + 2 addresses = 17; the new port: 14 + egress = 15."""
    run = api.simulate("sg-fanout", topology=SMALL, firewall="iptables", placement="packed", seed=1)
    assert join_problems(run, {"compute-1": 1}, 2, 17 + 15) == []
    seen = {(p.src, p.dst): p.verdict for p in run.records if isinstance(p, Probe)}
    assert seen == {
        ("j-0001", "web-1"): "allowed",  # web admits db
        ("j-0001", "bastion"): "blocked",
        ("bastion", "j-0001"): "blocked",
    }  # db-1 and web-1 -> j-0001: db admits nobody, so nothing is probed back


def test_a_join_at_the_end_of_a_chain_refreshes_the_next_link_only():
    """group=web: lb references web, web references backend. lb-1 is refreshed (14 + egress + 3 web addresses
    = 18); web's own members are not (web does not reference web); the new port's rule from backend expands over
    backend's 2 addresses: 14 + egress + 2 = 17."""
    run = api.simulate("sg-fanout", topology=CROSS, firewall="iptables", group="web", seed=1)
    assert join_problems(run, {"compute-1": 1}, 2, 18 + 17) == []


#: (profile, control, firewall): labtwin's agent under every strategy; Neutron's under its own firewalls (the
#: subtable is a PTG proposal Neutron's agent has none of)
READY_CASES = [("train-2019", "labtwin", fw) for fw in ("iptables", "ipset", "ovs", "subtable")] + [
    ("neutron-29", "neutron", fw) for fw in ("iptables", "ipset", "ovs")
]


@pytest.mark.parametrize("profile,control,firewall", READY_CASES)
def test_the_port_is_ready_when_the_last_referencing_host_has_applied(profile, control, firewall):
    run = api.simulate("sg-fanout", topology=CROSS, firewall=firewall, profile=profile, control=control, seed=3)
    # referencing ports on all three hosts (lb-1 aside, compute-1 has backend-1); the new port on compute-3
    assert ready_problems(run, {"compute-1", "compute-2", "compute-3"}, "compute-3") == []


def test_the_diff_era_writes_one_rule_per_referencing_filter():
    """Neutron's own agent (control=neutron: IptablesManager's diff): web-1's chain gains the new address's
    RETURN rule alone; the new port's 15 rules are new."""
    run = api.simulate("sg-fanout", topology=SMALL, placement="packed", control="neutron", profile="neutron-29")
    assert join_problems(run, {"compute-1": 1}, 2, 1 + 15) == []


def test_a_wrong_selection_of_who_is_refreshed_is_caught(monkeypatch):
    """The selection as it was (the group's members, as if every group referenced itself) must fail the checks."""
    monkeypatch.setattr(FanoutRun, "watches", lambda self, port: port in self.members)
    small = api.simulate("sg-fanout", topology=SMALL, firewall="iptables", placement="packed", seed=1)
    assert join_problems(small, {"compute-1": 1}, 2, 17 + 15)
    cross = api.simulate("sg-fanout", topology=CROSS, firewall="iptables", seed=1)
    assert join_problems(cross, {"compute-1": 1, "compute-2": 2, "compute-3": 2}, 6, 17 * 2 + 18 * 3 + 17)


def test_the_referrers_host_can_be_the_last_one(tmp_path, monkeypatch):
    """With Nova's binding and plug taken as instant, web-1's host (compute-1) applies after the new port's own
    on seed 1: the port is ready only then. Waiting for the new port's own filter alone is caught."""
    instant = save_profile(
        TRAIN_2019.with_overrides(nova_bind_s=0.0, nova_spawn_s=0.0, vif_plug_s=0.0), tmp_path / "instant.json"
    )
    knobs = dict(topology=SMALL, firewall="iptables", placement="packed", seed=1, profile=str(instant))
    assert ready_problems(api.simulate("sg-fanout", **knobs), {"compute-1"}, "compute-2") == []
    monkeypatch.setattr(FanoutRun, "watching", lambda self: {})
    assert ready_problems(api.simulate("sg-fanout", **knobs), {"compute-1"}, "compute-2")


def test_ovn_refuses_a_group_other_groups_reference():
    with pytest.raises(TopologyUnfit, match="under firewall=ovn.*not modelled nor emulated"):
        api.simulate("sg-fanout", topology=SMALL, firewall="ovn")


def test_the_emulation_refuses_what_it_cannot_build_before_building_anything():
    with pytest.raises(TopologyUnfit, match="NotEmulated.*control=neutron"):
        api.emulate("sg-fanout", topology=SMALL, control="neutron")
    with pytest.raises(TopologyUnfit, match="NotEmulated.*icmp, tcp:22"):
        api.emulate("sg-fanout", topology=CROSS)
    with pytest.raises(TopologyUnfit, match="NotEmulated: .*rules only; group web itself has"):
        api.emulate("sg-fanout", topology=CROSS, group="web")  # web's own rule names backend


# --- the emulation: real iptables, labtwin's agent ---------------------------------------------------------------
@pytest.fixture
def spaced(tmp_path) -> str:
    """train-2019's costs with changes 30 s apart: the model applies them one at a time, as the emulation does."""
    return str(save_profile(TRAIN_2019.with_overrides(join_interval_s=30.0), tmp_path / "spaced.json"))


@pytest.mark.emulation
def test_a_referencing_port_on_another_host_admits_the_new_member(live, spaced):
    """web-1 (compute-1) starts admitting the port that joins db (compute-2), then blocks it once db-1 leaves;
    counts and verdicts as the model's (timing: a named profile, not compared)."""
    report, model, emulation = api.twin(
        "sg-fanout",
        topology=SMALL,
        firewall="iptables",
        placement="packed",
        leaves=1,
        timing_repeats=1,
        profile=spaced,
    )
    assert report.agree, report.disagreements.to_string()
    assert list(report.not_compared.key) == ["port_ready_s"]
    seen = {(p.src, p.dst): p.verdict for p in emulation.records if isinstance(p, Probe)}
    assert seen[("j-0001", "web-1")] == "allowed" and seen[("db-1", "web-1")] == "blocked"
    assert emulation.summary["refreshes_total"] == model.summary["refreshes_total"] == 3  # web-1 twice, j once


@pytest.mark.emulation
def test_the_mixed_groups_emulate_as_modelled(live, spaced, tmp_path):
    """cross-group.yaml with ops admitting icmp too (one probe flow), ipset: backend's members and the web and
    ops ports are refreshed, lb-1 is not."""
    topology = tmp_path / "mix.yaml"
    topology.write_text(
        CROSS.read_text().replace(
            "protocol: tcp, port_range_min: 22, port_range_max: 22, remote_group_id: backend",
            "protocol: icmp, remote_group_id: backend",
        )
    )
    report, model, _ = api.twin("sg-fanout", topology=topology, firewall="ipset", timing_repeats=1, profile=spaced)
    assert report.agree, report.disagreements.to_string()
    assert refilter_by_host(model) == {"compute-1": 1, "compute-2": 2, "compute-3": 2}
