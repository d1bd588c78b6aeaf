"""The path search through the Neutron routers' namespaces (labtwin.scenarios.dvr.model.namespaces, .search): the
devices, rules and routes each router's mode builds, and the walk of a packet through them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from labtwin.description import load_cloud
from labtwin.scenarios import topologies_dir
from labtwin.scenarios.dvr import neutron_names as names
from labtwin.scenarios.dvr.knobs import DvrDesign
from labtwin.scenarios.dvr.model import namespaces
from labtwin.scenarios.dvr.model.namespaces import FIP_PR_START, fixed, snat_idx
from labtwin.scenarios.dvr.model.plane import Plane
from labtwin.scenarios.dvr.model.search import RouterSearch
from labtwin.scenarios.dvr.spec import external_network, gateway_host, router_mode, studied_routers

HERE = Path(__file__).parent
THREE = HERE / "three-routers.yaml"
DVR = topologies_dir() / "dvr.yaml"


def searched(cloud, **knobs) -> RouterSearch:
    design = DvrDesign.of(knobs)
    planes = {}
    for router in studied_routers(cloud):
        mode = router_mode(router, design)
        planes[router.name] = Plane(
            cloud, router, mode, gateway_host(cloud, design, mode), external_network(cloud, router), design
        )
    return RouterSearch(cloud, planes, design)


@pytest.mark.filterwarnings("ignore")  # eventlet's and oslo's deprecation notices on importing the agent
def test_snat_idx_is_neutrons():
    from neutron.agent.l3.dvr_local_router import DvrLocalRouter

    for cidr in ("10.0.0.0/24", "192.0.2.0/24", "0.0.1.0/24", "2001:db8::/64", "fd00:1:2::/48"):
        assert snat_idx(cidr) == DvrLocalRouter._get_snat_idx(cidr), cidr


def test_each_mode_builds_its_own_namespaces():
    found = searched(load_cloud(THREE))
    keys = set(found.routers.namespaces)
    cloud = found.cloud
    legacy, dvr, inner = (str(cloud.router[n].id) for n in ("r-legacy", "r-dvr", "r-inner"))
    # legacy: one qrouter on the network node, nothing on the computes, no snat- and no fip- of its own
    assert {k for k in keys if legacy in k} == {f"network-1:qrouter-{legacy}"}
    # DVR: a qrouter on each host with a bound port of its subnets and on the dvr_snat node, snat- there
    assert {k for k in keys if dvr in k} == {
        f"compute-1:qrouter-{dvr}",
        f"compute-2:qrouter-{dvr}",
        f"network-1:qrouter-{dvr}",
        f"network-1:snat-{dvr}",
    }
    # a fip- namespace on every host with the DVR router, floating IP or not (DvrLocalRouter.process_external);
    # the legacy router's hosts get none of their own (network-1 has one for r-dvr)
    ext = cloud.network["ext-net"].id
    fip_keys = {k for k in keys if k.split(":")[-1].startswith("fip-")}
    assert fip_keys == {f"{h}:fip-{ext}" for h in ("compute-1", "compute-2", "network-1")}
    # the gateway-less router: a qrouter, no gateway port
    ns = found.routers.namespaces[f"network-1:qrouter-{inner}"]
    assert [i.hop.split(":")[-1][:3] for i in ns.ifaces] == ["qr-", "qr-"]
    # legacy: the floating IP is held by qg- (a-1's), DVR: by the fg- port of the VM's host (proxy_arp)
    qg = next(i for i in found.routers.namespaces[f"network-1:qrouter-{legacy}"].ifaces if "qg-" in i.hop)
    assert ("fip", "a-1", 4) in qg.addresses
    fg = next(i for i in found.routers.namespaces[f"compute-1:fip-{ext}"].ifaces if ":fg-" in i.hop)
    assert fg.addresses == (("fg", "compute-1", 4), ("fip", "c-1", 4))  # its own, then the proxied FIP
    fg = next(i for i in found.routers.namespaces[f"compute-2:fip-{ext}"].ifaces if ":fg-" in i.hop)
    assert fg.addresses == (("fg", "compute-2", 4),)  # no floating IP: it answers for nothing else


def test_a_dvr_qrouter_has_neutrons_rules():
    cloud = load_cloud(THREE)
    found = searched(cloud)
    ns = found.routers.namespaces[f"compute-1:qrouter-{cloud.router['r-dvr'].id}"]
    rules = sorted(ns.rules, key=lambda r: r.priority)
    assert rules[0] == namespaces.Rule(FIP_PR_START, ("addr", fixed(cloud.port["c-1"])), "16")
    assert [(r.src, r.table) for r in rules[1:]] == [
        (("subnet", "sub-c"), str(snat_idx("10.3.0.0/24"))),
        (("subnet", "sub-d"), str(snat_idx("10.4.0.0/24"))),
    ]
    assert [(r.dst, r.via) for r in ns.tables[str(snat_idx("10.3.0.0/24"))]] == [
        (("default", 4), ("sg", "r-dvr", "sub-c"))
    ]
    assert [(r.dst, r.via) for r in ns.tables["16"]] == [(("default", 4), ("fpr", "r-dvr", "compute-1"))]


def test_the_walk_takes_each_rule_and_breaks_without_it():
    """A VM with a floating IP leaves by its host's fip- namespace; without the floating-IP rule it would take
    the SNAT redirect to the network node; without that, too, no route is left (a DVR qrouter's main table has
    no default route)."""
    cloud = load_cloud(DVR)
    found = searched(cloud)
    fip_vm = cloud.port[next(f.port_id for f in cloud.floatingips)]
    tap = f"{fip_vm.host}:{names.tap_device(fip_vm.id)}"
    go = found.walk(tap, fixed(fip_vm), ("external", "", 4))
    assert go.nat == "snat fixed->fip" and go.ttl == 62 and any(":fip-" in h for h in go.hops)
    assert not any(":snat-" in h for h in go.hops)
    fip_ns = found.routers.namespaces[f"{fip_vm.host}:{names.fip_ns(cloud.network['ext-net'].id)}"]
    (rule,) = fip_ns.rules  # iif fpr- lookup <idx>: the fip- namespace's way out is for what the router sent
    assert rule.iif.split(":")[-1].startswith("fpr-") and rule.family == 4
    assert [r.dst for r in fip_ns.tables[rule.table]] == [("default", 4), ("default", 6)]
    assert all(r.dst[0] != "default" for r in fip_ns.tables["main"])  # only the external subnets, on-link
    beyond = found.walk(tap, fixed(fip_vm), ("beyond", "", 4))  # past the external subnet's gateway
    assert beyond.arrived is not None and beyond.nat == "snat fixed->fip"
    fip_ns.rules = []
    assert "no route to ('beyond', '', 4) in" in found.walk(tap, fixed(fip_vm), ("beyond", "", 4)).note
    fip_ns.rules = [rule]
    qrouter = found.routers.namespaces[f"{fip_vm.host}:{names.qrouter_ns(cloud.router['router1'].id)}"]
    qrouter.rules = [r for r in qrouter.rules if r.table != "16"]
    wrong = found.walk(tap, fixed(fip_vm), ("external", "", 4))
    assert wrong.nat == "snat fixed->qg" and any(":snat-" in h for h in wrong.hops)
    qrouter.rules = []
    lost = found.walk(tap, fixed(fip_vm), ("external", "", 4))
    assert lost.arrived is None and lost.note.startswith("no route to ('external', '', 4) in") and lost.ttl is None


def fip_namespaces(found: RouterSearch) -> dict[tuple[str, str], tuple[int, ...]]:
    """{(host, external network): the IP versions of its fg- port's own addresses} over the model's fip- namespaces
    (each has its fpr- end of a router's rfp- veth too)."""
    out = {}
    for ns in found.routers.namespaces.values():
        if ":fip-" in ns.key:
            (fg,) = [i for i in ns.ifaces if ":fg-" in i.hop]
            assert any(":fpr-" in i.hop for i in ns.ifaces)
            out[(fg.host, fg.l2)] = tuple(a[2] for a in fg.addresses if a[0] == "fg")
    return out


def loader_agent_gateway_ports(cloud) -> dict[tuple[str, str], tuple[int, ...]]:
    """The same, from the fg- ports the loader made (neutron_ports.agent_gateway_ports, checked against Neutron's
    own L3RpcCallback by the oracle)."""
    from labtwin.description.neutron_ports import AGENT_GATEWAY_OWNER

    return {
        (str(p.host), p.network_id): tuple(sorted({cloud.subnet[f.subnet_id].ip_version for f in p.fixed_ips}))
        for p in cloud.network_ports
        if p.device_owner == AGENT_GATEWAY_OWNER
    }


def every_dvr_cloud():
    for name, cloud in every_topology():
        if "enable_snat false" not in str(name) and any(
            r.distributed and r.external_gateway_info for r in cloud.routers
        ):
            yield name, cloud


def test_every_dvr_host_has_fip_and_the_loaders_fg_port_floating_ip_or_not():
    """Every cloud under topologies/ and tests/ with a distributed router: the model's fip- namespaces are exactly
    the loader's fg- ports (host, external network, IP versions), the hosts without a floating IP included."""
    checked = without_fip = 0
    for name, cloud in every_dvr_cloud():
        found = searched(cloud)
        assert fip_namespaces(found) == loader_agent_gateway_ports(cloud), name
        fip_hosts = {cloud.port[f.port_id].host for f in cloud.floatingips if f.port_id in cloud.port}
        without_fip += len({host for host, _ in fip_namespaces(found)} - fip_hosts)
        checked += 1
    assert checked >= 12 and without_fip >= 20  # 12 clouds, 23 such hosts when written


def test_a_model_drawing_fip_on_floating_ip_hosts_only_is_caught(monkeypatch):
    """The old model (fip- and fg- only where a floating IP is bound) differs from the loader's fg- ports."""
    real = namespaces.Routers._fip_link

    def fip_hosts_only(self, ns, plane, host, fips):
        if fips:
            real(self, ns, plane, host, fips)

    monkeypatch.setattr(namespaces.Routers, "_fip_link", fip_hosts_only)
    wrong = [
        name
        for name, cloud in every_dvr_cloud()
        if fip_namespaces(searched(cloud)) != loader_agent_gateway_ports(cloud)
    ]
    assert len(wrong) >= 12


def test_a_host_without_a_floating_ip_has_fip_but_its_ipv4_leaves_by_snat():
    """No rule leads to table 16 without a floating IP: the fip- namespace is there, IPv4 goes to snat-."""
    cloud = load_cloud(DVR)
    found = searched(cloud)
    vm = next(p for p in cloud.vm_ports if not any(f.port_id == p.name for f in cloud.floatingips))
    assert f"{vm.host}:{names.fip_ns(cloud.network['ext-net'].id)}" in found.routers.namespaces
    go = found.walk(f"{vm.host}:{names.tap_device(vm.id)}", fixed(vm), ("external", "", 4))
    assert go.nat == "snat fixed->qg" and any(":snat-" in h for h in go.hops)
    assert not any(":fip-" in h or ":rfp-" in h for h in go.hops)


def test_dvr_ipv6_leaves_by_the_hosts_fip_and_dies_there_beyond_the_external_subnet():
    """Neutron 29's create_rtr_2_fip_link: IPv6 default via fpr-'s link-local in the qrouter's main table, before
    the IPv6 SNAT redirect rule; in fip- only the external subnets are on-link. So the outside world's router is
    reached from the VM's own host (no NAT, TTL 62), its reply comes back through snat- (the outside routes the
    tenant prefix to qg-), and an address beyond it dies in fip- with the reason; a legacy router reaches both.
    As Neutron's own agent did (/work/notes/finding-ipv6-dvr.md)."""
    cloud = load_cloud(DVR)
    found = searched(cloud)
    vm = next(p for p in cloud.vm_ports if any(cloud.subnet[f.subnet_id].ip_version == 6 for f in p.fixed_ips))
    tap = f"{vm.host}:{names.tap_device(vm.id)}"
    fip_ns = f"{vm.host}:{names.fip_ns(cloud.network['ext-net'].id)}:"
    go = found.walk(tap, fixed(vm, 6), ("external", "", 6))
    assert go.arrived is not None and go.ttl == 62 and go.nat == "none"
    assert any(h.startswith(fip_ns + "fg-") for h in go.hops) and not any(":snat-" in h for h in go.hops)
    assert all(h.split(":")[0] == vm.host for h in go.hops[:-2])
    back = found.reply(go)
    assert back.arrived is not None and any(":snat-" in h for h in back.hops) and back.ttl == 63
    lost = found.walk(tap, fixed(vm, 6), ("beyond", "", 6))
    assert lost.arrived is None and lost.hops[-1].startswith(fip_ns + "fpr-")
    assert "no IPv6 route in fip-" in lost.note and "IPv4-only 'iif fpr-' rule" in lost.note
    legacy = searched(cloud, router="legacy")
    assert legacy.walk(tap, fixed(vm, 6), ("beyond", "", 6)).arrived is not None


def test_a_model_sending_dvr_ipv6_to_snat_or_out_of_fip_is_caught():
    """The old model (no main-table IPv6 default in qrouter-: the SNAT redirect to snat-) and a fip- whose
    'iif fpr-' rule matched IPv6 too (an address beyond the external subnet reached) both differ."""
    cloud = load_cloud(DVR)
    vm = next(p for p in cloud.vm_ports if any(cloud.subnet[f.subnet_id].ip_version == 6 for f in p.fixed_ips))
    tap = f"{vm.host}:{names.tap_device(vm.id)}"
    found = searched(cloud)
    qrouter = found.routers.namespaces[f"{vm.host}:{names.qrouter_ns(cloud.router['router1'].id)}"]
    qrouter.tables["main"] = [r for r in qrouter.tables["main"] if r.dst != ("default", 6)]
    old = found.walk(tap, fixed(vm, 6), ("external", "", 6))
    assert any(":snat-" in h for h in old.hops) and not any(":fip-" in h for h in old.hops)
    found = searched(cloud)
    fip_ns = found.routers.namespaces[f"{vm.host}:{names.fip_ns(cloud.network['ext-net'].id)}"]
    fip_ns.rules = [replace(r, family=0) for r in fip_ns.rules]
    assert found.walk(tap, fixed(vm, 6), ("beyond", "", 6)).arrived is not None


def test_conntrack_brings_the_snat_reply_back_and_without_snat_nothing_returns():
    cloud = load_cloud(DVR)
    found = searched(cloud, router="legacy")
    vm = next(p for p in cloud.vm_ports if not any(f.port_id == p.name for f in cloud.floatingips))
    go = found.walk(f"{vm.host}:{names.tap_device(vm.id)}", fixed(vm), ("external", "", 4))
    assert go.nat == "snat fixed->qg" and go.arrived == (("gw", "router1", 4), ("external", "", 4))
    back = found.reply(go)
    assert back.arrived is not None and back.hops == go.hops[::-1] and back.ttl == 63
    assert found.reply(go.__class__(**{**go.__dict__, "conntrack": ()})).arrived is None  # no conntrack: lost


# -- the search against the per-design builders it replaces (while both exist) --------------------------------------
DESIGNS = (
    {},
    {"router": "legacy"},
    {"router": "dvr"},
    {"router": "dvr", "firewall_driver": "iptables_hybrid"},
    {"router": "legacy", "firewall_driver": "iptables_hybrid"},
    {"router": "legacy", "agent": "linuxbridge"},
)
ROOT = Path(__file__).resolve().parents[3]


def every_topology():
    """Every cloud under topologies/ and tests/ that loads and has a router and a network node, and the same cloud
    with SNAT off on every gateway (no file has one)."""
    for path in sorted({*ROOT.glob("topologies/*.yaml"), *ROOT.glob("tests/**/*.yaml")}):
        try:
            cloud = load_cloud(path)
        except ValueError:  # CloudError: the refusal cases, and files that are not clouds
            continue
        if not studied_routers(cloud) or not any(h.role == "network" for h in cloud.hosts):
            continue
        off = tuple(
            r.model_copy(
                update={"external_gateway_info": r.external_gateway_info.model_copy(update={"enable_snat": False})}
            )
            if r.external_gateway_info
            else r
            for r in cloud.routers
        )
        yield path.relative_to(ROOT), cloud
        yield f"{path.relative_to(ROOT)} (enable_snat false)", cloud.model_copy(update={"routers": off})


#: A design with every PTG proposal on: the classes designs.neutron_ovs draws beside the search's.
PROPOSALS = {
    "router": "dvr",
    "ipv6_fast_exit": True,
    "distributed_snat": True,
    "distributed_dhcp": True,
    "vip_arp": "learned",
}
#: ML2/OVN's logical routers, gateway on the first network node, floating IPs centralized or distributed.
OVN = ({"router": "ovn"}, {"router": "ovn", "ovn_distributed_fip": True})
#: class_paths as the per-design builders (designs.legacy, designs.dvr, and OVN's drawn builder) gave it before
#: the search replaced them (5f82291 compared legacy and DVR with the search on the same clouds and designs, 768
#: classes equal; OVN: 360 classes equal, 930c960): per cloud and design, a hash of every class's
#: ClassPath.as_dict(). Write it again with
#: ``python tests/scenarios/dvr/test_search_routers.py`` only when a path is meant to change.
BEFORE = HERE / "paths-before-search.json"
#: Classes whose paths were meant to change since, left out of the hashes (written again without them at the
#: commit before the change, whose paths still matched): a DVR router's IPv6 north-south leaves by the host's own
#: fip- as Neutron 29's create_rtr_2_fip_link routes it, not by snat- (/work/notes/finding-ipv6-dvr.md).
CHANGED_SINCE = {("dvr", "ns-ipv6")}


def path_hashes(only: tuple[str, ...] = ()) -> dict[str, dict[str, str]]:
    """{cloud: {design: hash of its classes}} over :func:`every_topology` (*only*: those) and :data:`DESIGNS`
    plus :data:`PROPOSALS`."""
    import hashlib
    import json

    from labtwin.scenarios.dvr.model.paths import class_paths
    from labtwin.scenarios.dvr.spec import design_conflicts

    out: dict[str, dict[str, str]] = {}
    for name, cloud in every_topology():
        if only and str(name) not in only:
            continue
        for knobs in (*DESIGNS, PROPOSALS, *OVN):
            if design_conflicts(cloud, DvrDesign.of(knobs)):
                continue
            paths = [
                json.dumps(p.as_dict(), sort_keys=True)
                for p in class_paths(cloud, DvrDesign.of(knobs))
                if (p.mode, p.traffic_class) not in CHANGED_SINCE
            ]
            digest = hashlib.sha256("\n".join(paths).encode()).hexdigest()[:16]
            out.setdefault(str(name), {})[json.dumps(knobs, sort_keys=True)] = digest
    return out


def test_the_search_gives_what_the_builders_gave_on_every_topology():
    """Hops, NAT, reachability, notes, wires (segmentation, MACs with the DVR rewrite), TTL and reply of every
    class, on every cloud under topologies/ and tests/ (and each with SNAT off), under legacy and DVR designs."""
    import json

    before = json.loads(BEFORE.read_text())
    now = path_hashes(tuple(before))  # clouds added since are not the builders' to answer for
    differ = [
        (cloud, design)
        for cloud in before
        for design in before[cloud]
        if now.get(cloud, {}).get(design) != before[cloud][design]
    ]
    assert not differ, f"{len(differ)} (cloud, design) pairs changed paths, e.g. {differ[:4]}"
    assert (
        sum(len(d) for d in before.values()) >= 280
    )  # 22 clouds with a router and a network node, twice, under up to 7 designs


def test_a_changed_path_changes_the_hashes(monkeypatch):
    from labtwin.scenarios.dvr.model import search

    three = "tests/scenarios/dvr/three-routers.yaml"
    before = path_hashes((three,))[three]
    monkeypatch.setattr(search, "NOTES", {**search.NOTES, ("legacy", "ns-ipv6"): "changed"})
    monkeypatch.setattr(search.RouterSearch, "_crossings", lambda self, path, sender, target: [])
    after = path_hashes((three,))[three]
    assert all(after[design] != before[design] for design in before)


if __name__ == "__main__":
    import json

    BEFORE.write_text(json.dumps(path_hashes(), indent=1, sort_keys=True) + "\n")


def test_one_search_gives_each_router_of_a_mixed_cloud_its_own_paths():
    """three-routers.yaml: a legacy, a distributed and a gateway-less router side by side, one search."""
    from labtwin.scenarios.dvr.model.paths import class_paths

    cloud = load_cloud(THREE)
    paths = {(p.router, p.traffic_class): p for p in class_paths(cloud, DvrDesign.of({}))}
    legacy, dvr = (str(cloud.router[n].id) for n in ("r-legacy", "r-dvr"))
    mac = {p.name: p.mac_address or names.mac_of(p.id) for p in cloud.ports}

    def qr(router, subnet):
        return names.mac_of(names.router_port_id(router, "qr", subnet))

    ew = paths["r-legacy", "ew-cross-host"]  # a-1 (compute-1) -> b-1 (compute-2), routed on network-1
    assert [h for h in ew.hops if "qrouter-" in h] == [
        f"network-1:qrouter-{legacy}:{names.qr_device(names.router_port_id('r-legacy', 'qr', s))}"
        for s in ("sub-a", "sub-b")
    ]
    assert [(w.src_host, w.dst_host, w.segmentation_id, w.src_mac, w.dst_mac) for w in ew.wires] == [
        ("compute-1", "network-1", 101, mac["a-1"], qr("r-legacy", "sub-a")),
        ("network-1", "compute-2", 102, qr("r-legacy", "sub-b"), mac["b-1"]),
    ]
    assert ew.ttl == 63 and ew.reply == ew.hops[::-1]
    ew = paths["r-dvr", "ew-cross-host"]  # c-1 (compute-1) -> d-1 (compute-2), routed on compute-1
    assert {h.split(":")[0] for h in ew.hops if "qrouter-" in h} == {"compute-1"} and dvr in ew.hops[2]
    assert [(w.src_host, w.dst_host, w.segmentation_id, w.src_mac, w.dst_mac) for w in ew.wires] == [
        ("compute-1", "compute-2", 104, names.dvr_mac("compute-1"), mac["d-1"])
    ]
    assert ew.ttl == 63 and {h.split(":")[0] for h in ew.reply if "qrouter-" in h} == {"compute-2"}
    out = paths["r-legacy", "ns-fip-out"], paths["r-dvr", "ns-fip-out"]
    assert [p.nat for p in out] == ["snat fixed->fip"] * 2 and [p.ttl for p in out] == [63, 62]
    assert [{w.src_host for w in p.wires} for p in out] == [{"compute-1", "network-1"}, {"compute-1"}]
    assert paths["r-dvr", "ns-snat"].nat == "snat fixed->qg" and any(
        f"network-1:snat-{dvr}" in h for h in paths["r-dvr", "ns-snat"].hops
    )
    assert not paths["r-inner", "ns-snat"].hops and paths["r-inner", "ew-cross-host"].ttl == 63

    # one router's mode changed in the file changes that router's paths only
    flipped = cloud.model_copy(
        update={
            "routers": tuple(
                r.model_copy(update={"distributed": True}) if r.name == "r-legacy" else r for r in cloud.routers
            )
        }
    )
    again = {(p.router, p.traffic_class): p for p in class_paths(flipped, DvrDesign.of({}))}
    assert all(again[key] == p for key, p in paths.items() if key[0] != "r-legacy")
    assert again["r-legacy", "ew-cross-host"].mode == "dvr" and not again["r-legacy", "ew-cross-host"].via_network_node


def test_an_ovn_router_is_routed_once_on_the_source_chassis_and_continued_on_the_gateway():
    """ML2/OVN (conformance 38's cloud): SNAT leaves through the gateway chassis's cr-lrp after a Geneve redirect
    on the router's datapath, one TTL decrement in all; a gateway stage that routed again would make it two."""
    cloud = load_cloud(ROOT / "tests" / "conformance" / "38-path-ovn-ns-snat" / "topology.yaml")
    found = searched(cloud, router="ovn")
    vm = cloud.port["vm1"]
    go = found.walk(f"{vm.host}:{names.tap_device(vm.id)}", fixed(vm), ("external", "", 4))
    stages = [h.split(":")[2].split("-")[0] for h in go.hops if h.count(":") == 2]
    assert stages == ["lrp", "cr"] and go.nat == "snat fixed->qg" and go.ttl == 63
    assert [(w.network, w.network_type, w.dst_mac) for w in go.wires][0] == ("router:router1", "geneve", "external")
    stage = next(ns for key, ns in found.routers.namespaces.items() if key.endswith(":gateway"))
    wrong = {i.id: replace(i, continues=False) for i in stage.ifaces if i.continues}
    stage.ifaces = [wrong.get(i.id, i) for i in stage.ifaces]
    found.routers.by_l2 = {l2: [wrong.get(i.id, i) for i in ifaces] for l2, ifaces in found.routers.by_l2.items()}
    assert found.walk(f"{vm.host}:{names.tap_device(vm.id)}", fixed(vm), ("external", "", 4)).ttl == 62


def test_dvr_ipv6_dies_in_fip_when_the_external_network_has_no_ipv6_subnet(tmp_path):
    """Conformance case 34's cloud without provider1-v6: the qrouter- still sends IPv6 into fip- (its main-table
    default is there whatever the external network holds), and fip- has no IPv6 address nor route: the class is
    unreachable, its path ends in fip-, with the reason."""
    import yaml

    from labtwin.scenarios.dvr.model.paths import class_paths

    data = yaml.safe_load((HERE.parents[1] / "conformance" / "34-path-dvr-ipv6" / "topology.yaml").read_text())
    data["subnets"] = [s for s in data["subnets"] if s["name"] != "provider1-v6"]
    (tmp_path / "no-v6.yaml").write_text(yaml.safe_dump(data))
    cloud = load_cloud(tmp_path / "no-v6.yaml")
    (v6,) = [p for p in class_paths(cloud, DvrDesign.of({})) if p.traffic_class == "ns-ipv6"]
    assert v6.mode == "dvr" and v6.reachable is False and v6.ttl is None
    assert ":fip-" in v6.hops[-1] and v6.hops[-1].split(":")[-1].startswith("fpr-")
    assert "no IPv6 route in fip-" in v6.note
