"""What Neutron 29's own ML2/OVN driver writes into OVN for topologies/minimal.yaml, checked against the shapes
in Neutron's source (``neutron/common/ovn/utils.py`` names, ``ovn_client.py``, ``acl.py``), and the twin of the
same run: every verdict through real OVN equals the model's.

The cloud: network ``private`` (VLAN 101 on physnet1) and ``public`` (flat, external), router1 with a
gateway on public and an interface on private-v4, a floating IP, the ``default`` and ``ssh`` groups,
network-1 the only network node (the gateway chassis).
"""

import json

import pytest

from labtwin import api
from labtwin.testing import assert_twin_agrees


def _map(value) -> dict:
    """An OVSDB map column (``["map", [[k, v], ...]]``) as a dict."""
    return dict(value[1])


def _set(value) -> list:
    """An OVSDB set column, or a single value, as a list."""
    return value[1] if isinstance(value, list) and value and value[0] == "set" else [value]


@pytest.mark.emulation
def test_neutrons_rows_for_the_minimal_cloud_and_real_ovn_agrees_with_the_model(live, ovn, tmp_path):
    report, model, emulation = api.twin("reachability", "topologies/minimal.yaml", 1, out=tmp_path, control="ovn")
    assert_twin_agrees(report)
    nb = json.loads((tmp_path / "emulation" / "ovn-nb.json").read_text())
    assert emulation.summary["ovn_nb_rows"] == {table: len(rows) for table, rows in nb.items() if rows}
    switches = {_map(s["external_ids"])["neutron:network_name"]: s for s in nb["Logical_Switch"].values()}
    assert set(switches) == {"private", "public"} and all(s["name"].startswith("neutron-") for s in switches.values())
    ports = list(nb["Logical_Switch_Port"].values())
    # one localnet port per segment, named after it (ovn_client.create_provnet_port), VLAN tagged
    localnet = {_map(p["options"])["network_name"]: p for p in ports if p["type"] == "localnet"}
    assert len([p for p in ports if p["type"] == "localnet"]) == 2 and set(localnet) == {"physnet1"}
    assert all(p["name"].startswith("provnet-") for p in ports if p["type"] == "localnet")
    assert sorted(_set(p["tag"]) for p in ports if p["type"] == "localnet") == [[], [101]]
    # the router and its ports (utils.ovn_name / ovn_lrouter_port_name), a router-type LSP per interface
    (router,) = nb["Logical_Router"].values()
    assert router["name"].startswith("neutron-")
    lrps = {p["networks"]: p for p in nb["Logical_Router_Port"].values()}
    gateway = next(net for net in lrps if net.startswith("203.0.113."))  # Neutron's IPAM picks the address
    assert set(lrps) == {"10.0.0.1/24", gateway} and all(p["name"].startswith("lrp-") for p in lrps.values())
    routed = [p for p in ports if p["type"] == "router"]
    assert sorted(_map(p["options"])["router-port"] for p in routed) == sorted(p["name"] for p in lrps.values())
    # the gateway: SNAT for the router, a centralized floating IP (no external_mac: not distributed by default)
    nat = {n["type"]: n for n in nb["NAT"].values()}
    assert set(nat) == {"snat", "dnat_and_snat"} and nat["snat"]["external_ip"] == gateway.split("/")[0]
    assert nat["dnat_and_snat"]["external_mac"] == ["set", []]
    # gateway scheduling: one HA chassis group, on the network node's chassis only (enable-chassis-as-gw)
    assert len(nb["HA_Chassis_Group"]) == 1 and len(nb["HA_Chassis"]) == 1
    # security groups: the drop group, one port group per group, allow-related ACLs on the group's address set
    groups = {g["name"] for g in nb["Port_Group"].values()}
    assert "neutron_pg_drop" in groups and len(groups) == 3
    remote = [a for a in nb["ACL"].values() if "$pg_" in a["match"] and "_ip4" in a["match"]]
    assert remote and all(a["action"] == "allow-related" for a in remote)
    # native DHCP for the subnet with DHCP on
    assert [d["cidr"] for d in nb["DHCP_Options"].values()] == ["10.0.0.0/24"]
