"""Put a cloud, as written, into Neutron's own server, and keep every answer.

Objects go in the order an operator creates them: agents (their state reports), networks with
their segments, subnets, security groups and rules, ports with fixed addresses, the DHCP agents'
ports, routers with
gateways and interfaces, ports that let Neutron choose, floating IPs, then each L3 agent's sync and
its request for its floating-IP agent gateway port (:mod:`.l3_agent`, answered at ``("hosts", i)``). A topology
describes a
state, not a history, so ports that name their addresses go before anything that lets Neutron
choose (labtwin's loader reserves named addresses first too): Neutron picks a free address at
random, and a router's gateway port or a DVR router's SNAT port (one per interface) must not
take an address the file gives to a port.

Each answer is keyed by the object's place in the file (``("ports", 3)``), so a difference is
reported where the user wrote the object. Labtwin-only fields (``host.role``, ``rack``) become
the agents Neutron would have: an Open vSwitch agent per host with its bridge mappings, an L3
agent per host (``dvr_snat`` on network nodes, ``dvr`` on compute nodes), and a DHCP agent on each
network node, which the oracle plays once the ports that name their addresses exist: Neutron's own
``DeviceManager`` asks Neutron's own RPC handler for each DHCP port (:mod:`.dhcp_agent`). Which agents host a
network is Neutron's own scheduler's choice (the ``WeightScheduler``, run by the server when each subnet is created
and by the RPC handler when an agent syncs), with the cloud's ``dhcp_agents_per_network``.

A cloud with ``mechanism_driver: ovn`` is loaded into the same ML2/OVS server with what ML2/OVN changes about the
ports: no DHCP agent, routers without ``distributed``/``ha``, and the OVN driver's metadata ports made by Neutron's
own ``OVNClient`` (:mod:`.ovn_metadata`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from labtwin.description import Cloud
from labtwin.description.dhcp_scheduling import runs_dhcp_agent
from labtwin.description.neutron_ports import AGENT_GATEWAY_OWNER, DHCP_OWNER, METADATA_OWNER, SNAT_OWNER
from labtwin.description.schema import Port

from .dhcp_agent import dhcp_agent, make_dhcp_ports
from .l3_agent import ask_agent_gateway_ports, pin_snat
from .server import Answer, NeutronServer, l2_agent, l3_agent, not_none

Loc = tuple[Any, ...]
#: The device owners of the ports Neutron's server makes by itself, read back and compared.
NETWORK_PORT_OWNERS = (DHCP_OWNER, SNAT_OWNER, AGENT_GATEWAY_OWNER, METADATA_OWNER)


@dataclass
class NeutronLoad:
    """Neutron's answers to one cloud: per object (by its place in the file) the answer, and the
    names of what Neutron created (its uuids, to read addresses back by name)."""

    answers: dict[Loc, Answer] = field(default_factory=dict)
    ids: dict[tuple[str, str], str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # uuid -> labtwin name
    #: Each group's rules as Neutron holds them once everything is created (its own defaults included).
    group_rules: dict[str, list[dict]] = field(default_factory=dict)
    #: The ports Neutron's server made by itself (DHCP ports, DVR SNAT ports, floating-IP agent gateway ports),
    #: as its API lists them once everything is created.
    network_ports: list[dict] = field(default_factory=list)
    #: What the DHCP agents could not make (a full subnet), as the agent would log it.
    dhcp_failures: list[str] = field(default_factory=list)

    def keep(self, loc: Loc, kind: str, name: str, answer: Answer) -> Answer:
        self.answers[loc] = answer
        if answer.ok:
            uuid = next(iter(answer.body.values()))["id"]
            self.ids[(kind, name)] = uuid
            self.names[uuid] = name
        return answer

    def id(self, kind: str, name: Optional[str]) -> Optional[str]:
        return None if name is None else self.ids.get((kind, name), f"missing-{kind}-{name}")


def load_into_neutron(
    cloud: Cloud,
    server: NeutronServer,
    macs: Optional[dict[str, str]] = None,
    agents: bool = True,
    router_modes: bool = True,
) -> NeutronLoad:
    """Create every object of *cloud* (as written, defaults not filled) in *server*. *macs* gives ports
    labtwin's MACs (Neutron's own are random), so SLAAC addresses, made from the MAC, compare exactly.
    *agents*: register the agents each host would run (False under ML2/OVN: its chassis are real).
    *router_modes*: send each router's ``distributed`` and ``ha`` as written (False under ML2/OVN: its
    ``ovn-router`` plugin has no ``dvr`` extension and answers 400 "Unrecognized attribute(s) 'distributed'";
    an OVN router's gateway is scheduled on gateway chassis whatever the file says)."""
    load = NeutronLoad()
    macs = macs or {}
    played_ovn = agents and cloud.mechanism_driver == "ovn"  # ML2/OVN's effects on ports, in this ML2/OVS server
    metadata = _configure(cloud, server) if agents else None
    if played_ovn:
        router_modes = False  # ovn-router has no DVR: 400 to distributed (its ha, l3-ha, makes no tenant address)
    if agents:
        _agents(cloud, server)
    for i, network in enumerate(cloud.networks):
        _network(cloud, i, network, server, load)
        if metadata is not None and load.answers[("networks", i)].ok:
            metadata.network_created(load.answers[("networks", i)].body["network"])
    for i, subnet in enumerate(cloud.subnets):
        _subnet(i, subnet, server, load)
    for i, group in enumerate(cloud.security_groups):  # every group first: a rule may name a later one
        _security_group(i, group, server, load)
    for i, group in enumerate(cloud.security_groups):
        _rules(i, group, server, load)
    for group in server.get("/security-groups?name=default").body["security_groups"]:
        load.names.setdefault(group["id"], "default")  # the project's, made by Neutron even when unlisted
    named, unnamed = _split_by_named_addresses(cloud.ports)
    for i in named:  # before routers: a gateway port or DVR SNAT port takes a random free address
        _port(i, cloud.ports[i], macs.get(cloud.ports[i].name), server, load)
    if metadata is not None:  # each subnet's metadata address: after the ports that name theirs (see _configure)
        _metadata_addresses(cloud, server, load, metadata)
    if agents and not played_ovn:  # the DHCP agents, told of the new subnets, make their ports
        for host in cloud.hosts:
            if runs_dhcp_agent(host):
                load.dhcp_failures += make_dhcp_ports(server, host.name)
    for i, router in enumerate(cloud.routers):
        _router(cloud, i, router, server, load, router_modes)
    for i in unnamed:
        _port(i, cloud.ports[i], macs.get(cloud.ports[i].name), server, load)
    for i, fip in sorted(enumerate(cloud.floatingips), key=lambda pair: pair[1].floating_ip_address is None):
        body = not_none(
            floating_network_id=load.id("network", fip.floating_network_id),
            port_id=load.id("port", fip.port_id),
            floating_ip_address=_text(fip.floating_ip_address),
        )
        load.keep(("floatingips", i), "floatingip", str(i), server.post("/floatingips", {"floatingip": body}))
    dvr = [r for r in cloud.routers if r.distributed and r.external_gateway_info is not None]
    if agents and not played_ovn and dvr:  # then each L3 agent syncs its routers and asks for its fg- port
        # (.l3_agent); without a distributed router with a gateway no agent asks for one: not played (time)
        snat = next((h.name for h in cloud.hosts if h.role == "network"), None)
        for router in dvr:
            if snat is not None and ("router", router.name) in load.ids:  # created
                pin_snat(server, load.ids[("router", router.name)], snat)
        for i, host in enumerate(cloud.hosts):
            load.answers[("hosts", i)] = ask_agent_gateway_ports(server, host.name, _l3_mode(host))
    for group in server.get("/security-groups").body.get("security_groups", []):
        load.group_rules[group["name"]] = group["security_group_rules"]
    for owner in NETWORK_PORT_OWNERS:
        load.network_ports += server.get(f"/ports?device_owner={owner}").body.get("ports", [])
    return load


def _configure(cloud: Cloud, server: NeutronServer) -> Optional[Any]:
    """The server's options this cloud sets (this process serves this cloud only): ``dhcp_agents_per_network``;
    under ``mechanism_driver: ovn``, the OVN driver's metadata-port steps (:mod:`.ovn_metadata`), returned. They run
    at each network's creation and, for the addresses, once the ports that name theirs exist: Neutron gives the
    metadata port a random free address when the subnet is created, which could be one the file names for a later
    port; labtwin assumes it was not (its loader takes the lowest address no port names), and so does the oracle."""
    server.override("dhcp_agents_per_network", cloud.dhcp_agents_per_network)
    if cloud.mechanism_driver != "ovn":
        return None
    from .ovn_metadata import MetadataPorts

    return MetadataPorts(server, cloud.ovn_metadata_enabled)


def _metadata_addresses(cloud: Cloud, server: NeutronServer, load: NeutronLoad, metadata: Any) -> None:
    for i, subnet in enumerate(cloud.subnets):
        answer = load.answers[("subnets", i)]
        if answer.ok:
            created = answer.body["subnet"]
            network = server.get(f"/networks/{created['network_id']}").body["network"]
            metadata.subnet_created(created, network)


def _agents(cloud: Cloud, server: NeutronServer) -> None:
    """The agents each host runs (their state reports): an Open vSwitch agent and an L3 agent everywhere, a DHCP
    agent on network nodes (reporting ``networks: 0``, the load Neutron's DHCP scheduler weighs, which its own
    ``bind`` raises by one per network: :mod:`labtwin.description.dhcp_scheduling`); no DHCP agent under ML2/OVN."""
    for host in cloud.hosts:
        server.register_agent(l2_agent(host.name, host.bridge_mappings))
        server.register_agent(l3_agent(host.name, _l3_mode(host)))
        if runs_dhcp_agent(host) and cloud.mechanism_driver != "ovn":
            server.register_agent(dhcp_agent(host.name))


def _l3_mode(host) -> str:
    """The L3 agent mode labtwin assumes on *host*: ``dvr_snat`` on a network node, ``dvr`` elsewhere."""
    return "dvr_snat" if host.role == "network" else "dvr"


def _network(cloud: Cloud, i: int, network, server: NeutronServer, load: NeutronLoad) -> None:
    segments = [s for s in cloud.segments if s.network_id == network.name]
    declared = network.model_fields_set
    body = not_none(
        name=network.name,
        shared=network.shared,
        port_security_enabled=network.port_security_enabled,
        mtu=network.mtu if "mtu" in declared else None,
        **{"router:external": network.external},
    )
    if segments:  # the first segment as the network's provider attributes, the others as segments
        body.update(_provider(segments[0]))
    answer = load.keep(("networks", i), "network", network.name, server.post("/networks", {"network": body}))
    if not answer.ok or not segments:
        return
    listed = server.get(f"/segments?network_id={answer.body['network']['id']}").body.get("segments", [])
    first = segments[0]
    if listed:
        load.ids[("segment", first.name)] = listed[0]["id"]
        load.names[listed[0]["id"]] = first.name
        load.answers[("segments", cloud.segments.index(first))] = Answer(201, {"segment": listed[0]})
    for segment in segments[1:]:
        body = {"network_id": answer.body["network"]["id"], "name": segment.name, **_provider(segment, prefix="")}
        load.keep(
            ("segments", cloud.segments.index(segment)),
            "segment",
            segment.name,
            server.post("/segments", {"segment": body}),
        )


def _provider(segment, prefix: str = "provider:") -> dict:
    """A segment's type, physnet and id: as a network's provider attributes, or (no prefix) as a segment's."""
    return not_none(
        **{
            f"{prefix}network_type": segment.network_type,
            f"{prefix}physical_network": segment.physical_network,
            f"{prefix}segmentation_id": segment.segmentation_id,
        }
    )


def _subnet(i: int, subnet, server: NeutronServer, load: NeutronLoad) -> None:
    declared = subnet.model_fields_set
    body = not_none(
        name=subnet.name,
        network_id=load.id("network", subnet.network_id),
        segment_id=load.id("segment", subnet.segment_id),
        cidr=str(subnet.cidr),
        ip_version=subnet.ip_version,
        enable_dhcp=subnet.enable_dhcp,
        ipv6_ra_mode=subnet.ipv6_ra_mode,
        ipv6_address_mode=subnet.ipv6_address_mode,
        allocation_pools=(
            [{"start": str(p.start), "end": str(p.end)} for p in subnet.allocation_pools]
            if "allocation_pools" in declared
            else None
        ),
    )
    if "gateway_ip" in declared:
        body["gateway_ip"] = _text(subnet.gateway_ip)  # null: no gateway
    load.keep(("subnets", i), "subnet", subnet.name, server.post("/subnets", {"subnet": body}))


def _security_group(i: int, group, server: NeutronServer, load: NeutronLoad) -> None:
    if group.name == "default":  # Neutron made the project's default group itself (with its rules)
        listed = server.get("/security-groups?name=default").body["security_groups"]
        answer = Answer(200, {"security_group": listed[0]})
        load.keep(("security_groups", i), "security_group", group.name, answer)
    else:
        answer = load.keep(
            ("security_groups", i),
            "security_group",
            group.name,
            server.post("/security-groups", {"security_group": {"name": group.name}}),
        )


def _rules(i: int, group, server: NeutronServer, load: NeutronLoad) -> None:
    if not load.answers[("security_groups", i)].ok:
        return
    for j, rule in enumerate(group.rules):
        body = not_none(
            security_group_id=load.id("security_group", group.name),
            direction=rule.direction,
            ethertype=rule.ethertype,
            protocol=None if rule.protocol == "any" else rule.protocol,
            port_range_min=rule.port_range_min,
            port_range_max=rule.port_range_max,
            remote_ip_prefix=_text(rule.remote_ip_prefix),
            remote_group_id=load.id("security_group", rule.remote_group_id),
        )
        load.answers[("security_groups", i, "rules", j)] = server.post(
            "/security-group-rules", {"security_group_rule": body}
        )


def _router(cloud: Cloud, i: int, router, server: NeutronServer, load: NeutronLoad, modes: bool = True) -> None:
    declared = router.model_fields_set if modes else set()
    body: dict[str, Any] = not_none(
        name=router.name,
        distributed=router.distributed if "distributed" in declared else None,
        ha=router.ha if "ha" in declared else None,
    )
    gateway = router.external_gateway_info
    if gateway is not None:
        body["external_gateway_info"] = {
            "network_id": load.id("network", gateway.network_id),
            "enable_snat": gateway.enable_snat,
        }
        if gateway.external_fixed_ips:  # as written, or as labtwin filled them in a resolved cloud (an emulation's):
            # else Neutron's IPAM picks a random free address, which may be one a floating IP names later (409)
            body["external_gateway_info"]["external_fixed_ips"] = [
                not_none(subnet_id=load.id("subnet", f.subnet_id), ip_address=_text(f.ip_address))
                for f in gateway.external_fixed_ips
            ]
    answer = load.keep(("routers", i), "router", router.name, server.post("/routers", {"router": body}))
    if not answer.ok:
        return
    uuid = answer.body["router"]["id"]
    for j, subnet in enumerate(router.interfaces):
        load.answers[("routers", i, "interfaces", j)] = server.put(
            f"/routers/{uuid}/add_router_interface", {"subnet_id": load.id("subnet", subnet)}
        )


def _port(i: int, port: Port, mac: Optional[str], server: NeutronServer, load: NeutronLoad) -> None:
    declared = port.model_fields_set
    body = not_none(
        name=port.name,
        network_id=load.id("network", port.network_id),
        device_owner=port.device_owner,
        mac_address=port.mac_address or mac,
        port_security_enabled=port.port_security_enabled if "port_security_enabled" in declared else None,
        fixed_ips=[
            not_none(subnet_id=load.id("subnet", f.subnet_id), ip_address=_text(f.ip_address)) for f in port.fixed_ips
        ]
        or None,
        security_groups=(
            [load.id("security_group", g) for g in port.security_groups] if port.security_groups is not None else None
        ),
        allowed_address_pairs=[
            not_none(ip_address=p.written, mac_address=p.mac_address) for p in port.allowed_address_pairs
        ]
        or None,
        **{"binding:host_id": port.host},
    )
    load.keep(("ports", i), "port", port.name, server.post("/ports", {"port": body}))


def _split_by_named_addresses(ports) -> tuple[list[int], list[int]]:
    """The places of the ports whose every fixed IP names its address, and of the others."""
    names = [bool(p.fixed_ips) and all(f.ip_address is not None for f in p.fixed_ips) for p in ports]
    return [i for i, n in enumerate(names) if n], [i for i, n in enumerate(names) if not n]


def _text(value: Any) -> Optional[str]:
    return None if value is None else str(value)
