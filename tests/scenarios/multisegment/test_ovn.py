"""Routed networks under ML2/OVN (``control=ovn``): what the model says, and the live twin that checks it.

The model's OVN chassis (:class:`~labtwin.scenarios.multisegment.model.agents.OvnController`) patches every
localnet port of its physnets once it holds a port of the network, bridges their VLANs, sends unicast to other
chassis by the one localnet port OVN picked (drawn: ``ovn_localnet``), and OVN answers ARP for any port of the
logical switch. Each rule is shown to matter: a model without it disagrees with the recorded OVN run
(``traces/multisegment/ovn``, ``topologies/multisegment-ovn.yaml``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from labtwin import api
from labtwin.description import load_cloud
from labtwin.emulation.naming import new_run_id
from labtwin.emulation.plan import PlanError
from labtwin.records import Probe, Run
from labtwin.scenarios import ScenarioError
from labtwin.scenarios.multisegment.emulation.ovn import expected_patches, plan_ovn
from labtwin.scenarios.multisegment.model import agents
from labtwin.scenarios.multisegment.spec import MultisegmentDesign
from labtwin.testing import assert_twin_agrees

ROOT = Path(__file__).resolve().parents[3]
OVN_TOPOLOGY = str(ROOT / "topologies/multisegment-ovn.yaml")
RACK2_TOPOLOGY = str(ROOT / "topologies/multisegment.yaml")
TRACE = ROOT / "traces/multisegment/ovn"


def verdict(run: Run, src: str, dst: str, protocol: str) -> str:
    found = (p for p in run.records if isinstance(p, Probe) and (p.src, p.dst, p.protocol) == (src, dst, protocol))
    return next(found).verdict


def test_control_ovn_is_agent_ovn_under_neutron_29s_ipam():
    design = MultisegmentDesign.of({"control": "ovn"})
    assert (design.agent, design.segments_per_host) == ("ovn", "many")
    assert MultisegmentDesign.of({"agent": "ovn"}).control == "ovn"
    for contradiction in ({"control": "ovn", "agent": "ovs"}, {"control": "ovn", "segments_per_host": "one"}):
        with pytest.raises(ScenarioError):
            MultisegmentDesign.of(contradiction)


@pytest.mark.parametrize("value", ["r4-c1", "nohost=r4-s1", "r4-c1=nosegment", "r4-c1=r2-s1"])
def test_a_wrong_ovn_localnet_is_refused_naming_it(value):
    with pytest.raises(ScenarioError, match="ovn_localnet"):
        api.simulate("multisegment", OVN_TOPOLOGY, 1, control="ovn", ovn_localnet=value)


def test_a_chassis_bridges_every_segment_of_its_physnets_so_two_of_them_loop():
    """multisegment.yaml's rack2: r2-c2 holds a VM of r2-s1 only, yet under OVN it bridges r2-s2 too; with r2-c1
    doing the same, the two VLANs loop. The Linux bridge agent bridges only the segments of its ports."""
    ovn = api.simulate("multisegment", RACK2_TOPOLOGY, 1, control="ovn")
    bridge = api.simulate("multisegment", RACK2_TOPOLOGY, 1, segments_per_host="many")
    assert ovn.summary["expected_l2_domains"]["r2-c2"][0]["segments"] == ["r2-s1", "r2-s2"]
    assert bridge.summary["expected_l2_domains"]["r2-c2"][0]["segments"] == ["r2-s1"]
    assert (ovn.summary["l2_loops"], bridge.summary["l2_loops"]) == (1, 0)


def test_the_emulation_refuses_the_loop_naming_the_segments():
    with pytest.raises(PlanError, match="r2-s1, r2-s2 in a loop"):
        plan_ovn(load_cloud(RACK2_TOPOLOGY), new_run_id())
    cloud = load_cloud(OVN_TOPOLOGY)
    assert expected_patches(cloud, plan_ovn(cloud, new_run_id()).vms)["r4-c1"] == {
        f"neutron-{cloud.network['provider'].id}": ["r4-s1", "r4-s2"]
    }


def test_the_localnet_ovn_picked_decides_unicast_within_a_subnet():
    """r4-c1 maps two physnets; r4-c2 only r4-s2's. By r4-s1's physnet r4-c2 never hears r4-c1."""
    by_first = api.simulate("multisegment", OVN_TOPOLOGY, 1, control="ovn", ovn_localnet="r4-c1=r4-s1")
    by_second = api.simulate("multisegment", OVN_TOPOLOGY, 1, control="ovn", ovn_localnet="r4-c1=r4-s2")
    for a, b in (("vm-r4-a", "vm-r4-b"), ("vm-r4-b", "vm-r4-a")):
        assert (verdict(by_first, a, b, "icmp"), verdict(by_second, a, b, "icmp")) == ("blocked", "allowed")
    assert by_first.summary["ovn_localnet"].split(",")[1] == "r4-c1=r4-s1"


def test_ovn_answers_arp_across_segments_the_linux_bridge_does_not():
    ovn = api.simulate("multisegment", OVN_TOPOLOGY, 1, control="ovn")
    bridge = api.simulate("multisegment", OVN_TOPOLOGY, 1, segments_per_host="many")
    assert (verdict(ovn, "vm-r5-a", "vm-r5-b", "arp"), verdict(bridge, "vm-r5-a", "vm-r5-b", "arp")) == (
        "allowed",
        "blocked",
    )
    assert verdict(ovn, "vm-r5-a", "vm-r5-b", "broadcast") == "blocked"


# --- each rule against the recorded OVN run ---------------------------------------------------------------


def recorded() -> tuple[Run, Run]:
    emulated = Run.load(TRACE)
    emulated = replace(emulated, topology=OVN_TOPOLOGY)
    return api.simulate_beside(emulated, OVN_TOPOLOGY), emulated


def disagreements(model: Run, emulated: Run) -> list[str]:
    return list(api.compare_runs("multisegment", model, emulated).disagreements.key)


def test_the_recorded_ovn_run_agrees_with_the_model():
    model, emulated = recorded()
    assert disagreements(model, emulated) == []
    assert model.design["ovn_localnet"] == emulated.summary["ovn_localnet"]  # the draw, taken


def test_a_model_ignoring_the_draw_disagrees_on_rack4():
    model, emulated = recorded()
    drawn = dict(item.split("=") for item in emulated.summary["ovn_localnet"].split(","))
    other = "r4-s1" if drawn["r4-c1"] == "r4-s2" else "r4-s2"
    wrong = api.simulate("multisegment", OVN_TOPOLOGY, 1, control="ovn", ovn_localnet=f"r4-c1={other}")
    assert disagreements(wrong, emulated) == ["vm-r4-a->vm-r4-b icmp", "vm-r4-b->vm-r4-a icmp"]


def test_a_model_patching_only_the_picked_localnet_disagrees(monkeypatch):
    """The reading of ovn-controller's "skipping the new port" log: only one localnet port in use. Then r4-c1
    would not bridge r4-s1 (no leak there) and r2-c1's gateway on the other segment would not answer."""
    model, emulated = recorded()
    patched = agents.OvnController.patched
    monkeypatch.setattr(
        agents.OvnController,
        "patched",
        lambda self, network: (
            [s for s in patched(self, network) if s == self.localnet.get(self.host)] or patched(self, network)[:1]
        ),
    )
    wrong = api.simulate_beside(emulated, OVN_TOPOLOGY)
    bad = disagreements(wrong, emulated)
    assert "l2_leaks" in bad
    drawn = dict(item.split("=") for item in emulated.summary["ovn_localnet"].split(","))
    cut_off = "vm-r2-a" if drawn["r2-c1"] == "r2-s2" else "vm-r2-b"  # the VM on r2-c1's other segment
    other = "vm-r2-b" if cut_off == "vm-r2-a" else "vm-r2-a"
    assert {f"{cut_off}->{other} icmp", f"{other}->{cut_off} icmp"} <= set(bad)


def test_a_model_without_ovns_arp_responder_disagrees_on_rack5(monkeypatch):
    from labtwin.scenarios.multisegment.model import probes

    model, emulated = recorded()
    monkeypatch.setattr(probes, "arp_responder", lambda design: False)  # ARP answered only in one domain
    wrong = api.simulate_beside(emulated, OVN_TOPOLOGY)
    assert disagreements(wrong, emulated) == ["vm-r5-a->vm-r5-b arp", "vm-r5-b->vm-r5-a arp", "arp_leaks"]


@pytest.mark.emulation
def test_real_ovn_carries_the_routed_network_as_the_model_says(twin, ovn):
    """Neutron 29's ML2/OVN writes the network, a chassis per host carries it: every probe, leak and name as
    the model says, given the localnet ports OVN picked (read from each chassis's OpenFlow)."""
    report, model, emulation = twin("multisegment", topology=OVN_TOPOLOGY, control="ovn")
    assert_twin_agrees(report)
    assert report.drawn == {"ovn_localnet": emulation.summary["ovn_localnet"]}
    assert emulation.summary["l2_leaks"] == 2 and emulation.summary["arp_leaks"] == 4
    assert set(emulation.summary["ovn_localnet_skipped"]) == {"r2-c1", "r4-c1"}  # the two-segment chassis
