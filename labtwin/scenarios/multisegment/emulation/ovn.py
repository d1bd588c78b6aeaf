"""``control=ovn`` for ``multisegment``: the routed network as Neutron 29's ML2/OVN builds it, in a real OVN.

The plan (:func:`plan_ovn`) is ML2/OVN's layout for any scenario (:func:`labtwin.emulation.ovn_cloud.wired_plan`:
each host a chassis namespace with a trunk onto each physnet it maps, each VM port a namespace whose tap its
chassis plugs) plus this scenario's own physical network: each rack's fabric router holding the gateways of its
segments on their VLANs, and the spine between racks (:func:`.plan.add_rack_router`, :func:`.plan.add_spine`).

Neutron's OVN driver puts every segment of a routed network on the network's one logical switch, one
``localnet`` port per segment (``provnet-<segment id>``, its VLAN as ``tag``). Once a chassis holds a port of
the network, OVN 23.03's ovn-controller patches br-int to the provider bridge for every localnet port whose
physnet the chassis maps (``controller/patch.c``), takes in each one's VLAN, and floods a broadcast out of all
of them but the one it came from (``controller/physical.c``, the flood group). A chassis with a port of the
network therefore bridges all its segments' VLANs; two such chassis on one physnet make a loop, a broadcast
storm (seen here: every VM of rack2 in ``multisegment.yaml`` received each broadcast thousands of times and
most probes failed). :func:`plan_ovn` refuses such a cloud, naming the segments, as the Linux bridge plan
refuses its own loops; ``topologies/multisegment-ovn.yaml`` keeps rack2 without the loop.

Unicast to a port on another chassis leaves by one localnet port only, the first the chassis met in the SB
(``controller/binding.c``, ``update_ld_localnet_port``, logs the others as "skipping the new port"), so which
one is drawn per run: :func:`unicast_localnets` reads it from each chassis's OpenFlow, and the summary's
``ovn_localnet`` gives it to the model (``Scenario.drawn``).

What is measured is the same as under ``control=labtwin``: packets between the VMs of a rack and across
racks, seen on each VM's ``eth0``. The L2 domains come from the SB (which chassis claimed each VM's port) and
each chassis's own OVS (the localnet ports patched into its br-int): a host's logical switch joins its VMs'
segments and its patched localnets'.
"""

from __future__ import annotations

import re

from labtwin.description import Cloud
from labtwin.emulation import ovn_cloud
from labtwin.emulation.ovn_run import INTEGRATION_BRIDGE
from labtwin.emulation.plan import PlanError
from labtwin.emulation.runner import Step

from .plan import (
    MAX_NAMESPACES,
    SegmentPlan,
    Vm,
    add_rack_router,
    add_spine,
    check_loops,
    port_segment,
    routed_ports,
)


def plan_ovn(cloud: Cloud, run_id: str) -> SegmentPlan:
    """The realisation of *cloud* under ML2/OVN (see the module docstring); Neutron admits the ports."""
    the_plan, wiring = ovn_cloud.wired_plan(cloud, run_id, physical_router=False)
    out = SegmentPlan(the_plan)
    out.host_ns = {h.name: f"host:{i}" for i, h in enumerate(cloud.hosts)}
    for port in routed_ports(cloud):
        segment = port_segment(cloud, port)
        assert segment is not None  # routed_ports keeps only ports on a segment's subnet
        fixed = next(f for f in port.fixed_ips if cloud.subnet[f.subnet_id].segment_id == segment.name)
        subnet = cloud.subnet[fixed.subnet_id]
        endpoint = the_plan.endpoints[port.name]
        rack = cloud.host[str(port.host)].rack or str(port.host)
        gateway = str(subnet.gateway_ip) if subnet.gateway_ip is not None else None
        out.vms.append(
            Vm(port.name, str(port.host), rack, segment.name, str(fixed.ip_address), endpoint.mac, endpoint.ns, gateway)
        )
    racks = sorted({vm.rack for vm in out.vms})
    for rack in racks:
        add_rack_router(cloud, out, wiring, rack)
    add_spine(cloud, out, racks)
    check_loops(expected_patches(cloud, out.vms))
    if len(the_plan.namespaces) > MAX_NAMESPACES:
        raise PlanError(f"{len(the_plan.namespaces)} namespaces: more than {MAX_NAMESPACES}; emulate fewer racks/hosts")
    return out


def expected_patches(cloud: Cloud, vms: list[Vm]) -> dict[str, dict[str, list[str]]]:
    """Host -> logical switch -> the segments whose VLANs its chassis will bridge: for each network with a VM
    on the host, every segment of it on a physnet the host maps (one localnet port each, all patched, all
    flooded into each other: see the module docstring). Two hosts bridging the same segments make a loop,
    which :func:`~.plan.check_loops` refuses (a broadcast storm, not a measurement)."""
    out: dict[str, dict[str, list[str]]] = {}
    for vm in vms:
        network = cloud.segment[vm.segment].network_id
        mapped = cloud.host[vm.host].bridge_mappings
        on_host = [s.name for s in cloud.segments if s.network_id == network and s.physical_network in mapped]
        out.setdefault(vm.host, {})[f"neutron-{cloud.network[network].id}"] = on_host
    return out


def patched_localnets(real, chassis) -> dict[str, list[str]]:
    """Host -> the localnet ports its ovn-controller patched into br-int (``patch-br-int-to-<port>``), read
    from each chassis's own OVS."""
    out = {}
    for host, ovs in chassis.chassis.items():
        ports = real.runner.run(Step(ovs.vsctl("list-ports", INTEGRATION_BRIDGE), what=f"{host}: br-int's ports"))
        out[host] = sorted(p[len(_PATCH) :] for p in ports.stdout.split() if p.startswith(_PATCH))
    return out


_PATCH = f"patch-{INTEGRATION_BRIDGE}-to-"


def localnet_segments(cloud: Cloud, sb: dict) -> dict[str, str]:
    """Localnet port name -> the cloud's segment it carries, matched by physnet and VLAN from the SB rows."""
    by_wire = {(s.physical_network, s.segmentation_id): s.name for s in cloud.segments if s.physical_network}
    out = {}
    for row in sb["Port_Binding"].values():
        if row.get("type") != "localnet":
            continue
        options = dict(row["options"][1]) if isinstance(row.get("options"), list) else {}
        tag = row.get("tag")
        vlan = tag if isinstance(tag, int) else None
        segment = by_wire.get((options.get("network_name"), vlan))
        if segment is None:
            raise RuntimeError(
                f"OVN localnet port {row['logical_port']}: no segment of the cloud on "
                f"{options.get('network_name')!r} VLAN {vlan}"
            )
        out[row["logical_port"]] = segment
    return out


def unicast_localnets(real, chassis, cloud: Cloud, sb: dict, carried: dict[str, str], hosts: set[str]) -> dict:
    """(host, network) -> the segment whose localnet port the host's chassis sends unicast to other chassis by,
    for each host in *hosts*: read from its br-int, table 40 (``OFTABLE_LOCAL_OUTPUT``), where ovn-controller
    switches each remote port's output to its datapath's one localnet port (OVN 23.03 ``controller/physical.c``,
    "Remote port connected by localnet port"). The log's "skipping the new port" lines are not enough: a later
    recompute may pick another without logging it (seen here: a twin whose log named r4-s1 while unicast left by
    r4-s2). Two for one network is an error; none (no remote port to send to) leaves the pair out."""
    dp_key = {uuid: row["tunnel_key"] for uuid, row in sb["Datapath_Binding"].items()}
    localnet_of = {
        (dp_key[row["datapath"][1]], row["tunnel_key"]): row["logical_port"]
        for row in sb["Port_Binding"].values()
        if row.get("type") == "localnet"
    }
    out: dict[tuple[str, str], str] = {}
    for host in sorted(hosts):
        flows = real.runner.run(
            Step(
                ("ovs-ofctl", "dump-flows", chassis.chassis[host].mgmt(INTEGRATION_BRIDGE), "table=40"),
                what=f"{host}: the localnet port its unicast leaves by",
            )
        ).stdout
        for datapath, port in _LOCALNET_SWITCH.findall(flows):
            name = localnet_of.get((int(datapath, 16), int(port, 16)))
            if name is None:
                continue  # a switch to a port that is not a localnet one (none expected in table 40)
            segment = carried[name]
            key = (host, cloud.segment[segment].network_id)
            if out.setdefault(key, segment) != segment:
                raise RuntimeError(f"{host}: unicast of network {key[1]!r} leaves by {out[key]} and {segment}")
    return out


#: A table-40 flow switching a remote port's output to the localnet port: its datapath and the localnet's key.
_LOCALNET_SWITCH = re.compile(
    r"priority=100,.*?metadata=(0x[0-9a-f]+).*?actions=(?:load:|set_field:)(0x[0-9a-f]+)->(?:NXM_NX_REG15\[\]|reg15)"
)


def claimed_by(sb: dict, made_ports: list[dict]) -> dict[str, str]:
    """Port name -> the host (the ``hostname`` Neutron binds to) whose chassis claimed its Port_Binding
    (*made_ports*: Neutron's ports, :attr:`~labtwin.emulation.ovn_cloud.OvnCloud.neutron`)."""
    chassis = {uuid: row["hostname"] for uuid, row in sb["Chassis"].items()}
    by_id = {p["id"]: p["name"] for p in made_ports}
    out = {}
    for row in sb["Port_Binding"].values():
        value = row.get("chassis")
        if row["logical_port"] in by_id and isinstance(value, list) and value[0] == "uuid":
            out[by_id[row["logical_port"]]] = chassis.get(value[1], "")
    return out


def measured_domains(
    cloud: Cloud, sp: SegmentPlan, claimed: dict[str, str], patched: dict[str, list[str]], carried: dict[str, str]
) -> dict[str, list[dict]]:
    """Per host, one row per logical switch (network) with the segments it joins there: those of the VMs its
    chassis claimed and those of the localnet ports it patched (*carried*: localnet port -> segment); the
    model's shape: device, segments, leak."""
    out: dict[str, list[dict]] = {}
    for host in sorted({vm.host for vm in sp.vms}):
        joined: dict[str, set[str]] = {}
        for vm in sp.vms:
            if claimed.get(vm.port) == host:
                joined.setdefault(cloud.segment[vm.segment].network_id, set()).add(vm.segment)
        for port in patched.get(host, []):
            network = cloud.segment[carried[port]].network_id
            if network in joined:
                joined[network].add(carried[port])
        out[host] = [
            {"device": f"neutron-{cloud.network[network].id}", "segments": sorted(segs), "leak": len(segs) > 1}
            for network, segs in sorted(joined.items())
        ]
    return out


def localnet_knob(bound: dict[tuple[str, str], str]) -> str:
    """The ``ovn_localnet`` knob's value for *bound*: host=segment, sorted."""
    return ",".join(f"{host}={segment}" for (host, _), segment in sorted(bound.items()))
