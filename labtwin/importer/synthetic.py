"""A generated Neutron API dump of any size: what ``labtwin import`` reads, from no real deployment.

A routed provider network with one VLAN segment and one /22 per rack of ``hosts_per_rack`` compute hosts
(each rack on its own physnet, as the routed-networks guide lays it out), one network node (L3 agent in
``dvr_snat`` mode and DHCP agent), an external network, a tenant VXLAN network behind a distributed router,
and ``ports`` VM ports dealt round-robin over the compute hosts (three in four on the routed network, one in
four on the tenant network, a tenth of those with a floating IP), all in the project's ``default`` group (which
references itself) and a ``web`` group. Names, ids and addresses are made up (private and documentation
ranges; the external network is in 198.18.0.0/15, the benchmarking range); the ids are uuid5 of the object's
name, so the same arguments give the same files.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     len(write_dump(Path(d), hosts=4, ports=10, hosts_per_rack=2))
8
"""

from __future__ import annotations

import ipaddress
import json
import uuid
from pathlib import Path
from typing import Any

_NAMESPACE = uuid.UUID("0d7c1f2e-3a4b-4c5d-8e6f-7a8b9c0d1e2f")
PROJECT = "b7e2f0c4a1d94e3f8a6b5c4d3e2f1a0b"


def _id(kind: str, name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{kind}/{name}"))


def _mac(i: int) -> str:
    return "fa:16:3e:" + ":".join(f"{(i >> s) & 255:02x}" for s in (16, 8, 0))


def dump(hosts: int = 1000, ports: int = 20_000, hosts_per_rack: int = 20) -> dict[str, dict[str, Any]]:
    """The dump as {file name: what the API answers}."""
    racks = max(1, -(-hosts // hosts_per_rack))
    computes = [f"compute-{i + 1:04d}.rack{i // hosts_per_rack + 1}.example.org" for i in range(hosts)]
    routed, ext, tenant = _id("network", "routed"), _id("network", "public"), _id("network", "tenant")
    segments, subnets = [], []
    block = ipaddress.IPv4Network("10.128.0.0/22")
    for r in range(racks):
        seg = _id("segment", f"rack{r + 1}")
        segments.append(
            {"id": seg, "network_id": routed, "name": f"rack{r + 1}", "network_type": "vlan",
             "physical_network": f"physnet-r{r + 1}", "segmentation_id": 100 + r, "description": ""}
        )  # fmt: skip
        net = ipaddress.IPv4Network((int(block.network_address) + r * block.num_addresses, 22))
        subnets.append(_subnet(f"rack{r + 1}-v4", routed, net, segment_id=seg))
    subnets.append(_subnet("public-v4", ext, ipaddress.IPv4Network("198.18.0.0/16"), enable_dhcp=False))
    subnets.append(_subnet("tenant-v4", tenant, ipaddress.IPv4Network("10.0.0.0/16")))
    networks = [
        _network(routed, "routed", shared=True),
        _network(ext, "public", **{"router:external": True, "provider:network_type": "flat",
                                   "provider:physical_network": "public", "provider:segmentation_id": None}),
        _network(tenant, "tenant", **{"provider:network_type": "vxlan", "provider:physical_network": None,
                                      "provider:segmentation_id": 5001}),
    ]  # fmt: skip
    default, web = _id("security_group", "default"), _id("security_group", "web")
    groups = [_group(default, "default", remote=default), _group(web, "web", remote=None)]
    router = _id("router", "router1")
    used = [0] * racks
    vm_ports: list[dict[str, Any]] = []
    floatingips: list[dict[str, Any]] = []
    tenant_subnet = ipaddress.IPv4Network("10.0.0.0/16")
    for i in range(ports):
        host = i % hosts
        if i % 4 == 3:  # a quarter behind the router, on the tenant network; a tenth of those with a floating IP
            where = (subnets[-1]["id"], str(tenant_subnet.network_address + 2 + i // 4))
            port = _port(f"vm-{i + 1:05d}", tenant, computes[host], [where], _mac(i + 1), [default, web])
            if (i // 4) % 10 == 0:
                floatingips.append(_floatingip(len(floatingips), ext, port["id"], subnets[-2]["cidr"]))
        else:
            rack = host // hosts_per_rack
            used[rack] += 1
            ip = str(ipaddress.IPv4Network(subnets[rack]["cidr"]).network_address + 1 + used[rack])
            port = _port(
                f"vm-{i + 1:05d}", routed, computes[host], [(subnets[rack]["id"], ip)], _mac(i + 1), [default, web]
            )
        vm_ports.append(port)
    gateway = _port("", ext, "network-1.example.org", [(subnets[-2]["id"], "198.18.0.2")], _mac(0xFFFF01), [],
                     device_owner="network:router_gateway", device_id=router)  # fmt: skip
    interface = _port("", tenant, "", [(subnets[-1]["id"], "10.0.0.1")], _mac(0xFFFF02), [],
                      device_owner="network:router_interface_distributed", device_id=router)  # fmt: skip
    node = "network-1.example.org"
    agents = [_agent("L3 agent", node, {"agent_mode": "dvr_snat"}), _agent("DHCP agent", node, {}),
              _agent("Open vSwitch agent", node, {"bridge_mappings": {"public": "br-ex"}})]  # fmt: skip
    for i, compute in enumerate(computes):
        mappings = {"public": "br-ex", f"physnet-r{i // hosts_per_rack + 1}": "br-provider"}
        agents.append(_agent("Open vSwitch agent", compute, {"bridge_mappings": mappings}))
        agents.append(_agent("L3 agent", compute, {"agent_mode": "dvr"}))
    gateway_ip = [{"subnet_id": subnets[-2]["id"], "ip_address": "198.18.0.2"}]
    uplink = {"network_id": ext, "enable_snat": True, "external_fixed_ips": gateway_ip}
    routers = [{"id": router, "name": "router1", "distributed": True, "ha": False, "routes": [], "description": "",
                "external_gateway_info": uplink}]  # fmt: skip
    return {
        "networks.json": {"networks": networks},
        "segments.json": {"segments": segments},
        "subnets.json": {"subnets": subnets},
        "ports.json": {"ports": [gateway, interface, *vm_ports]},
        "routers.json": {"routers": routers},
        "security-groups.json": {"security_groups": groups},
        "floatingips.json": {"floatingips": floatingips},
        "agents.json": {"agents": agents},
    }


def write_dump(directory: Path, **sizes: int) -> list[Path]:
    """Write :func:`dump` into *directory*, one file per collection; the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in dump(**sizes).items():
        path = directory / name
        path.write_text(json.dumps(content))
        written.append(path)
    return written


def _network(id: str, name: str, **fields: Any) -> dict[str, Any]:
    return {"id": id, "name": name, "project_id": PROJECT, "admin_state_up": True, "status": "ACTIVE", "mtu": 1500,
            "shared": False, "router:external": False, "port_security_enabled": True, "qos_policy_id": None,
            "description": "", **fields}  # fmt: skip


def _subnet(name: str, network: str, cidr: ipaddress.IPv4Network, **fields: Any) -> dict[str, Any]:
    first, last = cidr.network_address, cidr.broadcast_address
    return {"id": _id("subnet", name), "name": name, "network_id": network, "cidr": str(cidr), "ip_version": 4,
            "gateway_ip": str(first + 1), "allocation_pools": [{"start": str(first + 2), "end": str(last - 1)}],
            "enable_dhcp": True, "segment_id": None, "host_routes": [], "dns_nameservers": [], "description": "",
            "project_id": PROJECT, **fields}  # fmt: skip


def _group(id: str, name: str, remote: str | None) -> dict[str, Any]:
    rules: list[dict[str, Any]]
    rules = [{"id": _id("rule", f"{name}/{d}/{e}"), "security_group_id": id, "direction": d, "ethertype": e,
              "protocol": None, "port_range_min": None, "port_range_max": None, "remote_ip_prefix": None,
              "remote_group_id": remote if d == "ingress" else None}
             for d, e in (("egress", "IPv4"), ("egress", "IPv6"), ("ingress", "IPv4"))
             if d == "egress" or remote]  # fmt: skip
    if name == "web":
        rules.append({"id": _id("rule", "web/https"), "security_group_id": id, "direction": "ingress",
                      "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 443, "port_range_max": 443,
                      "remote_ip_prefix": "0.0.0.0/0", "remote_group_id": None})  # fmt: skip
    return {
        "id": id,
        "name": name,
        "project_id": PROJECT,
        "stateful": True,
        "description": "",
        "security_group_rules": rules,
    }


def _port(name: str, network: str, host: str, ips: list[tuple[str, str]], mac: str, groups: list[str],
          device_owner: str = "compute:nova", device_id: str = "") -> dict[str, Any]:  # fmt: skip
    return {"id": _id("port", name or f"{device_owner}/{mac}"), "name": name, "network_id": network,
            "binding:host_id": host, "binding:vnic_type": "normal", "device_owner": device_owner,
            "device_id": device_id, "mac_address": mac,
            "fixed_ips": [{"subnet_id": s, "ip_address": a} for s, a in ips],
            "security_groups": groups, "port_security_enabled": bool(groups), "allowed_address_pairs": [],
            "qos_policy_id": None, "project_id": PROJECT, "status": "ACTIVE", "description": ""}  # fmt: skip


def _floatingip(n: int, network: str, port: str, cidr: str) -> dict[str, Any]:
    address = str(ipaddress.IPv4Network(cidr).network_address + 10 + n)
    return {"id": _id("floatingip", address), "floating_network_id": network, "floating_ip_address": address,
            "port_id": port, "router_id": None, "project_id": PROJECT, "status": "ACTIVE", "port_forwardings": [],
            "qos_policy_id": None, "description": ""}  # fmt: skip


def _agent(kind: str, host: str, config: dict[str, Any]) -> dict[str, Any]:
    return {"id": _id("agent", f"{kind}/{host}"), "agent_type": kind, "host": host, "alive": True,
            "admin_state_up": True, "configurations": config, "binary": "", "topic": ""}  # fmt: skip


__all__ = ["dump", "write_dump"]
