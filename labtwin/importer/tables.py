"""The ``openstack ... -f json`` tables: recognised by their columns, read as the API's fields.

python-openstackclient prints a list command with ``-f json`` as a JSON list of rows whose keys are the
column titles (10.2.1, read from its source: ``openstackclient/network/v2/*.py``,
``compute/v2/hypervisor.py``). Each table below is recognised by the titles it always has, and its columns
are read back into the API's field names, so the rest of the import does not know where a row came from.

The tables carry less than the API (what each lacks is said in the report, per file):

- ``port list --long`` has no binding host (ports are imported unbound) and no network (taken from the
  subnet of the port's first fixed IP);
- ``network list --long`` has the network type but neither physical network nor segmentation id (a VLAN or
  flat network then needs ``network segment list --long``);
- ``network agent list`` has no configuration: no bridge mappings, no L3 agent mode (a host with an L3 or
  DHCP agent is taken as a network node);
- ``security group rule list`` writes a port range as ``22:22`` or ``type=8:code=0`` and fills an empty
  remote prefix with ``0.0.0.0/0`` (``::/0``), which means the same thing;
- ``router list --long`` has ``Distributed`` and ``HA`` only for an admin; ``router show`` has the
  interfaces (``interfaces_info``).
"""

from __future__ import annotations

import re
from typing import Any, Callable, Optional

Row = dict[str, Any]


def _port_range(text: str) -> tuple[Optional[int], Optional[int]]:
    """``22:22`` -> (22, 22); ``type=3:code=1`` -> (3, 1); ``type=8`` -> (8, None); ``""`` -> (None, None)."""
    if not text:
        return None, None
    icmp = re.fullmatch(r"type=(\d+)(?::code=(\d+))?", text)
    if icmp:
        return int(icmp.group(1)), int(icmp.group(2)) if icmp.group(2) is not None else None
    low, _, high = text.partition(":")
    return int(low), int(high or low)


def _rule(row: Row) -> Row:
    low, high = _port_range(str(row.get("Port Range") or ""))
    remote_group = row.get("Remote Security Group")
    prefix = row.get("IP Range")
    any_address = prefix in ("0.0.0.0/0", "::/0")  # the table fills an empty prefix with these
    return {
        "id": row["ID"],
        "security_group_id": row.get("Security Group"),
        "direction": row["Direction"],
        "ethertype": row.get("Ethertype"),
        "protocol": row.get("IP Protocol"),
        "port_range_min": low,
        "port_range_max": high,
        "remote_ip_prefix": None if remote_group or any_address else prefix,
        "remote_group_id": remote_group,
        "remote_address_group_id": row.get("Remote Address Group"),
    }


#: Tables whose columns are the API's fields one for one: API field -> column title.
NETWORK = {
    "id": "ID",
    "name": "Name",
    "shared": "Shared",
    "router:external": "Router Type",
    "provider:network_type": "Network Type",
}
SEGMENT = {
    "id": "ID",
    "name": "Name",
    "network_id": "Network",
    "network_type": "Network Type",
    "segmentation_id": "Segment",
    "physical_network": "Physical Network",
}
SUBNET = {
    "id": "ID",
    "name": "Name",
    "network_id": "Network",
    "cidr": "Subnet",
    "ip_version": "IP Version",
    "gateway_ip": "Gateway",
    "allocation_pools": "Allocation Pools",
    "enable_dhcp": "DHCP",
    "dns_nameservers": "Name Servers",
    "host_routes": "Host Routes",
    "service_types": "Service Types",
}
GROUP = {"id": "ID", "name": "Name", "description": "Description"}
FLOATINGIP = {
    "id": "ID",
    "floating_ip_address": "Floating IP Address",
    "port_id": "Port",
    "floating_network_id": "Floating Network",
}
AGENT = {"id": "ID", "agent_type": "Agent Type", "host": "Host"}
HYPERVISOR = {"id": "ID", "hypervisor_hostname": "Hypervisor Hostname"}  # fmt: skip


def columns(mapping: dict[str, str], **fixed: Any) -> Callable[[Row], Row]:
    """A reader of a table whose columns are API fields (*mapping*), plus *fixed* fields; a column a row lacks
    reads as None (the titles a table always has are checked before, :func:`missing_titles`)."""

    def read(row: Row) -> Row:
        return {field: row.get(title) for field, title in mapping.items()} | fixed

    return read


def _port(row: Row) -> Row:
    subports = row.get("Trunk subports")
    return {
        "id": row["ID"],
        "name": row.get("Name"),
        "mac_address": row.get("MAC Address"),
        "fixed_ips": row.get("Fixed IP Addresses") or [],
        "security_groups": row.get("Security Groups") or [],
        "device_owner": row.get("Device Owner"),
        "trunk_details": {"sub_ports": subports} if subports else None,
    }


def _router(row: Row) -> Row:
    out = {
        "id": row["ID"],
        "name": row.get("Name"),
        "external_gateway_info": row.get("External gateway info"),
        "routes": row.get("Routes"),
    }
    out.update({key: row[title] for key, title in (("distributed", "Distributed"), ("ha", "HA")) if title in row})
    return out


#: (command, kind, the titles it always has, row -> the API's fields, what the table lacks), most specific first
TABLES: list[tuple[str, str, frozenset[str], Callable[[Row], Row], str]] = [
    ("security group rule list", "security_group_rule",
     frozenset({"ID", "IP Protocol", "Ethertype", "IP Range", "Port Range", "Direction"}), _rule,
     "a rule's group comes from its 'Security Group' column: list rules without naming a group"),
    ("network segment list", "segment", frozenset({"ID", "Network", "Network Type", "Segment"}), columns(SEGMENT),
     "the physical network is in --long only"),
    ("subnet list --long", "subnet", frozenset({"ID", "Name", "Network", "Subnet"}), columns(SUBNET),
     "no segment (a routed network's subnets are imported unbound to theirs) and no IPv6 address modes "
     "(GET /v2.0/subnets has both)"),
    ("port list --long", "port", frozenset({"ID", "Name", "MAC Address", "Fixed IP Addresses"}), _port,
     "no binding host: ports imported unbound (GET /v2.0/ports or `port show` has binding:host_id); "
     "no network: taken from the subnet of the first fixed IP"),
    ("network list --long", "network", frozenset({"ID", "Name", "Subnets", "Router Type"}), columns(NETWORK),
     "no physical network or segmentation id: a VLAN or flat network needs `network segment list --long`"),
    ("router list --long", "router", frozenset({"ID", "Name", "Status", "State", "Project"}), _router,
     "Distributed and HA only for an admin; no interfaces (`router show` has interfaces_info)"),
    ("floating ip list --long", "floatingip", frozenset({"ID", "Floating IP Address", "Port", "Floating Network"}),
     columns(FLOATINGIP), ""),
    ("network agent list --long", "agent", frozenset({"ID", "Agent Type", "Host", "Alive"}),
     columns(AGENT, configurations={}),
     "no configuration: no bridge mappings, no L3 agent mode (a host with an L3 or DHCP agent is a network node)"),
    ("hypervisor list", "hypervisor", frozenset({"ID", "Hypervisor Hostname", "Hypervisor Type"}),
     columns(HYPERVISOR), ""),
    ("security group list", "security_group", frozenset({"ID", "Name", "Description", "Project"}), columns(GROUP),
     "no rules: add `security group rule list -f json`"),
]  # fmt: skip


def table_of(rows: list) -> Optional[tuple[str, str, frozenset[str], Callable[[Row], Row], str]]:
    """(command, kind, titles each row has, reader, what it lacks) of an ``openstack ... -f json`` table (by its
    first row's titles), or None (not one of those)."""
    if not rows or not all(isinstance(r, dict) for r in rows):
        return None
    titles = set(rows[0])
    for command, kind, required, reader, lacks in TABLES:
        if required <= titles:
            return command, kind, required, reader, lacks
    return None


def router_show(data: dict) -> Optional[Row]:
    """The fields of ``openstack router show -f json`` (a router's own keys, no ``router`` wrapper), or None."""
    if "id" in data and "interfaces_info" in data:
        return dict(data)
    return None


__all__ = ["TABLES", "router_show", "table_of"]
