"""``control=ovn``: the cloud as ML2/OVN builds it, real OVN carrying the probes.

The plan (:func:`plan_ovn`): every host a namespace with an underlay device (``ul0``, on the run's
Geneve underlay fabric) and one trunk device per physical network (``eth<N>``, on that physnet's
fabric, which also holds the physical network's router when the cloud has one); every VM port a
namespace as under the other controls, its tap left in its host's namespace. No Neutron router is
realised by labtwin: OVN routes.

The bring-up (:func:`bring_up`): the run's OVN central; every host an OVN chassis on its private
OVS, named for Neutron by the host's name, with a provider bridge per physnet
(``ovn-bridge-mappings``) and, on network nodes, ``enable-chassis-as-gw`` (where Neutron schedules
gateway ports); then Neutron 29's own server with ML2/OVN (:mod:`labtwin.emulation.ovn_server`)
creates the whole cloud with the API oracle's loader, each port with the realisation's MAC; labtwin
plugs every tap into its chassis's ``br-int`` with the Neutron port's id, as os-vif does, and waits
until every port is up. The probes then run unchanged.

Simplifications, stated: segments of type geneve or vxlan are refused, as under the other controls;
no DHCP runs (addresses are static in the VMs, OVN's native DHCP options are written by Neutron but
never asked).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from labtwin.description import Cloud
from labtwin.description.neutron_ports import METADATA_OWNER
from labtwin.emulation import naming
from labtwin.emulation.ledger import ROOT
from labtwin.emulation.neutron_agent import in_parallel
from labtwin.emulation.ovn_run import (
    INTEGRATION_BRIDGE,
    NB_TABLES,
    OvnCentral,
    ProviderBridge,
    start_central,
    start_chassis,
)
from labtwin.emulation.ovn_server import spawn_server
from labtwin.emulation.plan import OvsBridge, OvsPort, Plan, Veth
from labtwin.emulation.private_ovs import PrivateOvs, start_private_ovs
from labtwin.emulation.runner import Step
from labtwin.emulation.wiring import Wiring, add_physical_router, add_vm
from labtwin.oracle.run import default_rule_templates
from labtwin.records import Recorder

UNDERLAY_DEVICE = "ul0"
#: Each chassis's Geneve address, on br-phy inside its host namespace (never on the machine's own devices).
ENCAP = "192.168.77.{}/24"


def plan_ovn(cloud: Cloud, run_id: str) -> Plan:
    """The realisation of *cloud* for real OVN (see the module docstring)."""
    return wired_plan(cloud, run_id)[0]


def wired_plan(cloud: Cloud, run_id: str, physical_router: bool = True) -> tuple[Plan, Wiring]:
    """:func:`plan_ovn` and its :class:`Wiring`, for a scenario that adds its own namespaces on the physnets.
    *physical_router*: realise the physical network's router (False: the scenario puts its own there, such as
    dvr's outside world, which holds the external subnets' gateways itself)."""
    result = Plan(naming.check_run_id(run_id))
    hosts = {h.name: f"host:{i}" for i, h in enumerate(cloud.hosts)}
    underlay = naming.node_name(run_id, "g", 0)
    result.ovs_bridges.append(OvsBridge(underlay, "fabric"))
    wiring = Wiring(cloud, result, hosts)
    for i, host in enumerate(cloud.hosts):
        key = hosts[host.name]
        result.add_ns(key, "host", host.name).ip_batch.append("link set lo up")
        far = naming.node_name(run_id, "v", i)
        result.veths.append(Veth(key, UNDERLAY_DEVICE, ROOT, far))
        result.ovs_ports.append(OvsPort(underlay, far))
        for physnet in host.bridge_mappings:
            wiring.trunk(key, physnet_device(cloud, physnet), physnet)
    for j, port in enumerate(p for p in cloud.ports if p.host and p.ips):
        add_vm(cloud, result, port, j, hosts[port.host])
        result.config[hosts[port.host]].ip_batch.append(f"link set {naming.tap_name(port.id)} up")
    if physical_router:
        add_physical_router(cloud, result, wiring)
    return result, wiring


def physnet_device(cloud: Cloud, physnet: str) -> str:
    return naming.physnet_interface([p.name for p in cloud.physnets].index(physnet))


def provider_bridge(cloud: Cloud, physnet: str) -> ProviderBridge:
    index = [p.name for p in cloud.physnets].index(physnet)
    return ProviderBridge(physnet, f"br-p{index}", physnet_device(cloud, physnet))


@dataclass(frozen=True)
class OvnCloud:
    """A run's OVN: its central, and each host's OVS (whose run directory holds its ovn-controller's log)."""

    central: OvnCentral
    chassis: dict[str, PrivateOvs]
    #: What Neutron made: every port (router-owned ones too), floating IP and router, as its API holds them.
    neutron: dict = field(default_factory=dict)


def bring_up(real, cloud: Cloud, recorder: Recorder, t0: float, options: Optional[dict] = None) -> OvnCloud:
    """Central, a chassis per host, Neutron's server with the cloud created in it; every port plugged and up.
    Neutron's server is stopped once the cloud is in OVN. *options*: Neutron's ``[ovn]`` options to set; the
    cloud's own ``ovn_metadata_enabled`` is one (with it, Neutron makes each network's metadata port, whose
    addresses the loader also took: ``labtwin.description.neutron_ports``)."""
    central = start_central(real)
    server = spawn_server(real, central)  # imports Neutron while the chassis start
    ovs_of = {h.name: PrivateOvs.for_node(h.name, real.plan.ns(f"host:{i}").node) for i, h in enumerate(cloud.hosts)}

    def chassis(index: int) -> None:
        host = cloud.hosts[index]
        key = f"host:{index}"
        ovs = start_private_ovs(real, key, ovs_of[host.name])
        providers = tuple(provider_bridge(cloud, p) for p in host.bridge_mappings)
        gateway = host.role == "network"
        start_chassis(real, key, ovs, central, UNDERLAY_DEVICE, ENCAP.format(index + 1), host.name, providers, gateway)

    in_parallel(chassis, range(len(cloud.hosts)))
    start = time.perf_counter()
    options = {"ovn_metadata_enabled": cloud.ovn_metadata_enabled, **(options or {})}  # as the file says
    neutron = server.start(tuple(p.name for p in cloud.physnets), options, default_rule_templates(cloud))
    macs = {e.port: e.mac for e in real.plan.endpoints.values()}
    ports = neutron.load(cloud, macs)
    recorder.operation("neutron_load", "neutron-server", start - t0, time.perf_counter() - start, len(ports))
    _check_addresses(real.plan, ports)
    _check_metadata_ports(cloud, neutron.made)
    for host in cloud.hosts:
        _plug(real, cloud, ovs_of[host.name], host.name, ports)
    real.runner.run(Step(central.nbctl("--wait=hv", "sync"), what="OVN: every chassis caught up"))
    for name in real.plan.endpoints:
        wait = central.nbctl("wait-until", "Logical_Switch_Port", ports[name]["id"], "up=true")
        real.runner.run(Step(wait, what=f"OVN: {name} claimed and up"))
    if (options or {}).get("enable_distributed_floating_ip"):
        _floating_ips_after_ports_up(neutron)
        real.runner.run(Step(central.nbctl("--wait=hv", "sync"), what="OVN: every chassis has the floating IPs"))
    neutron.stop()
    return OvnCloud(central, ovs_of, neutron.made)


def _floating_ips_after_ports_up(neutron) -> None:
    """Each floating IP updated (its port unchanged) once its port is up. Neutron's OVN driver writes a
    distributed floating IP's ``external_mac`` only for a port that is up (``ovn_client._create_or_update_
    floatingip``), and when the NB later says a port is up its event handler rewrites the NAT row
    (``set_port_status_up``). This run's server drops those events (why: :func:`labtwin.emulation.ovn_server.
    _private_temporary_files`): updating the floating IP has the same code write the row a running server
    would. Stated simplification."""
    for fip in neutron.get("/floatingips")["floatingips"]:
        if fip["port_id"]:
            neutron.put(f"/floatingips/{fip['id']}", {"floatingip": {"port_id": fip["port_id"]}})


def save_nb(real, ovn: OvnCloud, out: Path) -> dict[str, int]:
    """What Neutron wrote into OVN for the cloud, every row of its NB tables, saved as *out*; rows per table."""
    rows = ovn.central.nb_rows(real.runner, NB_TABLES)
    out.write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n")
    return {table: len(found) for table, found in rows.items() if found}


#: What ovn-controller logs when it skips a second localnet port of one datapath (OVN controller/binding.c).
_SKIPPED = re.compile(r"localnet port '[^']+' already set for datapath '(\d+)', skipping the new port '([^']+)'")


def localnet_skips(ovs_of: dict[str, PrivateOvs]) -> dict[str, list[str]]:
    """Host -> the localnet ports its ovn-controller skipped (a datapath already had one), read from its log."""
    skips: dict[str, list[str]] = {}
    for host, ovs in ovs_of.items():
        path = os.path.join(ovs.rundir, "ovn-controller.log")
        try:
            with open(path) as log:
                found = {m.group(2) for m in _SKIPPED.finditer(log.read())}
        except OSError as exc:
            raise RuntimeError(f"{host}: cannot read its ovn-controller log {path}: {exc}") from None
        if found:
            skips[host] = sorted(found)
    return skips


def _check_addresses(the_plan: Plan, ports: dict) -> None:
    """Neutron must have given each realised port the address its VM holds (fail loud, never probe a lie)."""
    for name, endpoint in the_plan.endpoints.items():
        given = sorted(ports[name]["ips"]) if name in ports else None
        held = sorted(str(ip) for ip in endpoint.ips)
        if given != held or ports[name]["mac"] != endpoint.mac:
            raise RuntimeError(
                f"port {name}: Neutron holds {given} / {ports.get(name, {}).get('mac')}, its VM {held} / "
                f"{endpoint.mac}: the emulation would probe addresses Neutron does not know"
            )


def _check_metadata_ports(cloud: Cloud, made: dict) -> None:
    """Neutron must have made the metadata ports the loader made (``ovn_metadata_enabled``), an address on the
    same subnets: the addresses the loader gave every other port assume them (fail loud)."""
    loader = Counter(f.subnet_id for p in cloud.network_ports if p.device_owner == METADATA_OWNER for f in p.fixed_ips)
    neutron = Counter(
        f["subnet"] for p in made.get("ports", []) if p["device_owner"] == METADATA_OWNER for f in p["fixed_ips"]
    )
    if loader != neutron:
        raise RuntimeError(
            f"metadata ports: the loader gave addresses on {dict(loader) or 'no subnet'}, Neutron on "
            f"{dict(neutron) or 'no subnet'} (ovn_metadata_enabled={cloud.ovn_metadata_enabled})"
        )


def _plug(real, cloud: Cloud, ovs: PrivateOvs, host: str, ports: dict) -> None:
    """Nova's plug (os-vif ``ovs``) of every realised port on *host*: its tap on br-int, ``iface-id`` its id."""
    steps: list[str] = []
    for name, endpoint in real.plan.endpoints.items():
        port = cloud.port[name]
        if port.host != host:
            continue
        tap = naming.tap_name(port.id)
        steps += ["--", "--may-exist", "add-port", INTEGRATION_BRIDGE, tap]
        steps += ["--", "set", "Interface", tap, f"external_ids:iface-id={ports[name]['id']}"]
        steps += [f"external_ids:attached-mac={endpoint.mac}", "external_ids:iface-status=active"]
    if steps:
        real.runner.run(Step(ovs.vsctl(*steps[1:]), what=f"{host}: plug its ports into br-int"))
