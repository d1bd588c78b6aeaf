"""sg-fanout's cases for the scenario contract (tests/test_scenario_contract.py): joins and leaves, counted from
the kernel, agree with the model (counts and verdicts; timing is test_calibrate_live's and make bench's)."""

FIREWALLS = ("iptables", "ipset", "ovs", "subtable")

CASES = {
    **{f"join-{fw}": {"firewall": fw, "members": 6, "hosts": 2, "joins": 2, "timing_repeats": 1} for fw in FIREWALLS},
    # m-0003 leaves compute-3, its only member, so that host's group object is destroyed, while compute-1 and
    # compute-2 refresh their members and drop the address from theirs
    **{
        f"leave-{fw}": {"firewall": fw, "members": 3, "hosts": 3, "joins": 1, "leaves": 1, "timing_repeats": 1}
        for fw in FIREWALLS
    },
}


def check(case, report, model, emulated, out):
    kind, firewall = case.split("-")
    if kind == "join":
        assert (emulated.probes.verdict == "blocked").sum() == 4  # the non-member, both ways, per join
        ops = emulated.operations
        assert set(ops[ops.op == "agent_iteration"].host) == {"compute-1", "compute-2"}
        return
    s = emulated.summary
    assert s["filters_removed"] == 1
    # every host with members wrote its group object for the join and again for the leave
    # (compute-3's is destroyed); plain iptables has none
    assert s["group_writes"] == (0 if firewall == "iptables" else 3 + 3)
    left = emulated.probes[emulated.probes.src == "m-0003"]
    left = left[left.detail.apply(lambda d: d.get("leave") == "m-0003")]
    assert sorted(left.dst) == ["m-0001", "m-0002"] and set(left.verdict) == {"blocked"}
    events = emulated.events
    applied = events[events.kind == "leave_applied"].detail.iloc[0]
    assert applied["stale_hosts"] == []
