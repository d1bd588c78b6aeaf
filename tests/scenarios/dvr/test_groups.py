"""Security groups on every dvr path (tests/scenarios/dvr/security-groups.yaml): the model drops a probe where the
sender's or the receiver's filter sits, real OVN's ACLs agree, and labtwin's own emulation (no filter) refuses."""

from pathlib import Path

import pytest

from labtwin import api
from labtwin.description import load_cloud
from labtwin.scenarios.dvr.emulation.emulable import NotEmulated, check_emulable
from labtwin.scenarios.dvr.knobs import DvrDesign
from labtwin.scenarios.dvr.model.paths import class_paths

TOPOLOGY = Path(__file__).resolve().parent / "security-groups.yaml"
#: class -> (the port whose group drops it, where)
DROPPED = {
    "ew-cross-host": ("app-1", "ingress"),
    "ew-same-network": ("db-1", "ingress"),
    "ns-fip-in": ("web-1", "ingress"),
    "ns-ipv6": ("db-1", "egress"),
}


@pytest.mark.parametrize("router", ["legacy", "dvr", "ovn"])
def test_a_probe_the_groups_drop_ends_at_the_filter(router):
    found = {p.traffic_class: p for p in class_paths(load_cloud(TOPOLOGY), DvrDesign.of({"router": router}))}
    for cls, (port, where) in DROPPED.items():
        path = found[cls]
        assert path.reachable is False and path.nat == "none" and path.ttl is None and path.reply == ()
        assert path.note.startswith(f"security groups: {where} of {port} allows no")
        if where == "egress":  # the sender's tap and the bridge its filter sits on
            assert len(path.hops) == 2 and path.wires == ()
        else:  # up to the receiver's bridge: its tap never sees it
            assert path.hops[-1].endswith(":br-int") and not path.hops[-1].startswith(path.src)
    allowed = set(found) - set(DROPPED)
    assert all(found[cls].reachable for cls in allowed - {"vip-after-failover"})


def test_the_hybrid_firewall_drops_at_qbr():
    design = DvrDesign.of({"router": "dvr", "firewall_driver": "iptables_hybrid"})
    found = {p.traffic_class: p for p in class_paths(load_cloud(TOPOLOGY), design)}
    assert found["ns-ipv6"].hops[-1].split(":")[1].startswith("qbr")  # egress: tap, qbr
    assert found["ns-fip-in"].hops[-1].split(":")[1].startswith("qbr")  # ingress: ... qvo, qvb, qbr


def test_the_default_topologies_groups_drop_nothing_studied():
    for name in ("dvr.yaml", "dvr-ha-gateway.yaml", "minimal.yaml"):
        cloud = load_cloud(api.topologies_dir() / name)
        assert not [p.note for p in class_paths(cloud, DvrDesign.of({})) if p.note.startswith("security groups")]


def test_the_labtwin_emulation_writes_no_filter_so_it_refuses():
    with pytest.raises(NotEmulated, match="security groups drop ew-cross-host .* control=ovn"):
        check_emulable(load_cloud(TOPOLOGY), DvrDesign.of({"router": "dvr"}))


@pytest.mark.emulation
def test_real_ovns_acls_drop_what_the_model_drops_where_it_drops_it(live, ovn, tmp_path):
    """Neutron's ML2/OVN writes the groups as ACLs and real OVN applies them: every verdict and every cut-short
    path agree. (The topology's ``default_security_group_rules: []`` reaches Neutron's server: with Neutron's own
    default rules db-1's IPv6 ping went out.)"""
    report, _, emulation = api.twin("dvr", TOPOLOGY, 1, out=tmp_path, router="ovn")
    assert report.agree, report.disagreements.to_dict("records")
    blocked = {p["class"] for p in emulation.summary["paths"] if p["reachable"] is False}
    assert set(DROPPED) <= blocked
    probe_hops = {r["key"] for r in report.rows.to_dict("records") if r["kind"] == "probe.hops"}
    assert len(probe_hops) >= 8  # the dropped probes' paths are compared too
