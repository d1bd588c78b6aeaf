"""What Neutron's server tells one agent, built from plain data: the objects, pulled and pushed as over RPC.

Runs inside a worker (imports Neutron). An ML2/OVS agent today keeps a
``RemoteResourceCache`` of Port, SecurityGroup and SecurityGroupRule objects:
it *pulls* what it has not seen (``ResourcesPullRpcApi.bulk_pull``) and the
server *pushes* every change (``resources_rpc`` push notifications). Its
security-group code reads only that cache, through Neutron's
``SecurityGroupServerAPIShim`` (which answers ``security_group_info_for_devices``
from it and turns a Port update or delete into ``security_groups_member_updated``).

Here the server is :class:`Server`: the current objects, built from the dicts
labtwin sends (:func:`port_object`, :func:`group_objects`); every object an
agent receives goes through :func:`over_the_wire` (Neutron's own
``obj_to_primitive`` and ``clean_obj_from_primitive``, what RPC does), so the
agent sees objects exactly as it would from a real server: no context, no
database. What is not Neutron's here is only the transport.

MACs are ``AuthenticEUI`` as Neutron's database layer loads them, so they keep the text they were written
with (``fa:16:3e:...``): a bare ``netaddr.EUI`` would travel as ``FA-16-3E-...``, which the OVS firewall
writes into ``dl_src`` of an allowed address pair's flows and ovs-ofctl refuses.

Simplifications, stated: ports have no binding profile; every port is
``compute:nova`` on one network and subnet (the hybrid driver reads neither);
a group's ``stateful`` is True.
"""

from __future__ import annotations

from typing import Any

import netaddr
from neutron.objects import base as obj_base
from neutron.objects import ports as port_obj
from neutron.objects import securitygroup as sg_obj
from neutron.objects.port.extensions.allowedaddresspairs import AllowedAddressPair
from neutron.objects.port.extensions.port_security import PortSecurity
from neutron_lib.utils.net import AuthenticEUI

#: Ids Neutron needs where labtwin's layout has no object: the network, subnet and instance of every port.
NETWORK_ID = "0f2b8c58-4e6c-5d7b-9d1e-4c6f0a1b2c3d"
SUBNET_ID = "1a2b3c4d-5e6f-5a7b-8c9d-0e1f2a3b4c5d"
DEVICE_ID = "2b3c4d5e-6f70-5b8c-9d0e-1f2a3b4c5d6e"
PROJECT = "labtwin"


def port_object(port: dict) -> Any:
    """A Port OVO: ``{"id", "mac", "ips": [...], "host", "security_groups": [...]}`` and optionally
    ``"port_security"`` (default true), ``"allowed_address_pairs": [{"ip_address", "mac_address"}]``,
    ``"revision"``."""
    pid = port["id"]
    return port_obj.Port(
        id=pid,
        project_id=PROJECT,
        network_id=NETWORK_ID,
        mac_address=AuthenticEUI(port["mac"]),
        admin_state_up=True,
        status="ACTIVE",
        device_id=DEVICE_ID,
        device_owner="compute:nova",
        fixed_ips=[
            port_obj.IPAllocation(
                port_id=pid, subnet_id=SUBNET_ID, network_id=NETWORK_ID, ip_address=netaddr.IPAddress(ip)
            )
            for ip in port["ips"]
        ],
        security_group_ids=set(port["security_groups"]),
        allowed_address_pairs=[
            AllowedAddressPair(
                port_id=pid,
                ip_address=netaddr.IPNetwork(pair["ip_address"]),
                mac_address=AuthenticEUI(pair.get("mac_address") or port["mac"]),
            )
            for pair in port.get("allowed_address_pairs", ())
        ],
        revision_number=port.get("revision", 1),
        security=PortSecurity(id=pid, port_security_enabled=bool(port.get("port_security", True))),
        binding_levels=[],
        bindings=[port_obj.PortBinding(port_id=pid, host=port["host"], vif_type="ovs", vnic_type="normal")],
    )


def group_objects(group: dict) -> tuple[Any, list[Any]]:
    """A SecurityGroup OVO and its rules: ``{"id", "name", "rules": [{"id", "direction", ...}]}``."""
    rules = [
        sg_obj.SecurityGroupRule(
            id=rule["id"],
            security_group_id=group["id"],
            project_id=PROJECT,
            direction=rule["direction"],
            ethertype=rule["ethertype"],
            protocol=rule.get("protocol"),
            port_range_min=rule.get("port_range_min"),
            port_range_max=rule.get("port_range_max"),
            remote_ip_prefix=netaddr.IPNetwork(rule["remote_ip_prefix"]) if rule.get("remote_ip_prefix") else None,
            remote_group_id=rule.get("remote_group_id"),
            remote_address_group_id=None,
            revision_number=1,
        )
        for rule in group["rules"]
    ]
    sg = sg_obj.SecurityGroup(
        id=group["id"],
        name=group["name"],
        project_id=PROJECT,
        stateful=True,
        shared=False,
        is_default=group["name"] == "default",
        revision_number=1,
        rules=rules,
    )
    return sg, rules


def over_the_wire(obj: Any) -> Any:
    """*obj* as an agent receives it over RPC: serialised and rebuilt by Neutron's own object code."""
    return obj_base.NeutronObject.clean_obj_from_primitive(obj.obj_to_primitive())


class Server:
    """The objects as the server holds them; :meth:`bulk_pull` answers an agent's pull with copies."""

    def __init__(self, groups: list[dict], ports: list[dict]) -> None:
        self.store: dict[str, dict[str, Any]] = {"Port": {}, "SecurityGroup": {}, "SecurityGroupRule": {}}
        for group in groups:
            sg, rules = group_objects(group)
            self.store["SecurityGroup"][sg.id] = sg
            self.store["SecurityGroupRule"].update({r.id: r for r in rules})
        for port in ports:
            self.put_port(port)

    def put_port(self, port: dict) -> Any:
        obj = port_object(port)
        self.store["Port"][obj.id] = obj
        return over_the_wire(obj)

    def delete_port(self, port_id: str) -> None:
        del self.store["Port"][port_id]

    # the ResourcesPullRpcApi interface the agent's cache calls
    client = None

    def bulk_pull(self, context, resource_type: str, filter_kwargs=None) -> list:
        """The objects of *resource_type* matching every filter (a list value matches by membership)."""
        return [
            over_the_wire(obj)
            for obj in self.store.get(resource_type, {}).values()
            if all(_matches(getattr(obj, key), values) for key, values in (filter_kwargs or {}).items())
        ]


def _matches(attr: Any, values) -> bool:
    if isinstance(attr, (list, tuple, set, frozenset)):
        return any(v in attr for v in values)
    return attr in values
