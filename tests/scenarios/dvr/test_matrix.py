"""The dvr traffic matrix counts each class's packets where they cross the network node: its way out and its
reply (labtwin/scenarios/dvr/matrix.py). Each check is shown able to fail on a wrong matrix."""

from __future__ import annotations

import pytest

from labtwin.description import load_cloud
from labtwin.scenarios import topologies_dir
from labtwin.scenarios.dvr import matrix
from labtwin.scenarios.dvr.knobs import DvrDesign
from labtwin.scenarios.dvr.model import simulate
from labtwin.scenarios.dvr.spec import network_node

DESIGN = DvrDesign.of({})
#: dvr.yaml's router1 under Neutron 29's DVR: SNAT out and back through snat- on network-1; IPv6 out by
#: compute-1's own fip- (create_rtr_2_fip_link), its reply back by snat- (efaf6ca); east-west stays on the hosts.
SNAT = ["compute-1:br-int", "compute-1:qrouter-r:qr-1", "fabric", "network-1:snat-r:sg-1", "network-1:snat-r:qg-1"]
V6_OUT = ["compute-1:br-int", "compute-1:qrouter-r:qr-1", "compute-1:qrouter-r:rfp-1", "compute-1:fip-n:fg-1"]
V6_BACK = ["external", "fabric", "network-1:snat-r:qg-1", "network-1:snat-r:sg-1", "fabric", "compute-1:br-int"]
EW = ["compute-1:br-int", "compute-1:qrouter-r:qr-1", "compute-1:qrouter-r:qr-2", "fabric", "compute-2:br-int"]


def path(cls: str, hops: list[str], reply: list[str], via: bool, router: str = "router1") -> dict:
    """A ``summary["paths"]`` entry as either backend writes it (the keys the matrix reads)."""
    return {"router": router, "class": cls, "hops": hops, "via_network_node": via, "reply": reply}


@pytest.fixture(scope="module")
def cloud():
    return load_cloud(topologies_dir() / "dvr.yaml")


def counting_problems(cloud) -> list[str]:
    """What the matrix gets wrong on a path list whose IPv6 goes out locally and comes back by the network node:
    that class must count half its weight, SNAT (both ways across) all of it, east-west none."""
    paths = [
        path("ew-cross-host", EW, EW[::-1], False),
        path("ns-snat", SNAT, SNAT[::-1], True),
        path("ns-ipv6", V6_OUT, V6_BACK, False),
    ]
    weights, crossing = matrix.traffic_matrix(cloud, DESIGN, paths)
    want = {"ew-cross-host": 0.0, "ns-snat": 1.0, "ns-ipv6": 0.5}
    problems = [
        f"{cls} crosses with {crossing[('router1', cls)]}, not {part}"
        for cls, part in want.items()
        if crossing[("router1", cls)] != part
    ]
    share = weights[("router1", "ns-snat")] + 0.5 * weights[("router1", "ns-ipv6")]
    if matrix.expected_share(weights, crossing) != pytest.approx(share):
        problems.append(f"share {matrix.expected_share(weights, crossing)}, not {share}")
    return problems


def test_a_class_out_locally_and_back_by_the_network_node_counts_half(cloud):
    assert counting_problems(cloud) == []


def test_a_matrix_that_counts_the_way_out_only_is_caught(cloud, monkeypatch):
    monkeypatch.setattr(matrix, "crossing_fraction", lambda cloud, p: 1.0 if p["via_network_node"] else 0.0)
    problems = counting_problems(cloud)
    assert problems[0] == "ns-ipv6 crosses with 0.0, not 0.5"
    assert len(problems) == 2 and problems[1].startswith("share ")


def test_without_a_reply_the_way_out_decides(cloud):
    """An unreachable class (no answer comes back) sends all its packets out."""
    assert matrix.crossing_fraction(cloud, path("ns-snat", SNAT, [], True)) == 1.0
    assert matrix.crossing_fraction(cloud, path("vip-after-failover", EW, [], False)) == 0.0
    assert matrix.crossing_fraction(cloud, path("ns-snat", SNAT, None, True)) == 1.0  # type: ignore[arg-type]


def test_a_path_without_its_reply_is_refused(cloud):
    entry = path("ns-ipv6", V6_OUT, [], False)
    del entry["reply"]
    with pytest.raises(ValueError, match="router1.*ns-ipv6.*reply"):
        matrix.crossing_fraction(cloud, entry)


def test_every_network_node_counts_by_its_role(monkeypatch):
    """With two network nodes (an HA router's two L3 agents, a gateway on two chassis), a reply by the second one
    crosses too; a rule that knows only the first network node misses it."""
    cloud = load_cloud(topologies_dir() / "dvr-ha-gateway.yaml")
    back = ["external", "fabric", "network-2:snat-r:qg-1", "fabric", "compute-1:br-int"]
    entry = path("ns-ipv6", V6_OUT, back, False)
    assert matrix.crossing_fraction(cloud, entry) == 0.5
    first = network_node(cloud).name
    monkeypatch.setattr(matrix, "crosses_network_node", lambda cloud, hops: any(h.startswith(first) for h in hops))
    assert matrix.crossing_fraction(cloud, entry) == 0.0


def test_the_share_of_dvr_yaml_counts_ipv6_replies_and_fast_exit_lowers_it(cloud):
    """Today's DVR: SNAT and DHCP cross both ways, IPv6's replies come back by snat- (half its packets); fast-exit
    brings them in by fg-, so the share falls by IPv6's half (the weights are the run's own)."""

    def run(**knobs):
        return simulate(cloud, knobs, seed=1, duration=0.01).summary

    dvr, fast = run(), run(ipv6_fast_exit=True)
    w = dvr["class_weights"]["router1"]
    assert dvr["network_node_share"] == pytest.approx(w["ns-snat"] + w["dhcp"] + w["ns-ipv6"] / 2, abs=1e-6)
    assert fast["network_node_share"] == pytest.approx(w["ns-snat"] + w["dhcp"], abs=1e-6)
    assert fast["network_node_share"] < dvr["network_node_share"]
