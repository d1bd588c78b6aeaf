"""The DVR emulation plan, checked as data (no root): names, policy routing, NAT, flows, capture points."""

import ipaddress

import pytest

from labtwin.description import load_cloud
from labtwin.scenarios.base import topologies_dir
from labtwin.scenarios.dvr import neutron_names as names
from labtwin.scenarios.dvr.emulation import layout as L
from labtwin.scenarios.dvr.emulation.labtwin_agent.routing import plan_dvr
from labtwin.scenarios.dvr.emulation.layout import vlan_of
from labtwin.scenarios.dvr.knobs import DvrDesign
from labtwin.scenarios.dvr.model.paths import class_paths
from labtwin.scenarios.dvr.neutron_names import dvr_mac

DESIGNS = {
    "legacy": {"router": "legacy"},
    "dvr": {"router": "dvr"},
    "dvr-proposals": {
        "router": "dvr",
        "ipv6_fast_exit": True,
        "distributed_snat": True,
        "distributed_dhcp": True,
        "vip_arp": "learned",
    },
}


@pytest.fixture(scope="module")
def cloud():
    return load_cloud(topologies_dir() / "dvr.yaml")


def build(cloud, label):
    return plan_dvr(cloud, DvrDesign.of(DESIGNS[label]), "t3st")


@pytest.mark.parametrize("label", sorted(DESIGNS))
def test_every_hop_the_model_names_has_a_capture_point(cloud, label):
    dp = build(cloud, label)
    observable = {c.label for c in dp.captures} | set(dp.stages)
    for path in class_paths(cloud, DvrDesign.of(DESIGNS[label])):
        missing = [hop for hop in path.hops if hop not in observable]
        assert not missing, (path.traffic_class, missing)


def test_namespaces_and_devices_carry_neutrons_names(cloud):
    dp = build(cloud, "dvr")
    router, ext = cloud.routers[0], cloud.network["ext-net"]
    subjects = {n.subject for n in dp.plan.namespaces}
    assert {
        f"qrouter-{router.id}",
        f"snat-{router.id}",
        f"fip-{ext.id}",
        f"qdhcp-{cloud.network['tenant-a'].id}",
    } <= subjects
    devices = {
        d
        for cfg in dp.plan.config.values()
        for line in cfg.ip_batch
        if line.startswith("link set ")
        for d in [line.split()[2]]
    }
    assert names.rfp_device(router.id) in devices and names.fpr_device(router.id) in devices
    assert {d[:3] for d in devices} >= {"qr-", "sg-", "qg-", "fg-", "rfp", "fpr", "tap"}
    assert all(len(d) <= 14 for d in devices)
    # one network's IPv4 and IPv6 qr- ports share an L2: only the one holding the gateway may answer its ARP
    assert "net.ipv4.conf.all.arp_ignore=1" in dp.plan.config["qrouter:compute-1"].sysctls


def test_dvr_policy_routing_table_16_and_snat_redirect(cloud):
    batch = build(cloud, "dvr").plan.config["qrouter:compute-1"].ip_batch
    assert "rule add from 10.10.0.4 lookup 16 priority 32768" in batch  # web-1 has a floating IP
    assert any(x.startswith("route add default via 169.254.64.1 dev rfp-") and x.endswith("table 16") for x in batch)
    redirect = [x for x in batch if x.startswith("route add default via 10.20.0.")]
    assert (
        redirect and "dev qr-91b77a76-d1 table 169082881" in redirect[0]
    )  # sg- IP of tenant-b, table = value of 10.20.0.1
    proposals = build(cloud, "dvr-proposals").plan.config["qrouter:compute-1"].ip_batch
    assert "rule add from 10.20.0.0/24 lookup 16 priority 169082881" in proposals  # distributed SNAT


def test_nat_per_design(cloud):
    dvr = build(cloud, "dvr").plan.config
    # the router gateway took 203.0.113.2 from the pool (as Neutron's gateway port does), web-1's FIP .3,
    # compute-1's fg- port .4 (made with the FIP), app-1's FIP .5; on tenant-a the DHCP port took 10.10.0.2 (made
    # with the subnet), the SNAT port .3 (made with the router interface), web-1 .4
    assert "-d 203.0.113.3/32 -j DNAT --to-destination 10.10.0.4" in dvr["qrouter:compute-1"].rules.iptables
    assert "-s 10.10.0.4/32 -j SNAT --to-source 203.0.113.3" in dvr["qrouter:compute-1"].rules.iptables
    assert "-o qg-bec3fe04-55 -j SNAT --to-source 203.0.113.2" in dvr["snat"].rules.iptables
    assert "CT --notrack" in dvr["fip:compute-1"].rules.iptables
    fip = build(cloud, "dvr-proposals").plan.config["fip:compute-1"].rules.iptables
    assert "-s 10.20.0.0/24 -o fg-c3f9ee4c-ed -j SNAT --to-source 203.0.113.4" in fip and "notrack" not in fip
    legacy = build(cloud, "legacy").plan.config["qrouter:network-1"].rules.iptables
    assert "DNAT --to-destination 10.10.0.4" in legacy and "SNAT --to-source 203.0.113.2" in legacy


def test_dvr_mac_rewriting_flows(cloud):
    dp = build(cloud, "dvr")
    tun = dp.flows[dp.bridges[("compute-1", "br-tun")]]
    for qr in dp.layout.qr.values():
        assert any(f"dl_src={qr.mac},actions=mod_dl_src:{dvr_mac('compute-1')},NORMAL" in f for f in tun)
        assert any(f"dl_dst={qr.mac},actions=drop" in f for f in tun)
    restore = [f for f in dp.flows[dp.bridges[("compute-2", "br-int")]] if "strip_vlan" in f]
    assert len(restore) == 2 * 3  # app-1 and vrrp-a, from compute-1's, compute-3's and network-1's DVR MACs
    assert all(dvr_mac("compute-2") not in f for f in restore)
    assert not build(cloud, "legacy").flows


def fip_namespaces(dp) -> dict[str, tuple[str, set[str]]]:
    """{host: (the fg- device, its addresses)} of the plan's fip- namespaces, each with its rfp-/fpr- veth."""
    out = {}
    for key, cfg in dp.plan.config.items():
        if key.startswith("fip:"):
            host = key.split(":", 1)[1]
            assert any(v.a == f"qrouter:{host}" and v.b == key for v in dp.plan.veths), key
            fg = dp.layout.fg[host]
            out[host] = (
                fg.dev,
                {
                    line.split()[2].split("/")[0]
                    for line in cfg.ip_batch
                    if line.startswith("addr add") and f"dev {fg.dev}" in line
                },
            )
    return out


def loader_fg_addresses(cloud) -> dict[str, set[str]]:
    """{host: its fg- port's addresses} as the loader made them (neutron_ports.agent_gateway_ports)."""
    from labtwin.description.neutron_ports import AGENT_GATEWAY_OWNER

    return {
        str(p.host): {str(f.ip_address) for f in p.fixed_ips if f.ip_address is not None}
        for p in cloud.network_ports
        if p.device_owner == AGENT_GATEWAY_OWNER
    }


def test_every_dvr_host_gets_fip_and_the_loaders_fg_address_floating_ip_or_not(cloud):
    """DvrLocalRouter.process_external on every host with the router: the network node and the VM hosts without a
    floating IP too, each fg- with the address the loader gave that host's agent gateway port."""
    dp = build(cloud, "dvr")
    planned = fip_namespaces(dp)
    loader = loader_fg_addresses(cloud)
    assert set(planned) == set(loader) == {"network-1", "compute-1", "compute-2", "compute-3"}
    assert {host: addrs for host, (_, addrs) in planned.items()} == loader
    fip_hosts = {cloud.port[f.port_id].host for f in cloud.floatingips}
    assert set(planned) - fip_hosts  # hosts without a floating IP have one too
    assert "qrouter:network-1" in dp.plan.config  # the dvr_snat node's own qrouter- (its end of rfp-)
    assert not fip_namespaces(build(cloud, "legacy"))


def test_a_plan_with_fip_on_floating_ip_hosts_only_is_caught(cloud, monkeypatch):
    real = L.Layout.fip_hosts
    monkeypatch.setattr(
        L.Layout, "fip_hosts", lambda self: [h for h in real(self) if h in {cloud.port[p].host for p in self.fips}]
    )
    assert set(fip_namespaces(build(cloud, "dvr"))) != set(loader_fg_addresses(cloud))


def test_vip_arp_static_is_permanent_learned_is_not(cloud):
    static = build(cloud, "dvr").plan.config["qrouter:compute-1"]
    learned = build(cloud, "dvr-proposals").plan.config["qrouter:compute-1"]
    vrrp_b = cloud.port["vrrp-b"].mac_address  # the last port listing the VIP wrote its entry last
    assert f"neigh replace 10.10.0.100 lladdr {vrrp_b} dev qr-e097a28d-b2 nud permanent" in static.ip_batch
    assert not any("10.10.0.100" in x for x in learned.ip_batch)
    assert "net.ipv4.conf.qr-e097a28d-b2.arp_accept=1" in learned.sysctls


def test_br_tun_carries_only_the_overlay(cloud):
    dp = build(cloud, "dvr")
    patch = next(p for p in dp.plan.ovs_ports if p.dev == dp.ports[("compute-1", "patch-tun")])
    assert vlan_of(cloud, "ext-net") not in patch.trunks
    assert set(patch.trunks) == {1001, 1002}


def test_distributed_dhcp_uses_table_77_and_no_qdhcp(cloud):
    dp = build(cloud, "dvr-proposals")
    assert not any(n.subject.startswith("qdhcp-") for n in dp.plan.namespaces)
    assert "compute-1:br-int:table77" in dp.stages
    assert any("actions=resubmit(,77)" in f for f in dp.flows[dp.bridges[("compute-1", "br-int")]])


def test_a_provider_vlan_and_a_vni_of_the_same_number_never_meet_on_the_fabric():
    """The emulation carries tunnel networks on its tagged fabric: a VNI is translated to a free tag (as the
    OVS agent translates it to a local VLAN) whenever a VLAN network has the same number."""
    from labtwin.description import parse_cloud
    from labtwin.scenarios.dvr.emulation.layout import fabric_tags

    text = (topologies_dir() / "dvr.yaml").read_text()
    text = text.replace(
        "segments:\n",
        "segments:\n  - {name: prov-1001, network_id: prov, physical_network: external, segmentation_id: 1001}\n",
        1,
    ).replace("networks:\n", "networks:\n  - name: prov\n", 1)
    cloud = parse_cloud(text)
    tags = fabric_tags(cloud)
    assert tags["prov"] == 1001 and tags["tenant-a"] != 1001  # tenant-a is VXLAN VNI 1001
    assert len(set(tags.values())) == len(tags)


def test_each_bridge_is_captured_as_the_bridge_its_networks_leave_the_host_by():
    """topologies/minimal.yaml maps physnet1 to br-vlan: its VLAN tenant network and its flat external network
    leave every host by br-vlan, which the model's hops name; the emulation's overlay and external bridges are
    captured under that name (they were br-tun and br-ex, and the twin disagreed on every path)."""
    cloud = load_cloud(topologies_dir() / "minimal.yaml")
    dp = plan_dvr(cloud, DvrDesign.of({"router": "dvr"}), "t0b1")
    labels = {c.label.split(":", 1)[1] for c in dp.captures if c.label.startswith("compute-1:br-")}
    assert labels == {"br-int", "br-vlan"}
    hops = [h.split(":") for p in class_paths(cloud, DvrDesign.of({"router": "dvr"})) for h in p.hops]
    bridges = {h[1] for h in hops if len(h) == 2 and h[1].startswith("br-")}
    assert bridges == {"br-int", "br-vlan"}


def test_networks_leaving_a_host_by_two_bridges_are_refused_by_the_labtwin_emulation():
    from labtwin.scenarios.dvr.emulation.emulable import NotEmulated, check_emulable

    text = (topologies_dir() / "minimal.yaml").read_text()
    text = text.replace(
        "segments:\n", "segments:\n  - {name: t-vx, network_id: tun, network_type: vxlan, segmentation_id: 7}\n"
    )
    text = text.replace("networks:\n", "networks:\n  - name: tun\n", 1)
    text = text.replace("subnets:\n", "subnets:\n  - {name: tun-v4, network_id: tun, cidr: 10.7.0.0/24}\n", 1)
    text = text.replace("interfaces: [private-v4]", "interfaces: [private-v4, tun-v4]")
    from labtwin.description import parse_cloud

    with pytest.raises(NotEmulated, match="leave network-1 by br-tun and br-vlan"):
        check_emulable(parse_cloud(text), DvrDesign.of({"router": "dvr"}))


def test_ipv6_leaves_by_the_hosts_fip_which_has_no_ipv6_default_route(cloud):
    """Neutron 29's create_rtr_2_fip_link: the IPv6 default via fpr- in qrouter's main table (no table); fip-'s
    default routes sit in the table of an IPv4 'iif fpr-' rule, so IPv6 reaches only the external subnet there.
    The ipv6_fast_exit proposal adds the IPv6 default route fip- lacks."""
    dp = build(cloud, "dvr")
    rfp, fpr = L.rfp(dp.layout), L.fpr(dp.layout)
    qrouter = dp.plan.config["qrouter:compute-1"].ip_batch
    assert f"route add default via {L.FPR_LL6} dev {rfp}" in qrouter  # main table
    assert f"route add default via {L.FPR_LL} dev {rfp} table {L.FIP_RT_TBL}" in qrouter
    fip = dp.plan.config["fip:compute-1"].ip_batch
    idx = int(ipaddress.ip_address(L.FPR_LL))
    assert f"rule add iif {fpr} lookup {idx} priority {idx}" in fip
    defaults = [line for line in fip if line.startswith("route add default")]
    assert defaults and all(line.endswith(f"table {idx}") for line in defaults)
    assert {ipaddress.ip_address(line.split()[4]).version for line in defaults} == {4, 6}
    fast = build(cloud, "dvr-proposals").plan.config["fip:compute-1"].ip_batch
    assert any(line.startswith("route add default via 2001:") and "table" not in line for line in fast)
