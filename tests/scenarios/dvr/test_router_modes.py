"""Each router runs in the mode its own fields give; the ``router`` knob overrides them all (issue 12)."""

from __future__ import annotations

from pathlib import Path

import pytest

from labtwin.description import load_cloud
from labtwin.scenarios import get_scenario, topologies_dir
from labtwin.scenarios.dvr import missing
from labtwin.scenarios.dvr.emulation.emulable import NotEmulated, check_emulable
from labtwin.scenarios.dvr.knobs import DvrDesign
from labtwin.scenarios.dvr.model import simulate
from labtwin.scenarios.dvr.model.paths import CLASSES, class_paths

THREE = Path(__file__).with_name("three-routers.yaml")


@pytest.fixture(scope="module")
def cloud():
    return load_cloud(THREE)


def by_router(cloud, **knobs):
    out: dict = {}
    for p in class_paths(cloud, DvrDesign.of(knobs)):
        out.setdefault(p.router, {})[p.traffic_class] = p
    return out


def test_each_router_is_studied_in_its_own_mode(cloud):
    got = by_router(cloud)
    assert list(got) == ["r-legacy", "r-dvr", "r-inner"]
    assert {name: {p.mode for p in paths.values()} for name, paths in got.items()} == {
        "r-legacy": {"legacy"},  # distributed omitted: Neutron's router_distributed default, False
        "r-dvr": {"dvr"},
        "r-inner": {"legacy"},
    }
    for paths in got.values():
        assert list(paths) == list(CLASSES)
    # legacy routes east-west in the network node; DVR in the source host's qrouter
    assert got["r-legacy"]["ew-cross-host"].via_network_node
    assert not got["r-dvr"]["ew-cross-host"].via_network_node
    # each router's paths go through its own namespaces and nobody else's
    for name, paths in got.items():
        rid = str(cloud.router[name].id)
        others = [str(r.id) for r in cloud.routers if r.name != name]
        for p in paths.values():
            assert not any(o in hop for hop in p.hops for o in others), (name, p.traffic_class)
            assert not p.hops or any(rid in hop for hop in p.hops) or p.traffic_class == "dhcp"
    # DVR floating IPs leave from the VM's host; legacy ones through the network node
    assert not got["r-dvr"]["ns-fip-out"].via_network_node
    assert got["r-legacy"]["ns-fip-out"].via_network_node


def test_a_router_without_gateway_routes_east_west_only(cloud):
    inner = by_router(cloud)["r-inner"]
    assert inner["ew-cross-host"].hops and inner["ew-cross-host"].reachable
    for cls in ("ns-fip-out", "ns-fip-in", "ns-snat", "ns-ipv6"):
        assert not inner[cls].hops
        assert inner[cls].note == "router 'r-inner' has no external gateway"


def test_the_knob_overrides_every_router_and_the_summary_says_so(cloud):
    got = by_router(cloud, router="dvr")
    assert all(p.mode == "dvr" for paths in got.values() for p in paths.values())
    assert not got["r-legacy"]["ew-cross-host"].via_network_node
    run = simulate(cloud, {"router": "dvr"}, seed=1, duration=0.02)
    assert run.summary["router_modes"] == {
        name: "dvr (knob router=dvr (overrides the topology))" for name in ("r-legacy", "r-dvr", "r-inner")
    }
    plain = simulate(cloud, {}, seed=1, duration=0.02)
    assert plain.summary["router_modes"] == {
        "r-legacy": "legacy (topology)",
        "r-dvr": "dvr (topology)",
        "r-inner": "legacy (topology)",
    }


def test_the_matrix_weighs_routers_by_their_vms(cloud):
    run = simulate(cloud, {}, seed=1, duration=0.02)
    per_router = {name: sum(w.values()) for name, w in run.summary["class_weights"].items()}
    assert per_router == pytest.approx({"r-legacy": 1 / 3, "r-dvr": 1 / 3, "r-inner": 1 / 3}, abs=1e-5)  # rounded
    # r-inner has no gateway: all its traffic is east-west
    assert run.summary["class_weights"]["r-inner"]["ns-snat"] == 0.0
    dvr_everywhere = simulate(cloud, {"router": "dvr"}, seed=1, duration=0.02)
    assert dvr_everywhere.summary["network_node_share"] < run.summary["network_node_share"]


def test_every_probe_is_studied_once(cloud):
    run = simulate(cloud, {}, seed=1, duration=0.02)
    keys = [(p.src, p.dst, p.protocol, p.port) for p in run.probes.itertuples()]
    assert len(keys) == len(set(keys))


def test_the_default_topologies_routers_keep_their_modes():
    minimal = load_cloud(topologies_dir() / "minimal.yaml")
    assert {p.mode for p in class_paths(minimal, DvrDesign.of({}))} == {"legacy"}
    dvr = load_cloud(topologies_dir() / "dvr.yaml")
    assert {p.mode for p in class_paths(dvr, DvrDesign.of({}))} == {"dvr"}


def test_the_labtwin_emulation_refuses_what_it_cannot_build(cloud):
    with pytest.raises(NotEmulated, match="builds one router; this cloud has 3 .*r-legacy, r-dvr, r-inner"):
        check_emulable(cloud, DvrDesign.of({}))
    dvr = load_cloud(topologies_dir() / "dvr.yaml")
    check_emulable(dvr, DvrDesign.of({}))
    check_emulable(dvr, DvrDesign.of({"router": "ovn"}))  # real OVN builds it (control=ovn)


def test_an_external_ipv6_gateway_left_to_neutrons_default_is_refused_by_the_labtwin_emulation():
    """Neutron's default IPv6 gateway is the subnet-router anycast address, which the router's own Linux namespace
    takes as its own (seen here: every probe to the outside world stopped in the snat- namespace)."""
    from labtwin.description.loader import parse_cloud

    text = (topologies_dir() / "dvr.yaml").read_text()
    assert "    gateway_ip: 2001:db8:ffff::1" in text
    default = parse_cloud(text.replace("    gateway_ip: 2001:db8:ffff::1", ""), "dvr-default-v6-gateway.yaml")
    with pytest.raises(NotEmulated, match="ext-v6's gateway 2001:db8:ffff:: is its subnet-router anycast"):
        check_emulable(default, DvrDesign.of({}))


def test_validate_notes_an_external_ipv6_gateway_left_at_the_anycast_address(tmp_path):
    """What the emulation found is a fact of real Linux routers too: ``labtwin validate`` says it, for the gateway's
    network only (tenant subnets keep the default: there the Neutron router is the gateway)."""
    from click.testing import CliRunner

    from labtwin.cli import main

    text = (topologies_dir() / "dvr.yaml").read_text()
    path = tmp_path / "dvr-default-v6-gateway.yaml"
    path.write_text(text.replace("    gateway_ip: 2001:db8:ffff::1", ""))
    result = CliRunner().invoke(main, ["validate", str(path)])
    notes = [line for line in result.output.splitlines() if ": note: " in line]
    assert result.exit_code == 0 and len(notes) == 1, result.output
    assert "subnets[ext-v6]: its gateway 2001:db8:ffff:: is Neutron's IPv6 default" in notes[0]
    plain = CliRunner().invoke(main, ["validate", str(topologies_dir() / "dvr.yaml")])
    assert plain.exit_code == 0 and ": note: " not in plain.output


def test_a_gateway_is_no_longer_needed_but_an_interface_is(cloud):
    design = get_scenario("dvr").design({})
    assert missing(cloud, design) == []
    bare = load_cloud(topologies_dir() / "minimal.yaml")
    no_interfaces = bare.model_copy(
        update={"routers": tuple(r.model_copy(update={"interfaces": ()}) for r in bare.routers)}
    )
    assert missing(no_interfaces, design) == ["a router with at least one interface (none of its 1 router(s) has one)"]
