"""An OVN gateway chassis failing (issue 13): the model's BFD-driven recovery, the knob that fixes Neutron's random
pick of the active chassis, and the tolerance that a wrong model breaks."""

import random
from pathlib import Path

import pytest

from labtwin import api
from labtwin.records import Event, Recorder, Run
from labtwin.scenarios import ScenarioError
from labtwin.scenarios.dvr import GATEWAY_FAILOVER, drawn, gateway_cut
from labtwin.scenarios.dvr.emulation.ovn_failover import recovery
from labtwin.scenarios.dvr.model import gateway

HA = "dvr-ha-gateway.yaml"
TRACES = Path(__file__).resolve().parents[3] / "traces" / "dvr"


def test_one_cut_recovers_after_bfd_declares_the_gateway_dead():
    """OVS's BFD defaults: a session goes down 3 s after the last packet, which came up to one (jittered) 1 s
    interval before the cut; both the client's chassis and the backup must notice, the backup then claims."""
    times = [
        gateway.run_gateway_failover("network-1", "network-2", "compute-1", random.Random(s), Recorder())
        for s in range(200)
    ]
    assert all(t is not None and 2.0 <= t <= 3.0 + gateway.OVN_CLAIM_S + gateway_cut.PROBE_INTERVAL_S for t in times)
    assert max(times) - min(times) > 0.5  # the phases are random: one cut is not the mean


def test_the_cut_is_recorded_in_order():
    rec = Recorder()
    gateway.run_gateway_failover("network-1", "network-2", "compute-1", random.Random(1), rec)
    kinds = [r.kind for r in rec.records if isinstance(r, Event) and r.kind != "gateway-probe"]
    assert kinds[0] == "underlay-cut" and kinds[-1] == "cr-lrp-claimed" and kinds.count("bfd-down") == 2


def test_only_an_ovn_router_on_two_gateway_chassis_has_the_metric():
    ha = api.simulate("dvr", api.topologies_dir() / HA, seed=1, router="ovn")
    assert 2.4 <= ha.summary["gateway_failover_s"] <= 3.0
    assert "gateway_failover_s" not in api.simulate("dvr", api.topologies_dir() / HA, seed=1, router="dvr").summary
    assert "gateway_failover_s" not in api.simulate("dvr", seed=1, router="ovn").summary  # one network node


@pytest.mark.parametrize("mult, min_rx", [(2, 1.0), (4, 1.0), (3, 0.3), (3, 2.0)])
def test_a_model_off_by_a_bfd_interval_breaks_the_tolerance(monkeypatch, mult, min_rx):
    """The check can fail: against the cut recorded on real OVN (traces/dvr/ovn-ha-gateway), the right model
    agrees and a model with another BFD multiplier or receive interval disagrees."""
    measured = Run.load(TRACES / "ovn-ha-gateway").summary["gateway_failover_s"]
    right = gateway.mean_gateway_failover("n1", "n2", "c1", random.Random(1), Recorder())
    monkeypatch.setattr(gateway, "BFD_MULT", mult)
    monkeypatch.setattr(gateway, "BFD_MIN_RX_S", min_rx)
    wrong = gateway.mean_gateway_failover("n1", "n2", "c1", random.Random(1), Recorder())
    assert GATEWAY_FAILOVER.agrees(right, measured) and not GATEWAY_FAILOVER.agrees(wrong, measured)


def test_the_active_gateway_knob_moves_the_gateway_paths():
    topology = api.topologies_dir() / HA
    first = api.simulate("dvr", topology, seed=1, router="ovn")
    second = api.simulate("dvr", topology, seed=1, router="ovn", ovn_gateway="network-2")
    snat = {r.detail["class"]: r.detail["hops"] for r in second.probes.itertuples()}["ns-snat"]
    assert any(h.startswith("network-2:br-int:cr-lrp") for h in snat)
    assert first.summary["paths"] != second.summary["paths"]


def test_the_active_gateway_must_be_a_network_node():
    with pytest.raises(ScenarioError, match="ovn_gateway=compute-1 to be a network node"):
        api.simulate("dvr", api.topologies_dir() / HA, seed=1, router="ovn", ovn_gateway="compute-1")


def test_the_twin_gives_the_model_neutrons_pick_and_nothing_else():
    def emulated(picked):
        return Run("dvr", "emulation", {}, 1, "", {"gateway_chassis": picked, "network_node": "network-1"}, [])

    assert drawn(emulated("network-2"), {}) == {"ovn_gateway": "network-2"}
    assert drawn(emulated("network-1"), {}) == {}  # the model's own choice already
    assert drawn(emulated("network-2"), {"ovn_gateway": "network-1"}) == {}  # the user fixed it
    assert drawn(emulated(None), {}) == {}  # not an OVN run


def test_recovery_counts_from_the_cut_to_the_first_answer_sent_after_it():
    pings = [{"sent": 0.9, "answered": 0.91}, {"sent": 1.1, "answered": None}, {"sent": 3.9, "answered": 3.95}]
    assert recovery(pings, 1.0) == pytest.approx(2.9)
    assert recovery(pings[:2], 1.0) is None  # nothing answered after the cut
    assert recovery(pings[1:], 1.0) is None  # nothing answered before it: the path never worked


def test_the_twin_runs_the_model_again_with_neutrons_pick_and_says_so(monkeypatch):
    """compose_twin over the recorded cut: Neutron picked the file's first network node there, so the model runs
    once; told that it picked network-2, the model runs again with ovn_gateway=network-2, the report names the
    knob, and the paths (observed through network-1) no longer agree: the model followed the pick."""
    from dataclasses import replace

    from labtwin import api

    monkeypatch.setattr(api, "refuse_unless_emulation_possible", lambda: None)
    observed = Run.load(TRACES / "ovn-ha-gateway")
    topology = api.topologies_dir() / HA
    asked: list[dict] = []

    def model(knobs):
        asked.append(knobs)
        return api.simulate("dvr", topology, 1, **knobs)

    knobs = {"router": "ovn", "ovn_distributed_fip": True}
    report, _, _ = api.compose_twin("dvr", knobs, topology, model, lambda k: observed)
    assert report.agree and report.drawn == {} and len(asked) == 1
    picked_other = replace(observed, summary={**observed.summary, "gateway_chassis": "network-2"})
    asked.clear()
    report, _, _ = api.compose_twin("dvr", knobs, topology, model, lambda k: picked_other)
    assert report.drawn == {"ovn_gateway": "network-2"} and asked[-1]["ovn_gateway"] == "network-2"
    assert not report.agree and set(report.disagreements.kind) >= {"probe.hops"}
