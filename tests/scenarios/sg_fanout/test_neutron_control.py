"""control=neutron: Neutron 29's own security-group agent code programs the emulated hosts.

What must hold: the real traffic verdicts are right under Neutron's rules; the counts show
what Neutron 29 writes (a diff: under ipset a join writes the new port's filter and one set
entry per host, no existing member's chain; under iptables one RETURN rule per existing
local member, each such chain written, nothing else); Neutron's agent was really asked
(``update_security_group_members`` on every host); and nothing of it outlives the run,
after a normal end or a SIGKILL followed by ``labtwin clean``.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

from labtwin import api
from labtwin.emulation.clean import clean
from labtwin.scenarios.sg_fanout.emulation import emulate
from labtwin.scenarios.sg_fanout.model.strategies import NEUTRON_OVS_PORT_BASE_FLOWS, OVS_FLOWS_PER_OWN_PAIR

KNOBS = {"control": "neutron", "members": 3, "hosts": 2, "joins": 1, "leaves": 1, "timing_repeats": 2}


def verdicts(run):
    from labtwin.records import Probe

    return {
        (r.src, r.dst, r.detail.get("join") or r.detail.get("leave")): r.verdict
        for r in run.records
        if isinstance(r, Probe)
    }


@pytest.mark.emulation
@pytest.mark.parametrize("firewall,pairs", [("ipset", 0), ("iptables", 1), ("ovs", 1)])
def test_neutrons_agent_programs_the_hosts_and_the_model_agrees(live, ledger_dir, snapshot, firewall, pairs):
    """With one allowed address pair per port under iptables and ovs: Neutron's server gives the pair
    addresses as group members, so the new port's VIP reaches the members too."""
    before = snapshot()
    report, model, run = api.twin("sg-fanout", firewall=firewall, address_pairs=pairs, **KNOBS)
    assert snapshot() == before
    assert report.agree, report.disagreements.to_string()  # counts and verdicts; timing: not Neutron's calibration
    assert model.summary["kernel_writes"] == "diff"
    s = run.summary
    assert s["timed_joins"] == 1 and run.design["timing_repeats"] == 2  # a rejoin would reuse a trusted tap
    assert s["control"] == "neutron"
    seen = verdicts(run)
    members = ("m-0001", "m-0002", "m-0003")
    for m in members:
        assert seen[("j-0001", m, "j-0001")] == "allowed" and seen[(m, "j-0001", "j-0001")] == "allowed"
    assert seen[("j-0001", "outsider", "j-0001")] == "blocked" == seen[("outsider", "j-0001", "j-0001")]
    assert all(seen[("m-0003", m, "m-0003")] == "blocked" for m in members[:2])  # the departed address
    vip = [src for src, _, _ in seen if "@" in src]
    assert vip == (["j-0001@10.66.0.4"] * 3 if pairs else [])
    assert all(seen[(vip[0], m, "j-0001")] == "allowed" for m in members) if pairs else True
    calls = s["neutron_calls"]
    assert s["conntrack_deletes"] > 0  # the leave's connections, queued by Neutron's own cleanup code
    # the join and the leave each reach both hosts; converging is not counted
    assert calls["update_security_group_members"] >= 4 and calls["prepare_port_filter"] == 1
    assert calls["remove_port_filter"] == 1
    # spread: m-0001, m-0003 on compute-1, m-0002 and the outsider on compute-2; j-0001 lands on compute-2
    if firewall == "ipset":
        # join: the new port's chains and one set entry per host; leave: m-0003's chains go, one entry out per host
        assert (s["filters_written"], s["group_writes"], s["filters_removed"]) == (1, 4, 1)
    elif firewall == "ovs":
        # update_port_filter rewrites each refreshed port's flows (a new cookie, then the old ones deleted):
        # join: the 3 members and the new port; leave: the 3 remaining; dimension-1 flows by diff on each host
        assert (s["filters_written"], s["group_writes"], s["filters_removed"]) == (7, 4, 1)
        # egress any v4/v6, ingress from the group v4/v6; the port's pair (its ARP, IP and DHCP flows)
        per_port = NEUTRON_OVS_PORT_BASE_FLOWS + 2 * 2 + 4 * 2 + OVS_FLOWS_PER_OWN_PAIR
        # + two addresses (the fixed IP and the pair) in or out per host, 2 ct_state flows each
        assert s["rules_written"] == 7 * per_port + 4 * 2 * 2
        # each written port's invalid-marked connections, both directions, queued for conntrack -D
        assert s["conntrack_deletes"] == model.summary["conntrack_deletes"] == 2 * 2 * 7  # fixed IP and pair
    else:
        # join: one RETURN rule in each existing member's ingress chain; leave: the remaining members' chains
        # lose m-0003's rule (a deletion writes nothing new) and its own chains go
        assert (s["filters_written"], s["group_writes"], s["filters_removed"]) == (4, 0, 1)
        assert s["rules_written"] < 4 * 16  # a diff, not a rebuild of every member's chains


def test_the_own_ovs_shape_gives_each_host_a_private_ovs_and_no_linux_bridge():
    """firewall=ovs under control=neutron: taps in the host namespace, br-int on the host's own OVS."""
    from labtwin.emulation.private_ovs import PRIVATE_OVS_ROOT
    from labtwin.scenarios.sg_fanout.emulation import rules
    from labtwin.scenarios.sg_fanout.emulation.plan import build
    from labtwin.scenarios.sg_fanout.spec import generated_layout

    layout = generated_layout(3, 2, "spread", 1, 0)
    ports = rules.eports(layout)
    the_plan, shape = build(layout, ports, "ovs", "k3ll", "neutron")
    assert set(shape.own_ovs) == set(layout.hosts) and not shape.hybrid
    for host, ovs in shape.own_ovs.items():
        node = the_plan.ns(shape.host_ns[host]).node
        assert ovs.rundir == f"{PRIVATE_OVS_ROOT}/{node}" and shape.host_bridge[host] == ovs.mgmt("br-int")
        assert not any("type bridge" in line for line in the_plan.config[shape.host_ns[host]].ip_batch)
    # only the fabric is on the machine's OVS; every port's tap is in its host's namespace
    assert [b.owner for b in the_plan.ovs_bridges] == ["fabric"]
    taps = {(v.b, v.b_dev) for v in the_plan.veths}
    assert all((shape.host_ns[p.host], p.tap) in taps for p in ports.values())


def test_neutrons_ovs_firewall_filter_counts_its_ipv6_flows_too():
    """Under Neutron's agent a port's OVS filter is 43 base flows plus its IPv4 and IPv6 rules' flows."""
    from labtwin.scenarios.sg_fanout.model.strategies import GroupRules, filter_size
    from labtwin.scenarios.sg_fanout.spec import generated_layout

    layout = generated_layout(3, 1, "packed", 1, 0)
    assert (layout.remote_rules, layout.other_rules, layout.ipv6_rules) == (1, 1, (1, 1))
    rules_ = GroupRules(layout.remote_rules, layout.other_rules, *layout.ipv6_rules)
    assert filter_size("ovs", rules_, 4, True, neutron=True) == 43 + 2 * 2 + 4 * 2 == 55
    assert filter_size("ovs", rules_, 4, True) == 20 + 2 + 4  # labtwin's agent: IPv4 only (stated)


def test_neutron_control_refuses_firewalls_it_does_not_run():
    with pytest.raises(ValueError, match="firewall=subtable is emulated by labtwin's own agent only"):
        emulate(None, {"control": "neutron", "firewall": "subtable"}, seed=1)


KILLED = """
import sys, time
from labtwin.scenarios.sg_fanout.spec import SgFanoutDesign, generated_layout
from labtwin.scenarios.sg_fanout.emulation import rules, neutron_agent
from labtwin.scenarios.sg_fanout.emulation.plan import build
from labtwin.emulation.realise import Realisation
firewall = sys.argv[1]
layout = generated_layout(2, 2, "spread", 1, 0)
ports = rules.eports(layout)
the_plan, shape = build(layout, ports, firewall, "k2ll", "neutron")
real = Realisation(the_plan)
real._guard()
real.up()
if shape.own_ovs:
    neutron_agent.plug_own_ovs(real, shape, ports)
neutron_agent.start_agents(real, shape, layout, firewall, ports, {"j-0001"})
print("up", flush=True)
time.sleep(120)
"""


@pytest.mark.emulation
@pytest.mark.parametrize("firewall", ["ipset", "ovs"])
def test_sigkill_with_neutrons_agents_then_clean_restores(live, ledger_dir, snapshot, firewall):
    before = snapshot()
    managers = subprocess.run(["ovs-vsctl", "get-manager"], capture_output=True, text=True, check=True).stdout
    env = {**os.environ, "LABTWIN_LEDGER_DIR": str(ledger_dir)}
    proc = subprocess.Popen([sys.executable, "-c", KILLED, firewall], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "up"
        during = snapshot()
    finally:  # killed whatever happens: a failed check must not leave the run behind for the next test
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert sum("neutron_agent.worker" in p for p in during["procs"]) == 2 and len(during["neutron_locks"]) == 2
    assert "labtwin-ltk2ll" in during["netns"]
    if firewall == "ovs":  # each host's own ovsdb-server and ovs-vswitchd; the machine's OVS untouched
        assert sum(p.startswith(("ovsdb-server /run/labtwin/ovs/", "ovs-vswitchd")) for p in during["procs"]) == 4
        assert len(during["private_ovs"]) == 2
        assert set(during["ovs"].split()) - set(before["ovs"].split()) == {"ltk2llb0"}  # the run's fabric only
    report = clean(directory=ledger_dir)
    assert sum("netns-name" in line for line in report) == 2, report
    time.sleep(0.2)
    assert snapshot() == before
    # Neutron's ovsdbapp never reached the machine's own OVS (it would have added a Manager)
    assert subprocess.run(["ovs-vsctl", "get-manager"], capture_output=True, text=True).stdout == managers


@pytest.mark.emulation
def test_the_committed_comparison_of_labtwins_rules_with_neutrons_still_holds(live, ledger_dir):
    """traces/sg-fanout/rules-vs-neutron.json (shown in the notebook): one member's filter as Neutron 29's driver
    writes it against labtwin's agent's rendering. Made again here; it must come out the same."""
    import json
    from pathlib import Path

    from labtwin.scenarios.sg_fanout.emulation.compare_rules import compare, compare_flows

    committed = json.loads((Path(__file__).parents[3] / "traces/sg-fanout/rules-vs-neutron.json").read_text())
    for firewall in ("iptables", "ipset"):
        assert compare(firewall) == committed[firewall], firewall
    assert compare_flows() == committed["ovs"]
    # Neutron's OVS filter: 55 flows in tables 60-82, IPv6 ones among them; labtwin's: 26, IPv4 only
    assert sum(t["neutron_flows"] for t in committed["ovs"].values()) == 55
    assert sum(t["labtwin_flows"] for t in committed["ovs"].values()) == 26
    assert any("icmp6" in shape for shape in committed["ovs"]["71"]["only_neutron"])
    # what differs, in short: labtwin's remote-group rule carries the probe's protocol; Neutron's zone rules
    assert committed["iptables"]["i"]["only_labtwin"] == ["-s <member-ip>/32 -p icmp -j RETURN"]
    assert any("CT --zone" in r for r in committed["iptables"]["jumps"]["only_neutron"])


def test_a_deleted_port_cannot_rejoin_under_neutrons_agent():
    """Neutron's cache never takes a deleted id back: the agent refuses rather than time a join Neutron ignores."""
    from labtwin.scenarios.sg_fanout.emulation import rules
    from labtwin.scenarios.sg_fanout.emulation.neutron_agent import NeutronHostAgent, ServerView
    from labtwin.scenarios.sg_fanout.spec import generated_layout

    class Worker:
        def iteration(self, pushes, added, removed):
            return {"start": 0.0, "took": 0.0, "calls": {"remove_port_filter": len(removed)}}

    layout = generated_layout(2, 1, "packed", 0, 1)
    ports = rules.eports(layout)
    gone = ports[layout.leaves[0]]
    agent = NeutronHostAgent("compute-1", "iptables", layout, None, 0, ServerView(layout, ports), Worker())
    agent.leave(gone, frozenset())
    assert agent.calls == {"remove_port_filter": 1}
    with pytest.raises(RuntimeError, match="cannot rejoin under control=neutron"):
        agent.join(gone, frozenset())
