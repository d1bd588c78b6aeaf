"""An external subnet whose gateway lies outside it (tests/inputs/external-gateway-off-subnet.yaml): Neutron's L3
agent reaches the gateway on-link, ML2/OVN's default route is dropped by ovn-northd. The model says which, and the
live twins show the emulations (our own agent's routes, real OVN) agree."""

from pathlib import Path

import pytest

from labtwin import api
from labtwin.description import load_cloud
from labtwin.scenarios.dvr.knobs import DvrDesign
from labtwin.scenarios.dvr.model import namespaces
from labtwin.scenarios.dvr.model.paths import class_paths

TOPOLOGY = Path(__file__).resolve().parents[2] / "inputs" / "external-gateway-off-subnet.yaml"
OUT = ("ns-fip-out", "ns-snat")


def paths(**knobs):
    return {p.traffic_class: p for p in class_paths(load_cloud(TOPOLOGY), DvrDesign.of(knobs))}


@pytest.mark.parametrize("router", ["legacy", "dvr"])
def test_neutrons_l3_agent_goes_out_by_an_on_link_route(router):
    found = paths(router=router)
    assert all(found[cls].reachable for cls in (*OUT, "ns-fip-in"))


def test_an_ovn_router_has_no_default_route_so_north_south_is_dropped_at_the_router():
    found = paths(router="ovn")
    for cls in OUT:
        assert found[cls].reachable is False and found[cls].nat == "none"
        assert found[cls].hops[-1].endswith(":br-int") and not found[cls].via_network_node  # dropped on its chassis
        assert "No path for static route" in found[cls].note
    fip_in = found["ns-fip-in"]  # the way in works; the answer has no way out
    assert fip_in.reachable is False and fip_in.hops[-1].split(":")[1].startswith("tap") and fip_in.reply == ()
    assert found["ew-same-network"].reachable


@pytest.mark.emulation
@pytest.mark.parametrize("knobs", [{"router": "legacy"}, {"router": "dvr"}], ids=["legacy", "dvr"])
def test_the_labtwin_agents_on_link_route_reaches_the_gateway(live, tmp_path, knobs):
    report, _, emulation = api.twin("dvr", TOPOLOGY, 1, out=tmp_path, **knobs)
    assert report.agree, report.disagreements.to_dict("records")
    reachable = {p["class"] for p in emulation.summary["paths"] if p["reachable"]}
    assert set(OUT) | {"ns-fip-in"} <= reachable


@pytest.mark.emulation
def test_real_ovn_drops_the_default_route_as_the_model_says(live, ovn, tmp_path, monkeypatch):
    """Through real OVN the north-south probes find no way out, as the model says; a model that keeps OVN's
    default route (the L3 agent's answer) disagrees with the same observation."""
    report, _, emulation = api.twin("dvr", TOPOLOGY, 1, out=tmp_path, router="ovn")
    assert report.agree, report.disagreements.to_dict("records")
    reachable = {p["class"] for p in emulation.summary["paths"] if p["reachable"]}
    assert not reachable & (set(OUT) | {"ns-fip-in"}) and "ew-same-network" in reachable

    monkeypatch.setattr(namespaces.Routers, "_ovn_drops", lambda self, plane: {})
    wrong, _, _ = api.compose_twin(
        "dvr",
        {"router": "ovn"},
        TOPOLOGY,
        lambda knobs: api.simulate("dvr", TOPOLOGY, 1, **knobs),
        lambda knobs: emulation,
    )
    assert not wrong.agree and {"probe"} <= set(wrong.disagreements.kind)
