"""From a dump to a topology: Neutron's objects as labtwin's (same field names), and what could not be said.

What becomes what:

- **Hosts** come from the agents (``host``; a DHCP agent or an L3 agent in ``legacy`` / ``dvr_snat`` mode
  makes a network node, anything else a compute host) and from ports' ``binding:host_id``. Their
  ``bridge_mappings`` come from the OVS agent's ``bridge_mappings``, the Linux bridge agent's
  ``interface_mappings`` or ovn-controller's ``ovn-bridge-mappings``. Neutron has no racks: hosts that map
  the same physnets make one rack (``rack1``, ``rack2``, ... in order of appearance), the layout of the
  routed-networks guide (a physnet per rack).
- **Segments** come from the ``segments`` collection, else from a network's ``provider:*`` or multi-provider
  ``segments`` fields (admin-only: without them a network has no segment, and the report says so).
- **Router interfaces and gateways** come from the routers' own fields and the ``network:router_interface*``
  ports (by ``device_id``). Ports Neutron or its agents create by themselves (DHCP, router interfaces and
  gateways, SNAT, floating-IP agent gateways, HA, OVN metadata, floating-IP ports) are not imported:
  labtwin's loader derives them as Neutron does (``labtwin validate --neutron`` checks that).
- **Names** that labtwin cannot use are mapped (:mod:`.names`); the original is kept in the description.
  Ids are kept.

Everything that cannot be expressed (QoS, trunks, port forwardings, BGP, extra routes, SR-IOV ports, address
groups, ...) is listed per object in the report (:class:`.report.Report`), never dropped silently.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Optional

from .dump import Dump, DumpError, Item
from .names import SafeNames
from .report import DERIVED_PORTS, NOT_EXPRESSIBLE, UNMODELLED_AGENTS, Report

ROUTER_INTERFACES = {k for k, v in DERIVED_PORTS.items() if v == "router interface"}
NETWORK_NODE_L3_MODES = ("legacy", "dvr_snat")


class Builder:
    """One import: the dump's objects by id, the safe names handed out, the report."""

    def __init__(self, dump: Dump, cloud_name: str):
        self.dump, self.cloud_name = dump, cloud_name
        self.report = Report()
        self.problems: list[str] = []  # references to objects the dump does not hold: a dump cut short
        self.incomplete: set[str] = set()  # segments the dump does not describe whole (not imported)
        self.names = {
            kind: SafeNames(prefix, drop_domain=(kind == "host"))
            for kind, prefix in (
                ("host", "host"),
                ("physnet", "physnet"),
                ("network", "net"),
                ("segment", "seg"),
                ("subnet", "subnet"),
                ("router", "router"),
                ("security_group", "sg"),
                ("port", "port"),
            )
        }
        self.by_id: dict[str, dict[str, str]] = defaultdict(dict)  # kind -> Neutron id -> safe name
        self.physnet: dict[str, str] = {}  # Neutron physnet -> safe name
        self.host: dict[str, str] = {}  # Neutron host -> safe name
        #: subnets whose addresses come from the port's MAC (SLAAC, DHCPv6 stateless)
        self.auto_address = {
            str(s.data["id"])
            for s in dump.of("subnet")
            if s.data.get("ipv6_address_mode") in ("slaac", "dhcpv6-stateless")
        }

    # --- names ---------------------------------------------------------------------------------------
    def named(self, kind: str, item: Item) -> str:
        name = self.names[kind].name(item.data.get("name"), str(item.data["id"]))
        self.by_id[kind][str(item.data["id"])] = name
        return name

    def described(self, kind: str, name: str, item: Item) -> dict[str, Any]:
        """``name``, ``id`` and the description (Neutron's, and the original name where it was mapped)."""
        out: dict[str, Any] = {"name": name, "id": str(item.data["id"])}
        original = self.names[kind].original.get(name)
        text = " ".join(
            filter(None, [item.data.get("description") or "", f"(Neutron name: {original!r})" if original else ""])
        )
        if text:
            out["description"] = text
        return out

    def physnet_name(self, neutron: str) -> str:
        if neutron not in self.physnet:
            self.physnet[neutron] = self.names["physnet"].name(neutron, neutron)
        return self.physnet[neutron]

    def host_name(self, neutron: str) -> str:
        if neutron not in self.host:
            self.host[neutron] = self.names["host"].name(neutron, neutron)
        return self.host[neutron]

    def ref(self, kind: str, neutron_id: Optional[str]) -> Optional[str]:
        return self.by_id[kind].get(str(neutron_id)) if neutron_id else None

    def must(self, kind: str, neutron_id: Any, item: Item, path: str) -> str:
        """The safe name of the *kind* with *neutron_id* that *item* references at *path*; a located problem
        when the dump does not hold it (a dump cut short, or saved without that collection)."""
        name = self.ref(kind, neutron_id)
        if name is None:
            self.problems.append(f"{item.at(path)}: {kind} {neutron_id} is not in the dump")
            return str(neutron_id)
        return name

    def not_expressible(self, item: Item, name: str) -> None:
        for key, what in NOT_EXPRESSIBLE.get(item.kind, {}).items():
            if item.data.get(key) not in (None, "", [], {}):
                self.report.drop(item, name, f"{what} ({key})")

    # --- the topology --------------------------------------------------------------------------------
    def build(self) -> dict[str, Any]:
        hosts = self.hosts()
        networks = [self.network(item) for item in self.dump.of("network")]
        segments = self.segments()
        subnets = [self.subnet(item) for item in self.dump.of("subnet")]
        groups = self.security_groups()
        ports = self.ports(hosts)
        routers = [self.router(item) for item in self.dump.of("router")]
        floatingips = [f for f in (self.floatingip(item) for item in self.dump.of("floatingip")) if f]
        for name, host in hosts.items():
            host.setdefault("rack", "rack1")
        physnets = sorted(set(self.physnet.values()))
        self.report.renamed = {k: dict(v.original) for k, v in self.names.items() if v.original}
        self.report.assumed += [f"{note}" for note in self.dump.notes]
        topology: dict[str, Any] = {
            "name": self.cloud_name,
            "description": f"imported from {len(self.dump.files)} dump files",
            "physnets": [{"name": p} for p in physnets],
            "hosts": list(hosts.values()),
            "networks": networks,
            "segments": segments,
            "subnets": subnets,
            "routers": routers,
            "security_groups": groups,
            "ports": ports,
            "floatingips": floatingips,
        }
        return {k: v for k, v in topology.items() if v != []}

    def hosts(self) -> dict[str, dict[str, Any]]:
        """Hosts from the agents: role, bridge mappings, then racks by the physnets they map."""
        hosts: dict[str, dict[str, Any]] = {}
        for item in self.dump.of("agent"):
            data = item.data
            name = self.host_name(str(data["host"]))
            host = hosts.setdefault(name, {"name": name, "role": "compute", "bridge_mappings": {}})
            if name != data["host"]:
                host["description"] = f"(Neutron host: {data['host']!r})"
            config = data.get("configurations") or {}
            kind = str(data["agent_type"])
            if kind == "DHCP agent" or (
                kind == "L3 agent" and config.get("agent_mode", "legacy") in NETWORK_NODE_L3_MODES
            ):
                host["role"] = "network"
            if kind == "OVN Controller Gateway agent":
                host["role"] = "network"
            for physnet, device in _mappings(kind, config).items():
                host["bridge_mappings"].setdefault(self.physnet_name(physnet), _device(device))
            if kind in UNMODELLED_AGENTS:
                self.report.drop(item, name, f"{kind} (labtwin does not model it)")
        for item in self.dump.of("hypervisor"):  # Nova's compute hosts: a compute host each, unless an agent said more
            name = self.host_name(str(item.data["hypervisor_hostname"]))
            hosts.setdefault(name, {"name": name, "role": "compute", "bridge_mappings": {}})
        racks: dict[tuple[str, ...], str] = {}
        for host in hosts.values():
            mapped = tuple(sorted(host["bridge_mappings"]))
            host["rack"] = racks.setdefault(mapped, f"rack{len(racks) + 1}")
        for mapped, rack in racks.items():
            self.report.assumed.append(
                f"{rack}: the hosts that map {', '.join(mapped) or 'no physnet'} (Neutron has no racks)"
            )
        return hosts

    def network(self, item: Item) -> dict[str, Any]:
        data = item.data
        name = self.named("network", item)
        out = self.described("network", name, item)
        if data.get("router:external"):
            out["router:external"] = True
        _copy(data, out, ("shared", "mtu", "port_security_enabled"))
        self.not_expressible(item, name)
        return out

    def segments(self) -> list[dict[str, Any]]:
        out = []
        listed = {str(s.data["network_id"]) for s in self.dump.of("segment")}
        for item in self.dump.of("segment"):
            network = self.must("network", item.data["network_id"], item, "network_id")
            if not _segment_complete(item.data):  # e.g. `network segment list` without --long: no physnet
                self.incomplete.add(str(item.data["id"]))
                self.report.drop(item, str(item.data.get("name") or item.data["id"]), "no physical network given")
                continue
            name = self.named("segment", item)
            out.append({**self.described("segment", name, item), **self._segment(item.data, network)})
        for item in self.dump.of("network"):
            if str(item.data["id"]) in listed:
                continue
            network = self.by_id["network"][str(item.data["id"])]
            provider = item.data.get("segments") or ([item.data] if item.data.get("provider:network_type") else [])
            fields = [{k.replace("provider:", ""): v for k, v in f.items()} for f in provider]
            complete = [f for f in fields if _segment_complete(f)]
            if len(complete) < len(fields) or not fields:
                self.report.assumed.append(
                    f"network {network}: no complete provider fields (physical network and segmentation id are "
                    "admin only, and not in `network list`) and no segment listed: imported without a segment"
                )
            for i, segment in enumerate(complete):
                name = self.names["segment"].name(
                    f"{network}-{i + 1}" if len(complete) > 1 else network, f"{item.data['id']}{i}"
                )
                out.append({"name": name, **self._segment(segment, network)})
        return out

    def _segment(self, data: dict[str, Any], network: str) -> dict[str, Any]:
        out: dict[str, Any] = {"network_id": network, "network_type": data["network_type"]}
        if data.get("physical_network"):
            out["physical_network"] = self.physnet_name(str(data["physical_network"]))
        if data.get("segmentation_id") is not None:
            out["segmentation_id"] = data["segmentation_id"]
        return out

    def subnet(self, item: Item) -> dict[str, Any]:
        data = item.data
        name = self.named("subnet", item)
        out = self.described("subnet", name, item)
        out["network_id"] = self.must("network", data["network_id"], item, "network_id")
        if data.get("segment_id") and str(data["segment_id"]) in self.incomplete:
            self.report.assumed.append(f"subnet {name}: its segment is not imported (no physical network given)")
        elif data.get("segment_id"):
            out["segment_id"] = self.must("segment", data["segment_id"], item, "segment_id")
        out["cidr"] = data["cidr"]
        out["ip_version"] = data.get("ip_version", 6 if ":" in str(data["cidr"]) else 4)
        out["gateway_ip"] = data.get("gateway_ip")
        if data.get("allocation_pools"):
            out["allocation_pools"] = [{"start": p["start"], "end": p["end"]} for p in data["allocation_pools"]]
        _copy(data, out, ("enable_dhcp", "ipv6_ra_mode", "ipv6_address_mode"))
        self.not_expressible(item, name)
        return out

    def security_groups(self) -> list[dict[str, Any]]:
        groups = {str(item.data["id"]): item for item in self.dump.of("security_group")}
        names = {gid: self.named("security_group", item) for gid, item in groups.items()}
        rules: dict[str, dict[str, Item]] = {gid: {} for gid in groups}
        embedded = [
            Item("security_group_rule", rule, item.at(f"security_group_rules[{i}]"))
            for item in groups.values()
            for i, rule in enumerate(item.data.get("security_group_rules") or [])
        ]
        for rule in [*embedded, *self.dump.of("security_group_rule")]:
            gid = str(rule.data.get("security_group_id"))
            if gid in rules:
                rules[gid].setdefault(str(rule.data.get("id")), rule)
        out = []
        for gid, item in groups.items():
            group = self.described("security_group", names[gid], item)
            group["rules"] = [r for r in (self.rule(rule, names[gid]) for rule in rules[gid].values()) if r]
            if item.data.get("stateful") is False:
                self.report.drop(item, names[gid], "stateless group (stateful: false): imported as stateful")
            out.append(group)
        return out

    def rule(self, item: Item, group: str) -> Optional[dict[str, Any]]:
        data = item.data
        self.not_expressible(item, f"of group {group}")
        if data.get("remote_address_group_id"):
            return None
        out: dict[str, Any] = {"direction": data["direction"], "ethertype": data.get("ethertype") or "IPv4"}
        if data.get("protocol") is not None:
            out["protocol"] = data["protocol"]
        _copy(data, out, ("port_range_min", "port_range_max", "remote_ip_prefix"))
        if data.get("remote_group_id"):
            remote = self.ref("security_group", data["remote_group_id"])
            if remote is None:
                self.report.drop(
                    item, f"of group {group}", f"remote group {data['remote_group_id']} is not in the dump"
                )
                return None
            out["remote_group_id"] = remote
        return out

    def ports(self, hosts: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for item in self.dump.of("port"):
            owner = str(item.data.get("device_owner") or "")
            if owner in DERIVED_PORTS:
                self.report.derived[DERIVED_PORTS[owner]] += 1
                continue
            if owner and not owner.startswith("compute:"):
                self.report.drop(item, str(item.data.get("name") or item.data["id"]), f"device_owner {owner!r}")
                continue
            port = self.port(item, owner)
            if port is not None:
                if port.get("binding:host_id") and port["binding:host_id"] not in hosts:
                    hosts[port["binding:host_id"]] = {
                        "name": port["binding:host_id"],
                        "role": "compute",
                        "bridge_mappings": {},
                    }
                    self.report.assumed.append(
                        f"host {port['binding:host_id']}: bound ports but no agent in the dump: "
                        "a compute host mapping no physnet"
                    )
                out.append(port)
        return out

    def port(self, item: Item, owner: str) -> Optional[dict[str, Any]]:
        data = item.data
        name = self.named("port", item)
        out = self.described("port", name, item)
        out["network_id"] = self.must("network", data["network_id"], item, "network_id")
        if data.get("binding:host_id"):
            out["binding:host_id"] = self.host_name(str(data["binding:host_id"]))
        if owner and owner != "compute:nova":
            self.report.assumed.append(f"port {name}: device_owner {owner!r} imported as 'compute:nova'")
        if data.get("mac_address"):
            out["mac_address"] = str(data["mac_address"]).lower()
        out["fixed_ips"] = [
            self.fixed_ip(f, item, f"fixed_ips[{i}]") for i, f in enumerate(data.get("fixed_ips") or [])
        ]
        if data.get("port_security_enabled") is False:
            out["port_security_enabled"] = False
        else:
            groups = data.get("security_groups") or []
            out["security_groups"] = [
                self.must("security_group", g, item, f"security_groups[{i}]") for i, g in enumerate(groups)
            ]
        pairs = data.get("allowed_address_pairs") or []
        if pairs:
            out["allowed_address_pairs"] = [
                {
                    "ip_address": p["ip_address"],
                    **({"mac_address": p["mac_address"].lower()} if p.get("mac_address") else {}),
                }
                for p in pairs
            ]
        if data.get("binding:vnic_type") not in (None, "normal"):
            self.report.drop(item, name, f"vnic_type {data['binding:vnic_type']} (imported as a normal port)")
        self.not_expressible(item, name)
        return out

    def fixed_ip(self, fixed: dict[str, Any], item: Item, path: str) -> dict[str, Any]:
        """A fixed IP by subnet name; on a SLAAC or DHCPv6-stateless subnet without its address, which
        labtwin's loader derives from the port's MAC (EUI-64) as Neutron did."""
        out = {"subnet_id": self.must("subnet", fixed.get("subnet_id"), item, f"{path}.subnet_id")}
        if str(fixed["subnet_id"]) not in self.auto_address:
            out["ip_address"] = fixed["ip_address"]
        return out

    def router(self, item: Item) -> dict[str, Any]:
        data = item.data
        name = self.named("router", item)
        out = self.described("router", name, item)
        for key in ("distributed", "ha"):
            if key in data:
                out[key] = bool(data[key])
            else:
                self.report.assumed.append(f"router {name}: no {key} field (admin only): Neutron's default, false")
        gateway = data.get("external_gateway_info")
        if gateway and gateway.get("network_id"):
            info: dict[str, Any] = {
                "network_id": self.must("network", gateway["network_id"], item, "external_gateway_info.network_id")
            }
            if gateway.get("enable_snat") is not None:
                info["enable_snat"] = bool(gateway["enable_snat"])
            fixed = gateway.get("external_fixed_ips") or []
            if fixed:
                info["external_fixed_ips"] = [
                    self.fixed_ip(f, item, f"external_gateway_info.external_fixed_ips[{i}]")
                    for i, f in enumerate(fixed)
                ]
            out["external_gateway_info"] = info
        interfaces = [
            self.must("subnet", f.get("subnet_id"), port, f"fixed_ips[{i}].subnet_id")
            for port in self.dump.of("port")
            if port.data.get("device_owner") in ROUTER_INTERFACES and str(port.data.get("device_id")) == str(data["id"])
            for i, f in enumerate(port.data.get("fixed_ips") or [])
        ]
        interfaces += [  # `openstack router show`: its interfaces, where the ports are not in the dump
            self.must("subnet", f.get("subnet_id"), item, f"interfaces_info[{i}].subnet_id")
            for i, f in enumerate(data.get("interfaces_info") or [])
        ]
        if interfaces:
            out["interfaces"] = list(dict.fromkeys(interfaces))
        self.not_expressible(item, name)
        return out

    def floatingip(self, item: Item) -> Optional[dict[str, Any]]:
        data = item.data
        address = data.get("floating_ip_address")
        self.not_expressible(item, str(address))
        port = self.ref("port", data.get("port_id"))
        if port is None:
            why = (
                "not associated with a port"
                if not data.get("port_id")
                else f"its port {data['port_id']} is not imported"
            )
            self.report.drop(item, str(address), f"{why}: not imported (in Neutron it still holds its address)")
            return None
        network = self.must("network", data["floating_network_id"], item, "floating_network_id")
        out: dict[str, Any] = {"floating_network_id": network, "port_id": port}
        if address:
            out["floating_ip_address"] = address
        return out


def _segment_complete(fields: dict[str, Any]) -> bool:
    """Whether a network's provider fields say all a segment needs (a table or a non-admin answer may not)."""
    kind = fields.get("network_type")
    if kind in ("flat", "vlan") and not fields.get("physical_network"):
        return False
    return kind in ("flat", "local") or fields.get("segmentation_id") is not None


def _copy(data: dict[str, Any], out: dict[str, Any], keys: tuple[str, ...]) -> None:
    """The fields of *keys* that *data* sets (not None), as they are."""
    out.update((key, data[key]) for key in keys if data.get(key) is not None)


def _mappings(agent_type: str, config: dict[str, Any]) -> dict[str, str]:
    """physnet -> bridge or interface, as each agent reports its mappings."""
    if agent_type.startswith("OVN Controller"):
        text = str(config.get("ovn-bridge-mappings") or config.get("bridge-mappings") or "")
        return dict(pair.split(":", 1) for pair in text.split(",") if ":" in pair)
    mappings = dict(config.get("bridge_mappings") or {})
    mappings.update(config.get("interface_mappings") or {})
    return mappings


def _device(device: str) -> str:
    """A bridge or interface name as labtwin takes it (Linux caps them at 15 characters already)."""
    return SafeNames("dev").name(device, device)


def build_topology(dump: Dump, cloud_name: str) -> tuple[dict[str, Any], Report]:
    """The topology (a dict in labtwin's format) and the report of one dump; :class:`DumpError` listing every
    reference to an object the dump does not hold."""
    builder = Builder(dump, cloud_name)
    topology = builder.build()
    if builder.problems:
        raise DumpError(builder.problems)
    return topology, builder.report


__all__ = ["Report", "build_topology"]
