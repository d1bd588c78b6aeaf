"""control=neutron: Neutron 29's own L3 agents build the dvr emulation's legacy and DVR routers (issue 15).

What must hold: every class's observed path, network-node crossing, NAT and reachability equal the model's
(a wrong model disagrees); the kernel state is Neutron's own (its mark/scope chains, ``--random-fully``, its
IPv6 routes); the agent's stale-namespace cleanup saw only the run's namespace, and decoys named exactly as
Neutron names this router's namespaces survive; nothing outlives the run (radvd, which Neutron's agent starts
for an IPv6 qr- port, included) after a normal end; after a SIGKILL and ``labtwin clean``: test_neutron_l3_crash.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from labtwin import api
from labtwin.description import load_cloud
from labtwin.scenarios import topologies_dir
from labtwin.scenarios.dvr.emulation.emulable import NotEmulated, built_by, check_emulable
from labtwin.scenarios.dvr.emulation.neutron_l3 import agent_prefix, plan_neutron
from labtwin.scenarios.dvr.emulation.neutron_l3_rows import sync_rows
from labtwin.scenarios.dvr.knobs import DvrDesign
from labtwin.scenarios.dvr.spec import the_router

TOPOLOGY = Path(__file__).with_name("neutron-l3.yaml")
DVR_TOPOLOGY = Path(__file__).with_name("neutron-l3-dvr.yaml")
V6_TOPOLOGY = Path(__file__).with_name("neutron-l3-v6.yaml")
MIXED_TOPOLOGY = Path(__file__).with_name("neutron-l3-mixed.yaml")
KNOBS = {"control": "neutron", "router": "legacy"}


@pytest.fixture(scope="module")
def cloud():
    return load_cloud(TOPOLOGY)


def decoys(cloud) -> list[str]:
    """Namespaces named exactly as Neutron names this router's (and its external network's) on a real host."""
    router = the_router(cloud)
    ext = cloud.network[router.external_gateway_info.network_id]
    return [f"qrouter-{router.id}", f"snat-{router.id}", f"fip-{ext.id}"]


@pytest.mark.emulation
def test_neutrons_l3_agent_builds_the_legacy_router_and_the_twin_agrees(live, ledger_dir, snapshot, cloud):
    names = decoys(cloud)
    for name in names:
        subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        before = snapshot()
        report, model, run = api.twin("dvr", topology=TOPOLOGY, auto_calibrate=False, **KNOBS)
        assert snapshot() == before  # the decoys too: Neutron's cleanup never reached them
    finally:
        for name in names:
            subprocess.run(["ip", "netns", "delete", name], check=False)
    assert report.agree, report.disagreements.to_string()
    classes = {p["class"] for p in run.summary["paths"]}
    assert classes == {"ew-same-host", "ew-same-network", "ns-fip-out", "ns-fip-in", "ns-snat", "ns-ipv6", "dhcp"}
    assert all(p["reachable"] for p in run.summary["paths"])
    ipv6 = next(p for p in run.summary["paths"] if p["class"] == "ns-ipv6")
    assert ipv6["nat"] == "none" and any(":qg-" in hop for hop in ipv6["hops"])  # routed out of qg-, not NATed
    # the run says whose code built what: the routers Neutron's, the L2 flows and DHCP labtwin's own
    assert run.summary["built_by"]["routers"].startswith("Neutron 29's own L3 agents")
    assert run.summary["built_by"]["l2_flows"].startswith("labtwin's own")
    agent = run.summary["neutron_l3"]["agents"]["network-1"]
    router = str(the_router(cloud).id)
    assert agent["agent_mode"] == "legacy" and agent["routers"] == [router]
    assert agent["namespaces_managed"] == [f"{agent['prefix']}qrouter-{router}"]  # what its cleanup may touch
    assert list(agent["floatingip_statuses"][router].values()) == ["ACTIVE"]
    state = agent["state"]["qrouter:network-1"]
    rules = state["iptables"]
    # Neutron 29's own rules, which labtwin's agent does not write: the FIP's SNAT with --random-fully, the
    # postrouting-bottom hook, the address-scope marks
    assert "-A neutron-l3-agent-float-snat -s 10.10.0.3/32 -j SNAT --to-source 203.0.113.3 --random-fully" in rules
    assert any(r.startswith("-A neutron-postrouting-bottom") for r in rules)
    # qg- and the IPv4 qr- ports (iptables-save: IPv4; the IPv6 qr- is marked in ip6tables)
    assert sum(r.startswith("-A neutron-l3-agent-scope -i ") for r in rules) == 3
    assert "default via 203.0.113.1 dev qg-bec3fe04-55 proto static" in state["routes"]
    # IPv6: Neutron's default route to the external subnet's gateway in the main table (router_info
    # _external_gateway_added), and the SLAAC qr- address is the subnet's gateway
    assert any(r.startswith("default via 2001:db8:ffff::1 dev qg-bec3fe04-55 proto static") for r in state["routes6"])
    assert any(a.endswith("inet6 2001:db8:a::/64") for a in state["addresses"]), state["addresses"]
    # a deliberately wrong model (the router distributed) disagrees with what Neutron's router did
    wrong = api.simulate("dvr", TOPOLOGY, control="labtwin", router="dvr")
    assert not api.compare_runs("dvr", wrong, run).agree


@pytest.mark.emulation
def test_neutrons_dvr_and_dvr_snat_agents_build_the_distributed_router_and_the_twin_agrees(live, ledger_dir, snapshot):
    """neutron-l3-dvr.yaml: Neutron's dvr_snat agent on network-1 (snat-, and a qrouter- and fip- of its own),
    its dvr agents on compute-1 and compute-2 (qrouter-, fip-); every class, the VIP after its failover too."""
    before = snapshot()
    report, model, run = api.twin("dvr", topology=DVR_TOPOLOGY, auto_calibrate=False, control="neutron")
    assert snapshot() == before
    assert report.agree, report.disagreements.to_string()
    paths = {p["class"]: p for p in run.summary["paths"]}
    assert len(paths) == 8 and not any(p["via_network_node"] for c, p in paths.items() if c.startswith("ew-"))
    assert not paths["ns-fip-out"]["via_network_node"] and paths["ns-snat"]["via_network_node"]
    # bug 1774459 with Neutron's own ARP handling: the permanent entry keeps the old master's MAC
    assert not paths["vip-after-failover"]["reachable"]
    assert paths["ew-cross-host"]["wires"][0]["src_mac"].startswith("fa:16:3f")  # compute-1's DVR MAC (OVS flows)
    agents = run.summary["neutron_l3"]["agents"]
    modes = {h: a["agent_mode"] for h, a in agents.items()}
    assert modes == {"network-1": "dvr_snat", "compute-1": "dvr", "compute-2": "dvr"}
    kinds = {h: sorted(k.split(":")[0] for k in a["state"]) for h, a in agents.items()}
    assert kinds == {
        "network-1": ["fip", "qrouter", "snat"],
        "compute-1": ["fip", "qrouter"],
        "compute-2": ["fip", "qrouter"],
    }
    for host, agent in agents.items():  # each agent's cleanup saw only its own host's namespaces
        assert all(n.startswith(agent["prefix"]) for n in agent["namespaces_managed"]), agent
        assert len(agent["namespaces_managed"]) == len(kinds[host])
    qrouter = agents["compute-1"]["state"]["qrouter:compute-1"]
    # Neutron's own choices, not labtwin's: the FIP rule's priority from its FipRulePriorityAllocator (labtwin's
    # agent writes 32768), the SNAT redirect rule from the qr- port's address with its prefix
    web1 = load_cloud(DVR_TOPOLOGY).port["web-1"].fixed_ips[0].ip_address
    assert any(r.endswith(f":\tfrom {web1} lookup 16") for r in qrouter["rules"]), qrouter["rules"]
    assert "168427521:\tfrom 10.10.0.1/24 lookup 168427521" in qrouter["rules"]
    assert any(r.startswith(f"-A neutron-l3-agent-float-snat -s {web1}/32 -j SNAT") for r in qrouter["iptables"])
    wrong = api.simulate("dvr", DVR_TOPOLOGY, control="labtwin", router="legacy")
    assert not api.compare_runs("dvr", wrong, run).agree


@pytest.mark.emulation
def test_a_legacy_and_a_distributed_router_side_by_side_and_dvr_ipv6_leaves_by_the_hosts_own_fip(
    live, ledger_dir, snapshot
):
    """neutron-l3-mixed.yaml: one network node whose dvr_snat agent builds legacy router-a and router-b's SNAT,
    dvr agents on compute-1 and compute-2 building router-b; each router's classes probed, the model's paths
    equal. And issue 12's IPv6 question, settled by Neutron 29's own agents (/work/notes/finding-ipv6-dvr.md):
    b-2 (compute-1, no floating IP) sends IPv6 north-south through compute-1's qrouter- main table's default via
    rfp- (``dvr_fip_ns.create_rtr_2_fip_link``) into fip-, which has no IPv6 rule and so only its connected
    routes (the probe's target, the external subnet's gateway, is on-link by fg-); its IPv4 (no main-table
    default) takes the SNAT redirect rule to snat- on network-1. radvd runs in router-b's qrouter- namespaces
    and is gone after the run."""
    before = snapshot()
    report, model, run = api.twin("dvr", topology=MIXED_TOPOLOGY, auto_calibrate=False, control="neutron")
    assert snapshot() == before  # radvd, its config and pid files too (the lock directories)
    paths = {(p["router"], p["class"]): p for p in run.summary["paths"] if p["hops"]}
    assert {(r, p["mode"]) for (r, _), p in paths.items()} == {("router-a", "legacy"), ("router-b", "dvr")}
    assert len(paths) == 11 and all(p["reachable"] for p in paths.values())
    assert paths[("router-a", "ns-fip-out")]["via_network_node"]  # legacy: through network-1's qrouter-
    assert not paths[("router-b", "ns-fip-out")]["via_network_node"]  # distributed: compute-2's own fip-
    agents = run.summary["neutron_l3"]["agents"]
    rids = {name: str(load_cloud(MIXED_TOPOLOGY).router[name].id) for name in ("router-a", "router-b")}
    assert {h: (a["agent_mode"], sorted(a["routers"])) for h, a in agents.items()} == {
        "network-1": ("dvr_snat", sorted(rids.values())),
        "compute-1": ("dvr", [rids["router-b"]]),
        "compute-2": ("dvr", [rids["router-b"]]),
    }
    ipv6, snat = paths[("router-b", "ns-ipv6")], paths[("router-b", "ns-snat")]
    assert not ipv6["via_network_node"] and ipv6["nat"] == "none"
    in_namespaces = [hop.split(":")[-1][:3] for hop in ipv6["hops"] if hop.count(":") == 2]
    assert in_namespaces == ["qr-", "rfp", "fpr", "fg-"] and ipv6["hops"][-3:-1] == ["compute-1:br-ex", "fabric"]
    assert snat["via_network_node"] and any(":sg-" in hop for hop in snat["hops"])
    state = agents["compute-1"]["state"]
    qrouter, fip = state["qrouter:compute-1@router-b"], state["fip:compute-1"]
    # the IPv6 default in qrouter-'s main table (priority 32766), before the SNAT redirect rule (crc32 index)
    assert any(r.startswith("default via fe80:") and " dev rfp-" in r and "table" not in r for r in qrouter["routes6"])
    assert any(r.endswith("from 2001:db8:b::/64 lookup " + r.split(":")[0]) for r in qrouter["rules6"])
    # fip-: only the kernel's IPv6 rules; its IPv6 default sits in a table no IPv6 rule looks up
    assert [r.split(":")[0] for r in fip["rules6"]] == ["0", "32766"], fip["rules6"]
    assert not any(r.startswith("default") and "table" not in r for r in fip["routes6"]), fip["routes6"]
    # the twin: every class agrees, b-2's IPv6 through compute-1's fip- too (the model follows Neutron 29's code
    # since efaf6ca)
    assert report.agree, report.disagreements.to_string()
    # deliberately wrong models: both routers drawn distributed (the knob overrides both), or both legacy
    for router in ("dvr", "legacy"):
        wrong = api.simulate("dvr", MIXED_TOPOLOGY, control="labtwin", router=router)
        assert not api.compare_runs("dvr", wrong, run).agree, router


def test_the_server_rows_are_the_topologys_router(cloud):
    dp, agents = plan_neutron(cloud, DvrDesign.of(KNOBS), "k4ll")
    rows = sync_rows(dp.layout)
    (router,) = rows["routers"]
    assert router["id"] == str(the_router(cloud).id) and router["distributed"] is False
    assert router["gw_port"]["fixed_ips"] == [  # the external IPv6 subnet too (l3_db._get_sync_routers' gw_port)
        {"subnet_id": str(cloud.subnet["ext-v4"].id), "ip_address": "203.0.113.2"},
        {"subnet_id": str(cloud.subnet["ext-v6"].id), "ip_address": "2001:db8:ffff::2"},
    ]
    # one qr- port per IPv4 subnet, and the IPv6 subnet's own (add_router_interface by subnet)
    assert [p["fixed_ips"][0]["ip_address"] for p in rows["interfaces"]] == ["10.10.0.1", "2001:db8:a::", "10.20.0.1"]
    # the subnets as _get_subnets_by_network_list gives them: ipv6_ra_mode is among its fields (radvd's config is
    # written from it, ra.DaemonMonitor._generate_radvd_conf), ipv6_address_mode is not
    v6 = next(s for n in rows["subnets"].values() for s in n if s["id"] == str(cloud.subnet["tenant-a-v6"].id))
    assert v6["ipv6_ra_mode"] == "slaac" and "ipv6_address_mode" not in v6
    assert [(f["fixed_ip_address"], f["floating_ip_address"]) for f in rows["floatingips"]] == [
        ("10.10.0.3", "203.0.113.3")
    ]
    (agent,) = agents
    assert agent.prefix == agent_prefix("k4ll", 0) == "ltk4lll0"
    assert agent.namespaces == {"qrouter:network-1": f"ltk4lll0qrouter-{router['id']}"}
    ext = router["external_gateway_info"]["network_id"]
    assert agent.unplanned == (f"ltk4lll0snat-{router['id']}", f"ltk4lll0fip-{ext}")  # ledgered all the same
    assert sorted(p["dev"] for p in agent.plugs.values()) == sorted(
        [dp.layout.qg.dev, *(p.dev for p in dp.layout.qr.values())]
    )
    assert all(p["root"].startswith("ltk4llu") for p in agent.plugs.values())  # the run's own root ends


#: Run in a process of its own (the private prefixes are Neutron module globals), from a file: a live test's
#: machine snapshot counts processes whose argv names the L3 worker module, and one may run meanwhile.
NEUTRON_SIDE = """
import json, sys
from labtwin.emulation import neutron_harness
neutron_harness.prepare("neutron-l3-agent")
from labtwin.emulation.neutron_agent.l3_worker import L3Server, private_prefixes
rows = json.loads(sys.stdin.read())
prefixes = private_prefixes("ltk4lll0")
from neutron.agent.l3.namespace_manager import NamespaceManager
from neutron.agent.l3.namespaces import RouterNamespace
manager = NamespaceManager.__new__(NamespaceManager)
rid = rows["routers"][0]["id"]
try:
    private_prefixes("lt-k4")
    refused = False
except ValueError:
    refused = True
(router,) = L3Server(rows).get_routers(None, [rid])
from labtwin.emulation.neutron_agent.l3_driver import EmulatedBridgeDriver
try:  # a port the run did not plan (and ledger) is refused before anything is made
    EmulatedBridgeDriver(None).plug_new("net", "unplanned", "qr-unplanned", "fa:16:3e:00:00:01")
    unplanned = "plugged"
except KeyError as exc:
    unplanned = str(exc)
print(json.dumps({
    "prefixes": prefixes,
    "managed": [manager.is_managed(n) for n in (f"qrouter-{rid}", f"snat-{rid}", f"ltk4lll0qrouter-{rid}",
                                                  f"ltk4lll0snat-{rid}", f"ltk4lll0fip-{rid}", f"ltk4xqrouter-{rid}")],
    "name": RouterNamespace(rid, None, None, False).name,
    "refused": refused,
    "interfaces": [(p["fixed_ips"][0]["prefixlen"], [s["cidr"] for s in p["subnets"]], p["mtu"])
                   for p in router["_interfaces"]],
    "gw": [s["cidr"] for s in router["gw_port"]["subnets"]],
    "fips": [f["floating_ip_address"] for f in router["_floatingips"]],
    "unplanned": unplanned,
}))
"""


def test_neutrons_namespace_manager_manages_only_the_runs_prefix_and_the_server_answers_as_get_sync_data(
    cloud, tmp_path
):
    dp, _ = plan_neutron(cloud, DvrDesign.of(KNOBS), "k4ll")
    script = tmp_path / "neutron_side.py"
    script.write_text(NEUTRON_SIDE)
    done = subprocess.run(
        [sys.executable, str(script)],
        input=json.dumps(sync_rows(dp.layout)),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    out = json.loads(done.stdout)
    assert out["prefixes"] == {"qrouter-": "ltk4lll0qrouter-", "snat-": "ltk4lll0snat-", "fip-": "ltk4lll0fip-"}
    assert out["managed"] == [False, False, True, True, True, False]
    assert out["name"] == f"ltk4lll0qrouter-{the_router(cloud).id}" and out["refused"]
    assert out["interfaces"] == [
        [24, ["10.10.0.0/24"], 1500],
        [64, ["2001:db8:a::/64"], 1500],
        [24, ["10.20.0.0/24"], 1500],
    ]
    assert out["gw"] == ["203.0.113.0/24", "2001:db8:ffff::/64"] and out["fips"] == ["203.0.113.3"]
    assert "port unplanned (qr-unplanned), which labtwin's plan has not ledgered" in out["unplanned"]


def test_control_neutron_refuses_what_its_agent_does_not_build_yet(cloud):
    for proposal in ({"distributed_snat": True}, {"vip_arp": "learned"}):
        with pytest.raises(NotEmulated, match="PTG proposal, labtwin's own extension"):
            check_emulable(cloud, DvrDesign.of({"control": "neutron", "router": "dvr", **proposal}))
    check_emulable(cloud, DvrDesign.of({"control": "neutron", "router": "dvr"}))  # Neutron's DVR: built
    # IPv6 router interfaces: built (Neutron's agent runs radvd), on the default topology too
    check_emulable(load_cloud(topologies_dir() / "dvr.yaml"), DvrDesign.of({"control": "neutron"}))
    check_emulable(cloud, DvrDesign.of(KNOBS))  # the legacy dual-stack router: built
    assert DvrDesign.of({"control": "neutron"}).era == "neutron-29"


def test_a_distributed_routers_rows_are_each_agent_hosts_own(cloud):
    """l3_dvr_db's answer per requesting host: the SNAT ports and gateway host for all, each host's own agent
    gateway port (every DVR host gets one, the network node too) and only its own ports' floating IPs."""
    dp, agents = plan_neutron(cloud, DvrDesign.of({"control": "neutron", "router": "dvr"}), "k5ll")
    assert [(a.host, a.mode) for a in agents] == [("network-1", "dvr_snat"), ("compute-1", "dvr")]
    assert [sorted(a.namespaces) for a in agents] == [
        ["fip:network-1", "qrouter:network-1", "snat"],
        ["fip:compute-1", "qrouter:compute-1"],
    ]
    rows = {a.host: sync_rows(dp.layout, a.host) for a in agents}
    for host, row in rows.items():
        (router,) = row["routers"]
        assert router["distributed"] and router["gw_port_host"] == "network-1"
        assert [p["device_owner"] for p in row["interfaces"]] == ["network:router_interface_distributed"] * 3
        assert [p["binding:host_id"] for p in row["interfaces"]] == [host] * 3
        assert len(router["_snat_router_interfaces"]) == 3
        (fg,) = router["_floatingip_agent_interfaces"]
        assert fg["binding:host_id"] == host and fg["id"] == dp.layout.fg[host].port_id
    assert rows["network-1"]["floatingips"] == []
    assert [(f["floating_ip_address"], f["host"]) for f in rows["compute-1"]["floatingips"]] == [
        ("203.0.113.3", "compute-1")
    ]
    fg_ips = {h: p.addrs[0].ip for h, p in dp.layout.fg.items()}
    assert len(set(fg_ips.values())) == 2 and all(str(ip).startswith("203.0.113.") for ip in fg_ips.values())
    tenant_a = rows["compute-1"]["subnet_ports"][str(cloud.subnet["tenant-a-v4"].id)]
    assert sorted(p["device_owner"] for p in tenant_a) == [
        "compute:nova",
        "compute:nova",
        "network:dhcp",
        "network:router_centralized_snat",
    ]


def test_every_dvr_hosts_agent_gateway_port_has_the_address_the_loader_gave_it():
    """The loader makes an fg- port on every DVR host (hosts without a floating IP too, as Neutron's agents ask
    for one); the emulation plugs Neutron's agent's fg- with those addresses, not the next free ones."""
    from labtwin.description.neutron_ports import AGENT_GATEWAY_OWNER

    cloud = load_cloud(DVR_TOPOLOGY)
    dp, _ = plan_neutron(cloud, DvrDesign.of({"control": "neutron"}), "k9ll")
    loader = {
        p.host: sorted(str(f.ip_address) for f in p.fixed_ips)
        for p in cloud.network_ports
        if p.device_owner == AGENT_GATEWAY_OWNER
    }
    plugged = {host: sorted(str(a.ip) for a in port.addrs) for host, port in dp.layout.fg.items()}
    fip_hosts = {cloud.port[f.port_id].host for f in cloud.floatingips}
    assert set(loader) > fip_hosts  # hosts without a floating IP have one too
    assert plugged == loader


def test_radvd_is_ledgered_before_the_agent_starts_and_a_stray_or_missing_one_fails_the_build(cloud, monkeypatch):
    """Neutron's agent starts radvd for the router's IPv6 qr- port (ra.DaemonMonitor._spawn_radvd): its argv is
    known to the plan (files under the agent's lock directory), and the build fails when what runs differs."""
    from labtwin.emulation import ledger
    from labtwin.scenarios.dvr.emulation import neutron_l3, neutron_l3_run

    dp, (agent,) = plan_neutron(cloud, DvrDesign.of(KNOBS), "k6ll")
    rid = str(the_router(cloud).id)
    (argv,) = neutron_l3.radvd_argvs(agent)
    assert argv[:2] == ("radvd", "-C") and argv[2] == f"/run/labtwin/neutron-locks/ltk6lll0/ra/{rid}.radvd.conf"
    assert argv[3:8] == (
        "-p",
        f"/run/labtwin/neutron-locks/ltk6lll0/external/pids/{rid}.pid.radvd",
        "-m",
        "syslog",
        "-u",
    )
    v6_dvr = plan_neutron(load_cloud(V6_TOPOLOGY), DvrDesign.of({"control": "neutron"}), "k6ll")[1]
    assert [len(neutron_l3.radvd_argvs(a)) for a in v6_dvr] == [1, 1]  # dvr_snat and dvr: each qrouter- has one
    ipv4_only = load_cloud(DVR_TOPOLOGY)
    assert all(
        not neutron_l3.radvd_argvs(a) for a in plan_neutron(ipv4_only, DvrDesign.of({"control": "neutron"}), "k6ll")[1]
    )
    for running, fails in (({1: argv, 2: argv}, False), ({}, True), ({1: argv, 2: (*argv[:-1], "nobody")}, True)):
        monkeypatch.setattr(ledger, "process_table", lambda running=running: running)
        if fails:
            with pytest.raises(RuntimeError, match="Neutron's L3 agent left"):
                neutron_l3_run.check_radvd(agent)
        else:
            neutron_l3_run.check_radvd(agent)


def test_several_routers_only_under_control_neutron_each_host_agent_with_the_routers_neutron_gives_it():
    """neutron-l3-mixed.yaml (legacy router-a, distributed router-b): control=neutron plans one agent per host
    (network-1's dvr_snat agent hosts both, each compute node's dvr agent router-b) and each agent's server
    answers with its own routers; labtwin's own emulation and OVN refuse the second router, naming
    control=neutron; the design knob overrides every router (router=legacy: one legacy agent builds both;
    router=dvr: two distributed routers, refused)."""
    from labtwin.scenarios.dvr.emulation.neutron_l3 import plan_neutron_routers
    from labtwin.scenarios.dvr.emulation.neutron_l3_rows import agent_rows

    cloud = load_cloud(MIXED_TOPOLOGY)
    design = DvrDesign.of({"control": "neutron"})
    check_emulable(cloud, design)
    for control in ("labtwin", "ovn"):
        with pytest.raises(NotEmulated, match="control=neutron builds several"):
            check_emulable(cloud, DvrDesign.of({"control": control}))
    with pytest.raises(NotEmulated, match="router-a, router-b are distributed"):
        check_emulable(cloud, DvrDesign.of({"control": "neutron", "router": "dvr"}))
    views, agents = plan_neutron_routers(cloud, design, "k8ll")
    assert [(v.layout.router.name, v.layout.mode) for v in views] == [("router-a", "legacy"), ("router-b", "dvr")]
    assert [(a.host, a.mode, [lo.router.name for lo in a.layouts]) for a in agents] == [
        ("network-1", "dvr_snat", ["router-a", "router-b"]),
        ("compute-1", "dvr", ["router-b"]),
        ("compute-2", "dvr", ["router-b"]),
    ]
    assert sorted(agents[0].namespaces) == [
        "fip:network-1",
        "qrouter:network-1",
        "qrouter:network-1@router-b",
        "snat@router-b",
    ]
    a, b = (str(cloud.router[n].id) for n in ("router-a", "router-b"))
    assert agents[0].unplanned == (f"ltk8lll0snat-{a}",)  # router-b's fip- and snat- are planned there
    rows = {agent.host: agent_rows(views[0], agent) for agent in agents}
    assert [(r["id"], r["distributed"]) for r in rows["network-1"]["routers"]] == [(a, False), (b, True)]
    # each floating IP on its own router's rows, and a distributed router's on its port's host only
    fips = {h: [(f["router_id"], f["fixed_ip_address"]) for f in r["floatingips"]] for h, r in rows.items()}
    a1, b1 = (str(cloud.port[n].fixed_ips[0].ip_address) for n in ("a-1", "b-1"))
    assert fips == {"network-1": [(a, a1)], "compute-1": [], "compute-2": [(b, b1)]}
    assert [agent.radvd_routers for agent in agents] == [(b,), (b,), (b,)]  # router-b's IPv6 qr- port
    # router=legacy overrides both routers' own modes: one legacy agent builds both, the model draws both legacy
    _, legacy = plan_neutron_routers(cloud, DvrDesign.of({"control": "neutron", "router": "legacy"}), "k8ll")
    assert [(x.host, x.mode, len(x.layouts)) for x in legacy] == [("network-1", "legacy", 2)]
    modeled = api.simulate("dvr", MIXED_TOPOLOGY, router="legacy")
    assert {p["mode"] for p in modeled.summary["paths"]} == {"legacy"}


def test_the_probes_wait_for_ipv6_dad_and_an_address_that_stays_tentative_fails_the_run(monkeypatch):
    """wait_for_dad: returns once no address is tentative (dadfailed ones are filtered out by the listing), and
    fails loudly naming the namespace when one stays tentative past DAD_TIMEOUT_S."""
    from types import SimpleNamespace

    from labtwin.scenarios.dvr.emulation import neutron_l3_run

    def fake(tentative_rounds: dict[str, int]):
        asked: list[tuple] = []

        def run(step):
            key = step.argv[0]
            asked.append(step.argv)
            left = tentative_rounds[key]
            tentative_rounds[key] = left - 1
            return SimpleNamespace(
                stdout="3: qg-x inet6 2001:db8:ffff::2/64 scope global tentative" if left > 0 else ""
            )

        return SimpleNamespace(runner=SimpleNamespace(run=run), exec_argv=lambda key, argv: (key, *argv)), asked

    real, asked = fake({"qrouter:network-1": 2, "snat": 0})
    assert neutron_l3_run.wait_for_dad(real, ["qrouter:network-1", "snat"]) >= 0
    assert asked[0][1:] == ("ip", "-6", "-o", "addr", "show", "tentative", "-dadfailed")
    assert [a[0] for a in asked] == ["qrouter:network-1", "snat", "qrouter:network-1", "qrouter:network-1"]
    monkeypatch.setattr(neutron_l3_run, "DAD_TIMEOUT_S", 0.2)
    real, _ = fake({"snat": 10**6})
    with pytest.raises(RuntimeError, match=r"still tentative after 0.2 s in \['snat'\]"):
        neutron_l3_run.wait_for_dad(real, ["snat"])


def test_the_run_says_which_parts_are_labtwins_own():
    """Under control=neutron only the routers are Neutron's code; DHCP, distributed or not, and the L2 flows stay
    labtwin's own and the summary says so (issue 15: no part passes for Neutron's)."""

    class Plan:
        dhcp_servers = {"qdhcp:network-1": ("tap", "10.10.0.2", {})}

    neutron = built_by(DvrDesign.of({"control": "neutron"}), Plan())  # type: ignore[arg-type]
    ours = built_by(DvrDesign.of({"control": "labtwin"}), Plan())  # type: ignore[arg-type]
    assert "Neutron 29" in neutron["routers"] and "Neutron" not in ours["routers"]
    assert neutron["dhcp"].startswith("labtwin's own DHCP responder") and neutron["l2_flows"] == ours["l2_flows"]
    distributed = built_by(DvrDesign.of({"control": "neutron", "distributed_dhcp": True}), Plan())  # type: ignore[arg-type]
    assert "table 77" in distributed["dhcp"] and "not run" in distributed["dhcp"]
