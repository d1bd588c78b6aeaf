"""``control=neutron``: the server's rows, what Neutron 29's L3 RPC ``sync_routers`` answers each L3 agent
(:mod:`.neutron_l3` plans the agents, :mod:`.neutron_l3_run` runs them).

Built from the topology for one agent's host: the layout's ports, MACs and addresses
(:func:`~.layout.layout`), so the devices Neutron's agent makes are named as the model names them
(:func:`sync_rows`: one router; :func:`agent_rows`: every router an agent hosts).

IPv6: the rows carry the topology's IPv6 subnets as Neutron's server does (one qr- port per IPv4 subnet and one
for the IPv6 subnet, the gateway port's external IPv6 address, each subnet's ``ipv6_ra_mode``).
"""

from __future__ import annotations

import ipaddress
from typing import Optional

from labtwin.description import Cloud
from labtwin.description.objects import derived_id

from . import layout as L
from .neutron_l3 import AgentHost
from .plan import DvrPlan

#: Neutron's ``DEVICE_OWNER_ROUTER_INTF`` / ``_GW`` / ``FLOATINGIP_STATUS_ACTIVE``.
ROUTER_INTF, ROUTER_GW = "network:router_interface", "network:router_gateway"
#: ``DEVICE_OWNER_DVR_INTERFACE``, ``DEVICE_OWNER_ROUTER_SNAT``, ``DEVICE_OWNER_AGENT_GW``, ``DEVICE_OWNER_DHCP``.
DVR_INTF, SNAT_INTF = "network:router_interface_distributed", "network:router_centralized_snat"
FIP_AGENT_GW, DHCP = "network:floatingip_agent_gateway", "network:dhcp"
PROJECT = "labtwin"


def sync_rows(lay: L.Layout, host: str = "") -> dict:
    """What Neutron's database gives ``get_sync_data`` for the layout's router (plain data, JSON-able):
    ``routers`` (``_make_router_dict_with_gw_port``: the router, its ``external_gateway_info`` with
    ``enable_snat`` (l3_gwmode_db), and ``gw_port``), ``interfaces`` (``_get_sync_interfaces``: the router's
    ports, ``_make_port_dict``), ``floatingips`` (``_make_floatingip_dict_with_scope``), ``subnets`` by network
    id (``_get_subnets_by_network_list``'s fields) and ``mtus`` by network id. The worker runs Neutron's
    ``get_sync_data`` steps over them (:class:`~labtwin.emulation.neutron_agent.l3_worker.L3Server`).

    Ids are the topology's (the router's, networks', subnets'); the router's ports are the layout's
    (:func:`~.layout.layout`: ids, MACs and addresses from the topology's IPAM). A subnet carries
    ``ipv6_ra_mode`` (radvd's configuration is written from it) but not ``ipv6_address_mode``: Neutron 29's
    ``l3_db._get_subnets_by_network_list`` reads only its listed fields."""
    cloud, router = lay.cloud, lay.router
    assert lay.qg is not None and router.external_gateway_info is not None
    rid, host = str(router.id), host or lay.network_node
    owner = DVR_INTF if lay.dvr else ROUTER_INTF
    interfaces = [_port(lay, port, rid, owner, host) for port in lay.qr.values()]
    gw_port = _port(lay, lay.qg, rid, ROUTER_GW, lay.network_node)
    gateway = router.external_gateway_info
    routers = [
        {
            "id": rid,
            "name": router.name,
            "tenant_id": PROJECT,
            "project_id": PROJECT,
            "admin_state_up": True,
            "status": "ACTIVE",
            "external_gateway_info": {
                "network_id": str(lay.ext.id),
                "enable_snat": gateway.enable_snat,
                "external_fixed_ips": [
                    {"subnet_id": f["subnet_id"], "ip_address": f["ip_address"]} for f in gw_port["fixed_ips"]
                ],
            },
            "gw_port_id": gw_port["id"],
            "gw_port": gw_port,
            "distributed": lay.dvr,
            "ha": False,
            "routes": [],
            "enable_ndp_proxy": False,
        }
    ]
    if lay.dvr:  # l3_dvr_db: _build_routers_list's gw_port_host, _process_routers' SNAT and agent gateway ports
        routers[0]["gw_port_host"] = lay.network_node
        routers[0]["_snat_router_interfaces"] = [
            _port(lay, port, rid, SNAT_INTF, lay.network_node) for port in lay.sg.values()
        ]
        routers[0]["_floatingip_agent_interfaces"] = [_port(lay, lay.fg[host], f"agent-{host}", FIP_AGENT_GW, host)]
    floatingips = [
        {
            "id": derived_id("floatingip", port_name),
            "tenant_id": PROJECT,
            "project_id": PROJECT,
            "floating_ip_address": str(fip),
            "floating_network_id": str(lay.ext.id),
            "router_id": rid,
            "port_id": str(cloud.port[port_name].id),
            "fixed_ip_address": str(_v4(cloud, cloud.port[port_name])),
            "status": "DOWN",
            "fixed_ip_address_scope": None,
            # l3_dvr_db._get_dvr_sync_data: a dvr agent is given the floating IPs of its host's ports, bound there
            **({"host": cloud.port[port_name].host, "dest_host": None} if lay.dvr else {}),
        }
        for port_name, fip in lay.fips.items()
        # the router's own: the one on the port's subnet (lay.fips holds every floating IP of the external network)
        if any(f.subnet_id in router.interfaces for f in cloud.port[port_name].fixed_ips)
        and (not lay.dvr or cloud.port[port_name].host == host)
    ]
    networks = {
        str(cloud.network[n].id): cloud.network[n] for n in {lay.ext.name, *(p.network for p in lay.qr.values())}
    }
    subnets = {
        nid: [_subnet(cloud, s) for s in cloud.subnets if s.network_id == network.name]
        for nid, network in networks.items()
    }
    return {
        "routers": routers,
        "interfaces": interfaces,
        "floatingips": floatingips,
        "subnets": subnets,
        "mtus": {nid: network.mtu for nid, network in networks.items()},
        "subnet_ports": _subnet_ports(lay) if lay.dvr else {},
    }


def agent_rows(dp: DvrPlan, agent: AgentHost) -> dict:
    """What the agent's server holds: :func:`sync_rows` of every router the agent hosts, for its host (one
    database: each router's rows side by side; the subnets, MTUs and ports by subnet of all)."""
    out: dict = {"routers": [], "interfaces": [], "floatingips": [], "subnets": {}, "mtus": {}, "subnet_ports": {}}
    for lay in agent.layouts or [dp.layout]:
        rows = sync_rows(lay, agent.host)
        for key in ("routers", "interfaces", "floatingips"):
            out[key] += rows[key]
        for key in ("subnets", "mtus", "subnet_ports"):
            out[key].update(rows[key])
    return out


def _subnet_ports(lay: L.Layout) -> dict[str, list[dict]]:
    """``get_ports_by_subnet`` per router subnet id (``get_ports_under_dvr_connected_subnet``: the bound ports
    with an address on it, with their allowed address pairs): the VMs, the DHCP port, the SNAT port. The DVR
    agent writes a permanent ARP entry for each (``DvrLocalRouter._set_subnet_arp_info``)."""
    cloud, out = lay.cloud, {}
    for name in lay.router.interfaces:
        subnet = cloud.subnet[name]
        ports = []
        for vm in lay.vms:
            fixed = [f for f in vm.fixed_ips if f.subnet_id == name]
            if fixed:
                ports.append(
                    {
                        "id": str(vm.id),
                        "mac_address": vm.mac_address,
                        "device_owner": vm.device_owner or "compute:nova",
                        "fixed_ips": [{"subnet_id": str(subnet.id), "ip_address": str(f.ip_address)} for f in fixed],
                        "allowed_address_pairs": [
                            {"ip_address": str(p.ip_address), "mac_address": p.mac_address or vm.mac_address}
                            for p in vm.allowed_address_pairs
                        ],
                    }
                )
        for port in [*lay.dhcp.values(), *lay.sg.values()]:
            owner = DHCP if port.kind == "dhcp" else SNAT_INTF
            for addr in port.addrs:
                if addr.ip in subnet.cidr:
                    ports.append(
                        {
                            "id": port.port_id,
                            "mac_address": port.mac,
                            "device_owner": owner,
                            "fixed_ips": [{"subnet_id": str(subnet.id), "ip_address": str(addr.ip)}],
                            "allowed_address_pairs": [],
                        }
                    )
        out[str(subnet.id)] = ports
    return out


def _port(lay: L.Layout, port: L.RouterPort, device_id: str, owner: str, host: str) -> dict:
    cloud = lay.cloud
    by_cidr = {s.name: s for s in cloud.subnets if s.network_id == port.network}
    fixed = []
    for addr in port.addrs:
        subnet = next(s for s in by_cidr.values() if addr.ip in s.cidr)
        fixed.append({"subnet_id": str(subnet.id), "ip_address": str(addr.ip)})
    return {
        "id": port.port_id,
        "name": "",
        "network_id": str(cloud.network[port.network].id),
        "tenant_id": PROJECT,
        "project_id": PROJECT,
        "mac_address": port.mac,
        "admin_state_up": True,
        "status": "ACTIVE",
        "fixed_ips": fixed,
        "device_id": device_id,
        "device_owner": owner,
        "binding:host_id": host,
    }


def _subnet(cloud: Cloud, subnet) -> dict:
    return {
        "id": str(subnet.id),
        "cidr": str(subnet.cidr),
        "gateway_ip": None if subnet.gateway_ip is None else str(subnet.gateway_ip),
        "dns_nameservers": [],
        "network_id": str(cloud.network[subnet.network_id].id),
        "ipv6_ra_mode": subnet.ipv6_ra_mode,
        "subnetpool_id": None,
        "segment_id": None,
        "address_scope_id": None,
    }


def _v4(cloud: Cloud, port) -> Optional[ipaddress.IPv4Address]:
    return next((a.ip for a in L.fixed_interfaces(cloud, port) if a.version == 4), None)
