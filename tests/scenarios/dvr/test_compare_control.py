"""The dvr notebook's comparison table, labtwin's own emulation beside Neutron's L3 agents (issue 15).

On a recorded read-back of both builds (``control-states.json``: three namespaces of a real run of each on
topologies/dvr.yaml): the differences Neutron's agent is known to make appear because they are in the kernel
state; equal states give no row; a deliberately changed state shows up as a difference of its own kind.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from labtwin.scenarios.dvr.compare_control import (
    DIFFER,
    FALLBACK,
    ONLY_LABTWIN,
    ONLY_NEUTRON,
    ControlComparison,
    agreement,
    compare_controls,
    condensed,
    differences,
    state_of,
)

ROOT = Path(__file__).resolve().parents[3]
RECORDED = json.loads(Path(__file__).with_name("control-states.json").read_text())
WEB1 = "10.10.0.4"  # web-1's fixed address in the recording: it has a floating IP on compute-1


def table(labtwin: dict, neutron: dict):
    states = {side: {k: state_of(v) for k, v in raw.items()} for side, raw in (("l", labtwin), ("n", neutron))}
    return differences(states["l"], states["n"], RECORDED["network_node"])


def row(frame, **match):
    found = frame
    for column, value in match.items():
        found = found[found[column] == value]
    assert len(found) == 1, (match, frame.to_string())
    return found.iloc[0]


def test_the_known_differences_come_out_of_the_recorded_kernel_state():
    diff = table(RECORDED["labtwin"], RECORDED["neutron"])
    # every DVR host's fip- namespace routes by a rule "iif fpr-" into a table of its own; the numbers differ
    fip = row(diff, host="network-1", namespace="fip-", aspect="rules", item="from all iif fpr-0a594648-d")
    assert fip.status == DIFFER and fip.labtwin != fip.Neutron
    # the floating IP's rule: same selector, Neutron's priority from its allocator, labtwin's 32768
    rule = row(diff, host="compute-1", namespace="qrouter-", aspect="rules", item=f"from {WEB1}")
    assert rule.status == DIFFER and rule.labtwin == "32768: lookup 16" and rule.Neutron != "32768: lookup 16"
    # the SNAT redirect: Neutron's selector is the qr- address with its prefix, labtwin's the subnet
    assert row(diff, aspect="rules", item="from 10.10.0.1/24").status == ONLY_NEUTRON
    assert row(diff, aspect="rules", item="from 10.10.0.0/24").status == ONLY_LABTWIN
    # SNAT with --random-fully, and Neutron's default routes are proto static
    snat = row(diff, host="network-1", namespace="snat-", aspect="iptables", item="nat neutron-l3-agent-snat")
    assert snat.status == DIFFER and "--random-fully" in snat.Neutron and "--random-fully" not in snat.labtwin
    default = row(diff, host="network-1", namespace="snat-", aspect="routes", item="table main default")
    assert default.Neutron.endswith("proto static") and "proto static" not in default.labtwin
    # mangle marks and address-scope chains are Neutron's alone
    assert row(diff, host="network-1", namespace="snat-", aspect="iptables", item="mangle").status == ONLY_NEUTRON
    # the rfp-/fpr- link-local pair comes from Neutron's allocator
    rfp = row(diff, host="compute-1", namespace="qrouter-", aspect="addresses", item="rfp-0a594648-d")
    assert "169.254.64.0/31" in rfp.labtwin and "169.254.64.0/31" not in rfp.Neutron


def test_equal_states_give_no_row_and_count_every_item_alike():
    states = {k: state_of(v) for k, v in RECORDED["neutron"].items()}
    assert differences(states, states, "network-1").empty
    counts = agreement(states, states, differences(states, states, "network-1"))
    assert counts["alike"]["namespace"] == 3 and counts["alike"]["iptables"] > 0
    assert counts[[ONLY_LABTWIN, ONLY_NEUTRON, DIFFER]].to_numpy().sum() == 0


def drop_rule(sides):
    """A policy rule Neutron's agent did not write: a row of its own, labtwin's alone."""
    rules = sides["neutron"]["qrouter:compute-1"]["rules"]
    rules.remove(next(r for r in rules if "lookup 16" in r))


def other_mtu(sides):
    """A device with another MTU: the same device, different facts."""
    devices = sides["neutron"]["qrouter:compute-1"]["devices"]
    devices[1] = devices[1].replace("mtu 1500", "mtu 1450")


def more_nat(sides):
    """One more NAT rule, in a chain only Neutron's build has there."""
    sides["neutron"]["qrouter:compute-1"]["iptables"] += ["*nat", "-A neutron-l3-agent-snat -j ACCEPT"]


def no_fip_namespace(sides):
    """A namespace labtwin did not build: one row for it, with what Neutron's holds."""
    del sides["labtwin"]["fip:network-1"]


@pytest.mark.parametrize(
    "change, expected",
    [
        (drop_rule, ("rules", ONLY_LABTWIN)),
        (other_mtu, ("devices", DIFFER)),
        (more_nat, ("iptables", ONLY_NEUTRON)),
        (no_fip_namespace, ("namespace", ONLY_NEUTRON)),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_a_deliberately_changed_namespace_state_shows_up(change, expected):
    sides = copy.deepcopy({"labtwin": RECORDED["labtwin"], "neutron": RECORDED["neutron"]})
    change(sides)
    before = table(RECORDED["labtwin"], RECORDED["neutron"])
    after = table(sides["labtwin"], sides["neutron"])
    new = after.merge(before, how="left", indicator=True).query("_merge == 'left_only'")
    assert [(r.aspect, r.status) for r in new.itertuples()] == [expected], new.to_string()
    if expected[0] == "namespace":  # its contents are not listed item by item
        assert len(after) < len(before) and "devices" in new.iloc[0].Neutron


def test_a_difference_seen_alike_on_several_hosts_is_written_once():
    labtwin = {**RECORDED["labtwin"], "qrouter:compute-2": RECORDED["labtwin"]["qrouter:compute-1"]}
    neutron = {**RECORDED["neutron"], "qrouter:compute-2": RECORDED["neutron"]["qrouter:compute-1"]}
    full, short = table(labtwin, neutron), condensed(table(labtwin, neutron))
    hosts = row(short, aspect="rules", item="from 10.10.0.1/24").host
    assert hosts == "compute-1, compute-2" and len(short) < len(full)


def test_without_emulation_and_without_a_cached_comparison_the_notebook_says_so(monkeypatch, tmp_path):
    monkeypatch.setattr("labtwin.api.emulation_possible", lambda: (False, ["not root"]))
    topology = Path(__file__).with_name("neutron-l3-dvr.yaml")
    got = compare_controls(topology, cache=tmp_path)
    assert got.unavailable == "this machine cannot emulate: not root"
    shown = got._repr_html_()
    assert "Not compared" in shown and "<table" not in shown


def test_a_topology_control_neutron_refuses_is_said_and_the_fallback_compared(monkeypatch, tmp_path):
    from labtwin.scenarios.dvr.emulation import emulable

    def refuse(cloud, design):
        if design.control == "neutron":
            raise emulable.NotEmulated("not yet")

    monkeypatch.setattr(emulable, "check_emulable", refuse)
    monkeypatch.setattr("labtwin.api.emulation_possible", lambda: (False, ["not root"]))
    got = compare_controls(ROOT / "topologies" / "dvr.yaml", cache=tmp_path)
    assert got.topology == FALLBACK and (ROOT / FALLBACK).is_file()
    assert got.why_topology.endswith("is not built by control=neutron: not yet")
    assert FALLBACK in got._repr_html_() and "not yet" in got._repr_html_()


def test_a_cached_comparison_is_shown_as_recorded():
    shown = ControlComparison("t.yaml", raw={**RECORDED, "seconds": {"labtwin": 1.0, "neutron": 2.0}})._repr_html_()
    assert "only Neutron" in shown and "--random-fully" in shown and "<table" in shown
