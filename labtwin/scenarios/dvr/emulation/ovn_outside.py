"""The dvr OVN emulation's outside world: one namespace on the external network's physical segment, holding
the external subnets' gateway addresses as Neutron chose them, with routes back to the router's IPv6 subnets;
and the VMs following Neutron's gateways where they differ from the topology's."""

from __future__ import annotations

from labtwin.description import Cloud
from labtwin.emulation.realise import Realisation
from labtwin.emulation.runner import Step, in_netns
from labtwin.emulation.wiring import gateway_address

from .. import spec as classes
from ..neutron_names import mac_of
from ..spec import EXTERNAL

OUTSIDE = "external"  # the outside world's namespace key


def external_segment(cloud: Cloud, network: str):
    return next(
        (s for s in cloud.segments if s.network_id == network and s.network_type in ("flat", "vlan")),
        None,
    )


def add_outside(cloud: Cloud, router, the_plan, wiring) -> None:
    """One namespace on the external network's segment, holding its subnets' gateway addresses."""
    ext = classes.external_network(cloud, router)
    assert ext is not None  # the_router has a gateway
    segment = external_segment(cloud, ext.name)
    cfg = the_plan.add_ns(OUTSIDE, "router", "outside world")
    cfg.sysctls += ["net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"]
    cfg.sysctls += ["net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0"]
    cfg.ip_batch.append("link set lo up")
    dev = wiring.access(OUTSIDE, "eth0", segment)
    cfg.ip_batch += [f"link set {dev} address {mac_of(EXTERNAL)}", f"link set {dev} up"]
    for subnet in (s for s in cloud.subnets if s.network_id == ext.name and s.gateway_ip is not None):
        gateway_address(cfg, subnet, dev)


def routes_outside(real: Realisation, cloud: Cloud, router, made: dict) -> None:
    """The outside world's route to each IPv6 subnet behind the router: via the gateway port's IPv6 address,
    as Neutron gave it."""
    gateway = gateway_port(made, router.name)
    gw6 = next((f["ip"] for f in gateway["fixed_ips"] if ":" in f["ip"]), None)
    for subnet in (cloud.subnet[s] for s in router.interfaces if gw6 is not None):
        if subnet.ip_version == 6:
            argv = ["ip", "-6", "route", "add", str(subnet.cidr), "via", str(gw6)]
            real.runner.run(Step(in_netns(real.pid(OUTSIDE), argv), what=f"outside world: {subnet.cidr} via {gw6}"))


def follow_neutron_gateways(real: Realisation, cloud: Cloud, router, made: dict, vm_ns: dict) -> dict[str, str]:
    """Where Neutron chose another gateway address than the topology resolves (Neutron 29 gives an IPv6 subnet
    without ``gateway_ip`` its network address, the Subnet-Router anycast: ``ipam_backend_mixin._gateway_ip_str``;
    labtwin's description the first host address), the VMs route via Neutron's and the outside world holds
    Neutron's, as they would learn them from Neutron (DHCP, RAs). Subnet -> Neutron's gateway, where it differs."""
    moved = {}
    for subnet in cloud.subnets:
        given = made["gateways"].get(subnet.name)
        if given is not None and subnet.gateway_ip is not None and given != str(subnet.gateway_ip):
            moved[subnet.name] = given
    ext = classes.external_network(cloud, router)
    for name, gateway in moved.items():
        subnet = cloud.subnet[name]
        family = f"-{subnet.ip_version}"
        if ext is not None and subnet.network_id == ext.name:  # the outside world holds Neutron's, not labtwin's
            prefix = subnet.cidr.prefixlen
            for verb, address_ in (("del", str(subnet.gateway_ip)), ("add", gateway)):
                argv = ["ip", family, "addr", verb, f"{address_}/{prefix}", "dev", "eth0"] + ["nodad"] * (verb == "add")
                real.runner.run(Step(in_netns(real.pid(OUTSIDE), argv), what=f"outside world: {verb} {address_}"))
            continue
        for port in cloud.ports:
            if port.name in vm_ns and any(f.subnet_id == name for f in port.fixed_ips):
                argv = ["ip", family, "route", "replace", "default", "via", gateway, "dev", "eth0"]
                real.runner.run(Step(in_netns(real.pid(vm_ns[port.name]), argv), what=f"{port.name}: via {gateway}"))
    return moved


def gateway_port(made: dict, router: str) -> dict:
    rid = made["routers"][router]
    for port in made["ports"]:
        if port["device_id"] == rid and port["device_owner"] == "network:router_gateway":
            return port
    raise RuntimeError(f"Neutron made no gateway port for router {router}")


def outside_addresses(cloud: Cloud, router, made: dict) -> list[str]:
    """The outside world's addresses (its external subnets' gateways, as Neutron chose them), IPv4 first."""
    ext = classes.external_network(cloud, router)
    subnets = [s for s in cloud.subnets if ext is not None and s.network_id == ext.name and s.gateway_ip is not None]
    return [made["gateways"][s.name] for s in sorted(subnets, key=lambda s: s.ip_version)]
