"""The dvr model: paths per class per design, the traffic DES, the failover, determinism."""

from __future__ import annotations

import random

import pytest

from labtwin import sweep
from labtwin.description import load_cloud
from labtwin.records import Recorder, record_line
from labtwin.scenarios import get_scenario, topologies_dir
from labtwin.scenarios.dvr import neutron_names as names
from labtwin.scenarios.dvr.knobs import DvrDesign
from labtwin.scenarios.dvr.model import simulate
from labtwin.scenarios.dvr.model.failover import run_failover
from labtwin.scenarios.dvr.model.paths import CLASSES, class_paths
from labtwin.scenarios.dvr.model.traffic import run_traffic

EW_AND_FIP = ("ew-same-host", "ew-cross-host", "ns-fip-out", "ns-fip-in", "vip-after-failover")


@pytest.fixture(scope="module")
def cloud():
    return load_cloud(topologies_dir() / "dvr.yaml")


def paths(cloud, **knobs):
    return {p.traffic_class: p for p in class_paths(cloud, DvrDesign.of(knobs))}


def hosts_of(path):
    return {hop.split(":", 1)[0] for hop in path.hops} - {"fabric", "external"}


def test_every_class_has_a_path_in_the_default_topology(cloud):
    for router in ("legacy", "dvr", "ovn"):
        got = paths(cloud, router=router)
        assert list(got) == list(CLASSES)
        assert all(p.hops for p in got.values()), router


def test_device_names_are_neutrons(cloud):
    router = cloud.router["router1"]
    assert names.rfp_device(router.id) == "rfp-" + str(router.id)[:10]
    assert names.qr_device("12345678-abcd") == "qr-12345678-ab"
    for p in paths(cloud, router="dvr").values():
        for hop in p.hops:
            parts = hop.split(":")
            if len(parts) == 3 and not parts[1].startswith("br-"):
                assert len(parts[2]) <= 14, hop
    fip = paths(cloud, router="dvr")["ns-fip-out"].hops
    assert f"compute-1:qrouter-{router.id}:rfp-{str(router.id)[:10]}" in fip
    assert any(h.startswith(f"compute-1:fip-{cloud.network['ext-net'].id}:fg-") for h in fip)


def test_legacy_sends_every_routed_class_through_the_network_nodes_router(cloud):
    got = paths(cloud, router="legacy")
    router_ns = f"network-1:qrouter-{cloud.router['router1'].id}:"
    same_network = got.pop("ew-same-network")
    assert not same_network.via_network_node and not any(":qrouter-" in h for h in same_network.hops)
    for cls, p in got.items():
        assert p.via_network_node, cls
        if cls != "dhcp":
            assert any(h.startswith(router_ns) for h in p.hops), cls
    assert any(":qdhcp-" in h and h.startswith("network-1:") for h in got["dhcp"].hops)


def test_dvr_keeps_east_west_and_fip_on_compute_nodes(cloud):
    got = paths(cloud, router="dvr", vip_arp="learned")
    for cls in EW_AND_FIP:
        assert not got[cls].via_network_node, cls
        assert "network-1" not in hosts_of(got[cls]), cls
    src = got["ew-cross-host"].hops[0].split(":")[0]
    assert any(h.startswith(f"{src}:qrouter-") for h in got["ew-cross-host"].hops), "routed on the source host"
    assert got["ns-fip-out"].nat == "snat fixed->fip" and got["ns-fip-in"].nat == "dnat fip->fixed"


def test_dvr_sends_snat_through_the_snat_namespace_and_ipv6_out_the_hosts_fip(cloud):
    """IPv4 without a floating IP: the SNAT redirect to snat-. IPv6: the qrouter's main-table default via fpr-
    (Neutron 29 create_rtr_2_fip_link) out the VM host's own fip-/fg-; the reply through snat- (the outside routes
    the tenant prefix to qg-), as Neutron's own agent did (/work/notes/finding-ipv6-dvr.md)."""
    got = paths(cloud, router="dvr")
    snat_ns = f"network-1:snat-{cloud.router['router1'].id}:"
    assert got["ns-snat"].via_network_node
    assert any(h.startswith(snat_ns + "sg-") for h in got["ns-snat"].hops)
    assert any(h.startswith(snat_ns + "qg-") for h in got["ns-snat"].hops)
    assert got["ns-snat"].nat == "snat fixed->qg"
    v6 = got["ns-ipv6"]
    host = v6.hops[0].split(":")[0]
    assert not v6.via_network_node and v6.nat == "none" and v6.reachable and v6.ttl == 62
    assert [h.split(":")[1].split("-")[0] + ":" + h.split(":")[2][:3] for h in v6.hops if h.count(":") == 2] == [
        "qrouter:qr-",
        "qrouter:rfp",
        "fip:fpr",
        "fip:fg-",
    ]
    assert all(h.startswith(host) for h in v6.hops[:-2])
    assert any(h.startswith(snat_ns + "qg-") for h in v6.reply) and v6.reply_ttl == 63


def test_fast_exit_keeps_ipv6_off_the_network_node_and_snat_on_it(cloud):
    got = paths(cloud, router="dvr", ipv6_fast_exit=True)
    assert not got["ns-ipv6"].via_network_node
    assert any(":fip-" in h for h in got["ns-ipv6"].hops)
    assert got["ns-snat"].via_network_node


def test_distributed_snat_moves_snat_off_the_network_node_only(cloud):
    got = paths(cloud, router="dvr", distributed_snat=True)
    assert not got["ns-snat"].via_network_node
    assert got["ns-snat"].nat == "snat fixed->fg"
    assert not got["ns-ipv6"].via_network_node  # Neutron's own IPv6 way, out the host's fip-


def test_distributed_dhcp_answers_on_the_compute_node(cloud):
    central = paths(cloud, router="dvr")["dhcp"]
    local = paths(cloud, router="dvr", distributed_dhcp=True)["dhcp"]
    assert central.via_network_node and not local.via_network_node
    client_host = local.hops[0].split(":")[0]
    assert local.hops[-1] == f"{client_host}:br-int:table77"


def test_static_vip_arp_breaks_the_vip_after_failover_and_learned_restores_it(cloud):
    static = paths(cloud, router="dvr", vip_arp="static")["vip-after-failover"]
    learned = paths(cloud, router="dvr", vip_arp="learned")["vip-after-failover"]
    old, new = cloud.port["vrrp-b"], cloud.port["vrrp-a"]  # vrrp-b wrote the ARP entry last
    assert static.reachable is False and learned.reachable is True
    assert static.hops[-1] == f"{old.host}:{names.tap_device(old.id)}"
    assert learned.hops[-1] == f"{new.host}:{names.tap_device(new.id)}"
    assert "1774459" in static.note


def test_ovn_paths(cloud):
    got = paths(cloud, router="ovn")
    assert not any(":qrouter-" in h or ":snat-" in h or ":fip-" in h for p in got.values() for h in p.hops)
    assert not got["ew-cross-host"].via_network_node and not got["ew-same-host"].via_network_node
    assert got["ns-snat"].via_network_node and any(":cr-lrp-" in h for h in got["ns-snat"].hops)
    assert got["ns-fip-in"].via_network_node, "FIPs are centralized by default"
    assert not paths(cloud, router="ovn", ovn_distributed_fip=True)["ns-fip-in"].via_network_node
    assert got["dhcp"].hops[-1].endswith(":br-int:ovn-controller") and not got["dhcp"].via_network_node
    assert got["vip-after-failover"].reachable is True


def test_network_node_share_orders_the_designs(cloud):
    def share(**knobs):
        return simulate(cloud, knobs, seed=1, duration=0.05).summary["network_node_share"]

    legacy, dvr, ovn = share(router="legacy"), share(router="dvr"), share(router="ovn")
    everything = share(router="dvr", ipv6_fast_exit=True, distributed_snat=True, distributed_dhcp=True)
    assert legacy == pytest.approx(1.0)
    assert everything == 0.0 < dvr < ovn < legacy


def test_queue_delay_and_loss_grow_with_load():
    weights, crossing = {"ns-snat": 1.0}, {"ns-snat": True}
    light = run_traffic(weights, crossing, 200, 1e6, random.Random(0), 0.2).summary(1e6)
    heavy = run_traffic(weights, crossing, 4000, 1e6, random.Random(0), 0.2).summary(1e6)
    assert light["nn_loss"] == 0.0 and heavy["nn_loss"] > 0.3
    assert heavy["nn_delay_ms_mean"] > 5 * light["nn_delay_ms_mean"]
    assert heavy["nn_utilization"] > 0.95


def test_failover_recovery_per_design():
    def recovery(mode, **design):
        return run_failover(
            DvrDesign.of(design), mode, "vrrp-b", "vrrp-a", "web-2", "10.10.0.100", random.Random(2), Recorder()
        )

    assert recovery("dvr", vip_arp="static") is None
    learned = recovery("dvr", vip_arp="learned")
    assert 2.5 < learned < 4.0  # 3 x advert_int + skew - phase, to the next probe
    assert learned <= recovery("ovn")
    assert recovery("legacy", vip_arp="static") == pytest.approx(learned)  # static ARP is DVR's alone
    late = run_failover(
        DvrDesign.of({"vip_arp": "static"}),
        "dvr",
        "vrrp-b",
        "vrrp-a",
        "web-2",
        "10.10.0.100",
        random.Random(2),
        Recorder(),
        api_update_at=8.0,
    )
    assert 7.0 <= late < 7.2  # only the API-driven ARP update brings it back


def test_same_seed_same_records(cloud):
    a = simulate(cloud, {"router": "dvr"}, seed=7, duration=0.05)
    b = simulate(cloud, {"router": "dvr"}, seed=7, duration=0.05)
    c = simulate(cloud, {"router": "dvr"}, seed=8, duration=0.05)
    assert [record_line(r) for r in a.records] == [record_line(r) for r in b.records]
    assert a.summary == b.summary
    assert a.summary["nn_delay_ms_mean"] != c.summary["nn_delay_ms_mean"]


def test_summary_and_probes(cloud):
    run = simulate(cloud, {"router": "dvr"}, seed=1, duration=0.05)
    assert [p["class"] for p in run.summary["paths"]] == list(CLASSES)
    for entry in run.summary["paths"]:
        assert set(entry) >= {"class", "hops", "via_network_node", "nat", "reachable"}
    for key in ("network_node_share", "nn_delay_ms_mean", "nn_delay_ms_p95", "nn_loss", "failover_recovery_s"):
        assert key in run.summary
    probes = run.probes
    assert len(probes) == len(CLASSES)
    vip = probes[probes.detail.map(lambda d: d["class"]) == "vip-after-failover"].iloc[0]
    assert vip.verdict == "blocked" and vip.dst == "10.10.0.100"


def test_scenario_runs_on_the_default_topology():
    scenario = get_scenario("dvr")
    design = scenario.design({"router": "legacy", "ipv6_fast_exit": "true", "flows": "100"})
    assert design["ipv6_fast_exit"] is True and design["flows"] == 100
    run = scenario.simulate(None, design, 0, "")
    assert run.summary["network_node_share"] == pytest.approx(1.0)
    assert run.topology.endswith("dvr.yaml")


def load_curve_of(designs: dict, flows: list[int]):
    """The network-node load curve as the dvr notebook draws it: the same flows under each design."""
    return sweep.compare("dvr", designs, {"flows": flows}, topology=topologies_dir() / "dvr.yaml", scheduler="serial")


def test_the_load_curve_has_one_row_per_design_and_flows():
    df = load_curve_of({"legacy": {"router": "legacy"}, "dvr": {"router": "dvr"}}, [500, 3000])
    assert len(df) == 4 and {"design", "flows", "nn_delay_ms_mean", "nn_loss", "network_node_share"} <= set(df.columns)
    at = df.set_index(["design", "flows"])
    assert at.loc[("legacy", 3000), "nn_loss"] > at.loc[("dvr", 3000), "nn_loss"]


def test_bad_fraction_is_refused():
    with pytest.raises(ValueError, match="fip_fraction"):
        DvrDesign.of({"fip_fraction": 1.5})


def test_figures_draw_every_class_and_design(cloud):
    import matplotlib

    matplotlib.use("Agg")
    from labtwin.scenarios.dvr import figures

    runs = {r: simulate(cloud, {"router": r}, seed=1, duration=0.02) for r in ("legacy", "dvr")}
    fig = figures.path_figure(runs["dvr"])
    drawn = [ax for ax in fig.axes if ax.collections]
    assert len(drawn) == len(CLASSES)
    assert len(figures.path_graph(runs["dvr"].summary["paths"][1])) == len(runs["dvr"].summary["paths"][1]["hops"])
    assert len(figures.failover_timeline(runs).axes) == 1
    df = load_curve_of({"legacy": {"router": "legacy"}}, [100, 200])
    assert len(figures.load_curve(df).axes) == 3
