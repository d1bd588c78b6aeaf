"""``control=ovn`` (``firewall=ovn``): the group's fanout through real ML2/OVN.

Every emulated host is an OVN chassis (:func:`labtwin.emulation.ovn_run.start_chassis`, on the
host namespace's private OVS: the own-OVS shape of :mod:`.plan`); the run's OVN central runs
beside them, and Neutron 29's own server with ML2/OVN (:mod:`labtwin.emulation.ovn_server`)
writes the NB from API calls labtwin makes as a user would: one network and subnet, the studied
group with the layout's rules, the outsider's group, and a port per layout port (its MAC and
address, bound to its host's chassis), each then plugged by labtwin as Nova's os-vif plugs it
(``iface-id`` = the Neutron port's id). Nothing of labtwin writes an OVN row.

A **join** is ``PUT /ports/<id>`` adding the group to a port that was created (and plugged)
with no group: until then Neutron keeps it in ``neutron_pg_drop`` only, so nothing reaches it,
the OVN counterpart of the dead VLAN a port waits on under ML2/OVS. Creating the port with the
group would also time Nova's plug, which is not the fanout. A **leave** is ``DELETE
/ports/<id>`` and the unplug.

Counted per change, as the model counts (:mod:`labtwin.scenarios.sg_fanout.model.ovn`):

- ``nb_rows_written``: NB rows Neutron inserted, changed or deleted (``ovsdb-client transact``
  selects before and after, row by row; ``NB_Global`` left out, it carries the sync counters);
- ``sb_rows_written``: the same in the SB, what ovn-northd wrote (``SB_Global``, ``Chassis`` and
  ``Chassis_Private`` left out);
- ``lflows_written``: logical flows added or removed (a subset of ``sb_rows_written``);
- ``openflows_written``: OpenFlow flows added or removed on every chassis's ``br-int``
  (``ovs-ofctl dump-flows``, flows compared without their cookies and counters).

The time to ready is the same poller's as under the other controls: from the API call to the
first echo reply between the port and a member on every host, both ways. The counts are read
after ``ovn-nbctl --wait=hv sync``, when every chassis has caught up.
"""

from __future__ import annotations

import collections
import json
import re
import uuid
from dataclasses import dataclass, field

from labtwin.emulation.neutron_agent import in_parallel
from labtwin.emulation.ovn_run import (
    INTEGRATION_BRIDGE,
    NB_TABLES,
    SB_TABLES,
    OvnCentral,
    start_central,
    start_chassis,
)
from labtwin.emulation.ovn_server import OvnNeutron, spawn_server
from labtwin.emulation.private_ovs import PrivateOvs, start_private_ovs
from labtwin.emulation.runner import Step

from ..spec import Layout
from .neutron_agent import OUTSIDER_GROUP
from .plan import PREFIX, Shape
from .rules import EPort

#: Each chassis's Geneve address, on br-phy inside its host namespace (never on the machine's own devices).
ENCAP = "192.168.77.{}/24"
#: The layout's addresses' subnet (spec._ip: a /14 from 10.64.0.0).
SUBNET = f"10.64.0.0/{PREFIX}"
_COOKIE = re.compile(r"cookie=0x[0-9a-f]+, ")
_STATS = re.compile(r"(duration|n_packets|n_bytes|idle_age|hard_age)=[^,]+, ")


@dataclass
class OvnCloud:
    """The run's OVN: its central, Neutron's server, each host's chassis, and Neutron's ids."""

    central: OvnCentral
    neutron: OvnNeutron
    chassis: dict[str, PrivateOvs]  # host -> the OVS its ovn-controller programs
    chassis_name: dict[str, str]  # host -> the chassis's name (its system-id and hostname)
    port_id: dict[str, str] = field(default_factory=dict)  # layout port name -> Neutron's port id
    group_id: str = ""
    subnet_id: str = ""
    network_id: str = ""
    outsider_group_id: str = ""


def bring_up(real, shape: Shape, layout: Layout, ports: dict[str, EPort]) -> OvnCloud:
    """Central, a chassis per host, Neutron's server; the network, groups and ports created and plugged."""
    central = start_central(real)
    server = spawn_server(real, central)  # imports Neutron while the chassis start
    names: dict[str, str] = {}

    def chassis(host: str) -> None:
        key = shape.host_ns[host]
        ovs = start_private_ovs(real, key, shape.own_ovs[host])
        names[host] = start_chassis(real, key, ovs, central, "eth1", ENCAP.format(layout.hosts.index(host) + 1))

    in_parallel(chassis, list(layout.hosts))
    cloud = OvnCloud(central, server.start(), dict(shape.own_ovs), names)
    _network(cloud)
    _groups(cloud, layout)
    joining = {m.name for m in layout.joins}
    for port in ports.values():
        _create_port(cloud, port, [] if port.name in joining else [_group_of(cloud, layout, port)])
    for host in layout.hosts:
        plug(real, cloud, host, [p for p in ports.values() if p.host == host])
    synced(real, cloud)
    for port in ports.values():
        wait = cloud.central.nbctl("wait-until", "Logical_Switch_Port", cloud.port_id[port.name], "up=true")
        real.runner.run(Step(wait, what=f"OVN: {port.name} claimed and up"))
    return cloud


def _network(cloud: OvnCloud) -> None:
    net = cloud.neutron.post("/networks", {"network": {"name": "sg-fanout"}})["network"]
    cloud.network_id = net["id"]
    subnet = {"network_id": net["id"], "cidr": SUBNET, "ip_version": 4, "gateway_ip": None, "enable_dhcp": False}
    cloud.subnet_id = cloud.neutron.post("/subnets", {"subnet": subnet})["subnet"]["id"]


def _groups(cloud: OvnCloud, layout: Layout) -> None:
    """The studied group with exactly the layout's rules (Neutron's own ``default`` group when it is that),
    and the outsider's group with Neutron's default rules for a new group."""
    neutron = cloud.neutron
    if layout.group == "default":
        group = neutron.get("/security-groups?name=default")["security_groups"][0]
    else:
        group = neutron.post("/security-groups", {"security_group": {"name": layout.group}})["security_group"]
    cloud.group_id = group["id"]
    wanted = [_rule_body(r, layout.group, group["id"]) for r in layout.rules]
    for rule in group["security_group_rules"]:
        body = _rule_body_of(rule)
        if body in wanted:
            wanted.remove(body)
        else:
            neutron.delete(f"/security-group-rules/{rule['id']}")
    for body in wanted:
        neutron.post("/security-group-rules", {"security_group_rule": body})
    outsider = neutron.post("/security-groups", {"security_group": {"name": OUTSIDER_GROUP}})["security_group"]
    cloud.outsider_group_id = outsider["id"]


def _rule_body(rule, group: str, group_id: str) -> dict:
    if rule.remote_group_id not in (None, group):
        raise ValueError(
            f"control=ovn creates the studied group {group!r} only; its rule references group {rule.remote_group_id!r}"
        )
    body = {
        "security_group_id": group_id,
        "direction": rule.direction,
        "ethertype": rule.ethertype,
        "protocol": None if rule.protocol == "any" else str(rule.protocol),
        "port_range_min": rule.port_range_min,
        "port_range_max": rule.port_range_max,
        "remote_ip_prefix": None if rule.remote_ip_prefix is None else str(rule.remote_ip_prefix),
        "remote_group_id": group_id if rule.remote_group_id == group else None,
    }
    return body


def _rule_body_of(rule: dict) -> dict:
    keys = ("security_group_id", "direction", "ethertype", "protocol", "port_range_min", "port_range_max")
    return {**{k: rule.get(k) for k in keys}, **{k: rule.get(k) for k in ("remote_ip_prefix", "remote_group_id")}}


def _group_of(cloud: OvnCloud, layout: Layout, port: EPort) -> str:
    return cloud.group_id if port.member else cloud.outsider_group_id


def _create_port(cloud: OvnCloud, port: EPort, groups: list[str]) -> None:
    body = {
        "network_id": cloud.network_id,
        "name": port.name,
        "mac_address": port.mac,
        "fixed_ips": [{"subnet_id": cloud.subnet_id, "ip_address": port.ip}],
        "security_groups": groups,
        "allowed_address_pairs": [{"ip_address": pair} for pair in port.pairs],
        "binding:host_id": cloud.chassis_name[port.host],
        "device_owner": "compute:nova",
        "device_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{port.name}.labtwin")),
    }
    cloud.port_id[port.name] = cloud.neutron.post("/ports", {"port": body})["port"]["id"]


def plug(real, cloud: OvnCloud, host: str, ports: list[EPort]) -> None:
    """Nova's plug (os-vif ``ovs``): each tap a port of br-int, its ``iface-id`` the Neutron port's id."""
    if not ports:
        return
    steps: list[str] = []
    for port in ports:
        steps += ["--", "--may-exist", "add-port", INTEGRATION_BRIDGE, port.tap]
        steps += ["--", "set", "Interface", port.tap, f"external_ids:iface-id={cloud.port_id[port.name]}"]
        steps += [f"external_ids:attached-mac={port.mac}", "external_ids:iface-status=active"]
    real.runner.run(Step(cloud.chassis[host].vsctl(*steps[1:]), what=f"{host}: plug its ports into br-int"))


def unplug(real, cloud: OvnCloud, port: EPort) -> None:
    step = cloud.chassis[port.host].vsctl("--if-exists", "del-port", INTEGRATION_BRIDGE, port.tap)
    real.runner.run(Step(step, what=f"{port.host}: unplug {port.name}"))


def synced(real, cloud: OvnCloud) -> None:
    """Wait until every chassis has applied everything the NB holds now (``--wait=hv``)."""
    real.runner.run(Step(cloud.central.nbctl("--wait=hv", "sync"), what="OVN: every chassis caught up"))


# --- reading what changed ------------------------------------------------------------------------


@dataclass(frozen=True)
class OvnState:
    """NB and SB rows (table -> uuid -> content) and each chassis's OpenFlow flows (host -> flow texts)."""

    nb: dict
    sb: dict
    flows: dict


def read_state(real, cloud: OvnCloud) -> OvnState:
    nb = {t: _texts(rows) for t, rows in cloud.central.nb_rows(real.runner, NB_TABLES).items()}
    sb = {t: _texts(rows) for t, rows in cloud.central.sb_rows(real.runner, SB_TABLES).items()}
    flows = {host: _flows(real, host, ovs) for host, ovs in cloud.chassis.items()}
    return OvnState(nb, sb, flows)


def _texts(rows: dict) -> dict:
    """uuid -> the row's content as comparable text."""
    return {uuid: json.dumps(row, sort_keys=True) for uuid, row in rows.items()}


def _flows(real, host: str, ovs: PrivateOvs) -> collections.Counter:
    dump = ("ovs-ofctl", "-O", "OpenFlow15", "dump-flows", "--no-names", ovs.mgmt(INTEGRATION_BRIDGE))
    text = real.runner.run(Step(dump, what=f"{host}: dump-flows of br-int")).stdout
    flows = [_STATS.sub("", _COOKIE.sub("", line.strip())) for line in text.splitlines()[1:] if line.strip()]
    if not flows:
        raise RuntimeError(f"{host}: br-int has no OpenFlow flows: ovn-controller has not programmed it")
    return collections.Counter(flows)


def rows_written(before: dict, after: dict) -> dict[str, int]:
    """Per table: rows inserted, deleted or whose content changed."""
    written = {}
    for table in before:
        b, a = before[table], after[table]
        n = len(a.keys() - b.keys()) + len(b.keys() - a.keys()) + sum(1 for u in a.keys() & b.keys() if a[u] != b[u])
        if n:
            written[table] = n
    return written


def flows_written(before: collections.Counter, after: collections.Counter) -> int:
    """OpenFlow flows added or removed (a flow whose actions changed counts twice, as OVS replaces it)."""
    return sum((after - before).values()) + sum((before - after).values())


def lflows_written(before: dict, after: dict) -> int:
    """Logical flows added or removed, by content (northd may renumber a flow's row without changing it)."""
    b = collections.Counter(before["Logical_Flow"].values())
    a = collections.Counter(after["Logical_Flow"].values())
    return sum((a - b).values()) + sum((b - a).values())


def changes(before: OvnState, after: OvnState) -> dict:
    """What one change wrote, in the summary's terms (see the module docstring)."""
    nb, sb = rows_written(before.nb, after.nb), rows_written(before.sb, after.sb)
    by_chassis = {h: flows_written(before.flows[h], after.flows[h]) for h in before.flows}
    return {
        "nb_rows_written": sum(nb.values()),
        "sb_rows_written": sum(sb.values()),
        "lflows_written": lflows_written(before.sb, after.sb),
        "openflows_written": sum(by_chassis.values()),
        "nb_tables": nb,
        "sb_tables": sb,
        "openflows_by_chassis": by_chassis,
    }
