"""The dhcp class goes to the host Neutron's DHCP scheduler gave the network, in the model and in the emulation's
layout: not the first network node. On dvr-ha-gateway.yaml Neutron 29's WeightScheduler (the oracle's answer,
which the loader replays: labtwin/description/dhcp_scheduling.py) puts the external network on network-1 when its
subnet is created first, so tenant-a's DHCP goes to the less loaded network-2."""

from labtwin.description import load_cloud
from labtwin.description.neutron_ports import DHCP_OWNER
from labtwin.scenarios import topologies_dir
from labtwin.scenarios.dvr.emulation.layout import layout
from labtwin.scenarios.dvr.knobs import DvrDesign
from labtwin.scenarios.dvr.model.paths import class_paths
from labtwin.scenarios.dvr.spec import dhcp_host, network_node

TOPOLOGY = topologies_dir() / "dvr-ha-gateway.yaml"


def test_the_dhcp_class_reaches_the_agent_neutron_scheduled():
    cloud = load_cloud(TOPOLOGY)
    scheduled = {p.network_id: p.host for p in cloud.network_ports if p.device_owner == DHCP_OWNER}
    assert scheduled["tenant-a"] == "network-2" != network_node(cloud).name
    for router in ("legacy", "dvr"):
        (dhcp,) = [p for p in class_paths(cloud, DvrDesign.of({"router": router})) if p.traffic_class == "dhcp"]
        assert dhcp.reachable
        assert dhcp.hops[-1].startswith("network-2:qdhcp-"), dhcp.hops


def test_the_emulation_plugs_the_dhcp_port_where_the_model_draws_it():
    cloud = load_cloud(TOPOLOGY)
    lay = layout(cloud, DvrDesign.of({"router": "legacy"}))
    vm = next(p for p in cloud.ports if p.network_id == "tenant-a")
    assert lay.dhcp_host == {"tenant-a": "network-2"} and dhcp_host(cloud, vm) == "network-2"


def test_a_network_whose_dhcp_port_got_no_address_is_not_answered():
    """The loader makes no DHCP port when the pool is full (Neutron answers IpAddressGenerationFailure to the
    agent): no agent answers, which the model says rather than drawing a path to the network node."""
    cloud = load_cloud(TOPOLOGY)
    without = cloud.model_copy(
        update={"network_ports": tuple(p for p in cloud.network_ports if p.device_owner != DHCP_OWNER)}
    )
    (dhcp,) = [p for p in class_paths(without, DvrDesign.of({"router": "legacy"})) if p.traffic_class == "dhcp"]
    assert not dhcp.reachable and "no DHCP agent" in dhcp.note
