"""Cloud -> realisation plan for the reachability layout, as plain data (no effects, no root needed).

The layout, per Neutron's Linux bridge agent with the iptables hybrid firewall:

- every host (compute or network) is one network namespace holding its own
  Linux bridges (``brq`` + 11 characters of the network id), VLAN
  subinterfaces ``eth<N>.<vlan>`` of its physnet interface ``eth<N>``, its
  iptables/ipset filter, its routes;
- every port bound to a host is one namespace with the port's MAC and fixed
  IPs on ``eth0``, a veth to ``tap`` + 11 characters of the port id on its host;
- the physical switches of each physnet are one small OVS bridge (userspace
  datapath) with an access port per (host, segment) tagged with the
  segment's VLAN id; the host's end is named like the subinterface Neutron
  would use (``eth1.101``) — see :meth:`Wiring.uplink` for why;
- every router is a namespace (``qrouter``) on the first network-role host,
  with ``qr-`` devices holding its subnets' gateway addresses.

Per-host OVS integration bridges (for designs that need OpenFlow) use the
same :class:`OvsBridge` / :class:`OvsPort`; this layout needs none. A simplification:
VXLAN/Geneve segments are not realised (:class:`PlanError`).
"""

from __future__ import annotations

import ipaddress

from labtwin.description import Cloud, Port
from labtwin.description.routing import port_segment
from labtwin.description.schema import derived_id
from labtwin.emulation import firewall, naming
from labtwin.emulation.plan import Plan, Veth, derived_mac
from labtwin.emulation.wiring import Wiring, add_physical_router, add_vm, address


def plan(cloud: Cloud, run_id: str, filters: bool = True) -> Plan:
    """The whole realisation of *cloud* for run *run_id*.

    *filters*: labtwin writes each host's security-group filter (:mod:`labtwin.emulation.firewall`) on
    the Linux bridge agent's plug. False when Neutron's own agent writes it after the realisation
    (``control=neutron``): its hybrid driver needs ML2/OVS's hybrid plug (:meth:`Plan.plug`).
    """
    result = Plan(naming.check_run_id(run_id))
    hosts = {h.name: f"host:{i}" for i, h in enumerate(cloud.hosts)}
    for host in cloud.hosts:
        cfg = result.add_ns(hosts[host.name], "host", host.name)
        cfg.sysctls += ["net.bridge.bridge-nf-call-iptables=1", "net.bridge.bridge-nf-call-ip6tables=1"]
        cfg.ip_batch.append("link set lo up")
    wiring = Wiring(cloud, result, hosts)
    for j, port in enumerate(p for p in cloud.ports if p.host and p.ips):
        _add_port(cloud, result, wiring, port, j, hybrid=not filters)
    for k, router in enumerate(cloud.routers):
        _add_router(cloud, result, wiring, router, k)
    add_physical_router(cloud, result, wiring)
    for host in cloud.hosts if filters else ():
        key = hosts[host.name]
        ports = [_filtered(cloud, wiring, cloud.port[e.port], e) for e in result.endpoints.values()]
        ports = [fp for fp in ports if fp.port.host == host.name]
        result.config[key].rules = firewall.host_rules(cloud, ports)
    return result


def _filtered(cloud: Cloud, wiring: Wiring, port: Port, endpoint) -> firewall.FilteredPort:
    bridge = wiring.network_bridge(str(port.host), port.network_id, port_segment(cloud, port))
    return firewall.FilteredPort(port, naming.tap_name(port.id), endpoint.mac, endpoint.ips, bridge)


def _add_port(cloud: Cloud, result: Plan, wiring: Wiring, port: Port, index: int, hybrid: bool = False) -> None:
    tap = add_vm(cloud, result, port, index, wiring.hosts[port.host])
    bridge = wiring.network_bridge(port.host, port.network_id, port_segment(cloud, port))
    result.plug(wiring.hosts[port.host], port.id, tap, bridge, hybrid)


def _add_router(cloud: Cloud, result: Plan, wiring: Wiring, router, index: int) -> None:
    """A legacy router: a namespace on the first network node with a qr- device per subnet."""
    host = next((h.name for h in cloud.hosts if h.role == "network"), cloud.hosts[0].name)
    key = f"router:{index}"
    cfg = result.add_ns(key, "router", router.name)
    cfg.sysctls += ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1", "net.ipv4.icmp_ratelimit=0"]
    cfg.ip_batch.append("link set lo up")
    for subnet_name in router.interfaces:
        subnet = cloud.subnet[subnet_name]
        if subnet.gateway_ip is None:
            continue
        port_id = derived_id("port", f"router-interface/{router.id}/{subnet.id}")
        dev, tap = naming.prefixed("qr-", port_id), naming.tap_name(port_id)
        result.veths.append(Veth(key, dev, wiring.hosts[host], tap))
        segment = next((s for s in cloud.segments if s.network_id == subnet.network_id), None)
        if subnet.segment_id:
            segment = cloud.segment[subnet.segment_id]
        bridge = wiring.network_bridge(host, subnet.network_id, segment)
        result.config[wiring.hosts[host]].enslave(tap, bridge)
        cfg.ip_batch.append(f"link set {dev} address {derived_mac(port_id)}")
        address(cfg, ipaddress.ip_address(str(subnet.gateway_ip)), subnet.cidr, dev)
        cfg.ip_batch.append(f"link set {dev} up")
