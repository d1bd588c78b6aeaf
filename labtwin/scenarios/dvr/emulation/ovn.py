"""The ``dvr`` scenario under ``control=ovn``: Neutron's ML2/OVN builds the router in a real OVN; scapy probes it.

Every host is an OVN chassis (network nodes gateway chassis, as Neutron deployments mark them), every
VM port a namespace plugged as os-vif plugs it, and Neutron 29's own server with ML2/OVN and the
``ovn-router`` plugin creates the topology through its API (:mod:`labtwin.emulation.ovn_cloud`),
with ``enable_distributed_floating_ip`` as the ``ovn_distributed_fip`` knob says. Nothing of labtwin
writes a logical router, a NAT row or a flow. The outside world is one namespace on the external
network's physical network holding its subnets' gateway addresses (the router's default routes
point there), with a route to each IPv6 tenant subnet via the router's gateway address (IPv6 is
routed, not NATed).

The probes are the labtwin control's (:mod:`.probe_worker`): gratuitous ARPs from every VM and the
outside world first, one probe per class, then the VIP's failover by hand (keepalived's part: the
address moves, the new master sends a gratuitous ARP; OVN binds the VIP's ``virtual`` port to the
chassis that sent it -- how long that took is ``vip_rebind_s``). What each probe did is read from
captures on every tap, every chassis's underlay and uplink, and the outside world
(:mod:`.ovn_observe`: Geneve headers name where a tunnelled network's packet was routed; a VLAN or flat tenant
network's router port resides on the gateway chassis, and its tagged frames on the uplinks show it routed
there); DHCP is answered by ovn-controller itself, seen as its packet-in counter rising on the VM's
chassis while the request was out.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Optional

from labtwin.description import Cloud
from labtwin.emulation import captures as cap
from labtwin.emulation import naming
from labtwin.emulation.naming import new_run_id
from labtwin.emulation.ovn_cloud import ENCAP, UNDERLAY_DEVICE, OvnCloud, bring_up, physnet_device, save_nb, wired_plan
from labtwin.emulation.plan import PlanError
from labtwin.emulation.realise import Realisation
from labtwin.emulation.runner import Step
from labtwin.records import Recorder, Run

from .. import spec as classes
from ..knobs import DvrDesign
from ..neutron_names import mac_of
from ..spec import EXTERNAL
from . import observe
from .ovn_failover import measure_gateway_failover
from .ovn_observe import GENEVE_PORT, SB_READ, Hops, LogicalMap, Walker, events_of, logical_map, tunnel_sightings
from .ovn_outside import (
    OUTSIDE,
    add_outside,
    external_segment,
    follow_neutron_gateways,
    gateway_port,
    outside_addresses,
    routes_outside,
)
from .plan import CapturePoint
from .probing import crosses_network_node, failover, record_paths, run_agent, start_captures, summarise_run

SETTLE_S = 0.5
#: How long OVN may take to bind the VIP's virtual port to the new master's chassis after its GARP.
VIP_REBIND_TIMEOUT_S = 10.0


def emulate_ovn(cloud: Cloud, design: DvrDesign, seed: int, topology: str = "", out_dir=None) -> Run:
    """Build *cloud* with ML2/OVN in a real OVN, probe every class, tear down; a Run with backend ``emulation``."""
    rec, t0 = Recorder(), time.perf_counter()
    out = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="labtwin-dvr-ovn-"))
    (out / "pcap").mkdir(parents=True, exist_ok=True)
    router = classes.the_router(cloud)
    ends = classes.pick_endpoints(cloud, router)
    the_plan, wiring = wired_plan(cloud, new_run_id(), physical_router=False)
    add_outside(cloud, router, the_plan, wiring)
    vm_ns = {name: e.ns for name, e in the_plan.endpoints.items()}
    if ends.vip is not None:  # before the failover the VIP lives on the old VRRP master
        prefix = ends.vip.subnet.cidr.prefixlen
        the_plan.config[vm_ns[ends.vip.old_master.name]].ip_batch.append(f"addr add {ends.vip.ip}/{prefix} dev eth0")
    options = {"enable_distributed_floating_ip": design.ovn_distributed_fip}
    with Realisation(the_plan) as real:
        ovn = bring_up(real, cloud, rec, t0, options)
        bringup = time.perf_counter() - t0
        gateways_moved = follow_neutron_gateways(real, cloud, router, ovn.neutron, vm_ns)
        routes_outside(real, cloud, router, ovn.neutron)  # after: the outside world's addresses are Neutron's
        points = start_captures(real, _points(cloud, the_plan), out)
        results, vip_rebind_s = _probe(real, cloud, router, ends, ovn, vm_ns)
        sb = ovn.central.sb_rows(real.runner, SB_READ)
        for _, point in points:
            cap.stop(point)
        nb_rows = save_nb(real, ovn, out / "ovn-nb.json")
        v4_outside = next(a for a in outside_addresses(cloud, router, ovn.neutron) if ":" not in a)
        client = ends.snat.name if ends.snat is not None else None
        gateway = measure_gateway_failover(real, cloud, router, client, ovn, sb, vm_ns, v4_outside)  # the last act
    rec.operation("bringup", "", 0.0, bringup, count=len(the_plan.namespaces))
    real.record_teardown(rec, t0)
    logical = logical_map(cloud, router, sb, ovn.neutron)
    rows = _rows(points)
    _save_sightings(rows, sb, ovn.neutron, results, out / "ovn-sightings.json")
    ext = classes.external_network(cloud, router)
    plane = Hops(cloud, router, ext.name if ext is not None else "")
    paths = [_class_path(plane, logical, ovn.neutron, ends, cls, r, rows) for cls, r in results]
    record_paths(rec, paths)
    summary = summarise_run(cloud, design, paths, real, bringup, len(points))
    summary.update(ovn_nb_rows=nb_rows, vip_rebind_s=vip_rebind_s, gateway_chassis=logical.cr_lrp_host)
    summary["neutron_gateways_not_the_topology's"] = gateways_moved
    summary["warm_up"] = WARM_UP
    summary.update(gateway or {})
    run = Run("dvr", "emulation", dict(design), seed, topology, summary, rec.records)
    if out_dir:
        run.save(out)
    return run


def check_emulable_ovn(cloud: Cloud) -> None:
    """What real OVN needs of the cloud to carry the probes: the router's external network on a physical
    network (a flat or VLAN segment: OVN's ``localnet`` port), mapped on the network node."""
    router = classes.the_router(cloud)
    ext = classes.external_network(cloud, router)
    segment = external_segment(cloud, ext.name if ext else "")
    nn = classes.network_node(cloud)
    if segment is None:
        raise PlanError(f"control=ovn: the external network of {router.name} needs a flat or vlan segment")
    if segment.physical_network not in nn.bridge_mappings:
        raise PlanError(
            f"control=ovn: the network node {nn.name} maps no bridge for physnet {segment.physical_network} "
            "(bridge_mappings): it could not be a gateway chassis for the external network"
        )


# -- capture points -------------------------------------------------------------------
def _points(cloud: Cloud, the_plan) -> list[CapturePoint]:
    """Every VM's tap, every chassis's underlay (Geneve) and uplinks to physical networks (labelled with the
    physical network: a frame's tag says which of its networks it is on), the outside world."""
    hosts = {h.name: f"host:{i}" for i, h in enumerate(cloud.hosts)}
    points = [
        CapturePoint(hosts[port.host], naming.tap_name(port.id), f"tap:{port.host}:{port.name}")
        for port in (cloud.port[name] for name in the_plan.endpoints)
    ]
    for host in cloud.hosts:
        underlay = CapturePoint(hosts[host.name], UNDERLAY_DEVICE, f"tunnel:{host.name}", bpf=f"udp port {GENEVE_PORT}")
        points.append(underlay)
        for physnet in host.bridge_mappings:
            points.append(
                CapturePoint(hosts[host.name], physnet_device(cloud, physnet), f"provider:{host.name}:{physnet}")
            )
    points.append(CapturePoint(OUTSIDE, "eth0", OUTSIDE))
    return points


def _rows(points) -> list[tuple[str, str, str, observe.Sighting, object]]:
    """(kind, host, port, sighting, tunnel) for every probe packet any capture point saw."""
    rows: list = []
    for label, capture in points:
        kind, _, rest = label.partition(":")
        host, _, port = rest.partition(":")
        if kind == "tunnel":
            rows += [("tunnel", host, "", s, t) for s, t in tunnel_sightings(capture.path)]
        else:
            rows += [(kind, host or OUTSIDE, port, s, None) for s in observe.sightings(capture.path)]
    return rows


# -- probes ---------------------------------------------------------------------------
def _probe(real: Realisation, cloud: Cloud, router, ends, ovn: OvnCloud, vm_ns: dict) -> tuple[list, Optional[float]]:
    """Announce everyone, probe every class (DHCP alone, between readings of ovn-controller's packet-ins), fail
    the VIP over and probe it. ((class, result) pairs, seconds until OVN bound the VIP to the new master)."""
    outside = outside_addresses(cloud, router, ovn.neutron)
    steps = [
        {"pid": real.pid(e.ns), "kind": "garp", "iface": e.dev, "mac": e.mac, "ip": str(ip)}
        for e in real.plan.endpoints.values()
        for ip in e.ips
        if ip.version == 4
    ]
    steps += [{"pid": real.pid(OUTSIDE), "kind": "garp", "iface": "eth0", "mac": mac_of(EXTERNAL), "ip": outside[0]}]
    if ends.vip is not None:
        old = ends.vip.old_master
        steps.append(_garp(real.pid(vm_ns[old.name]), old.mac_address, ends.vip.ip))
    steps += _warm_up(real, cloud, router, ovn.neutron, vm_ns)
    steps.append({"pid": os.getpid(), "kind": "pause", "seconds": SETTLE_S})
    warm = len(steps)
    labels = []
    for cls in classes.CLASSES:
        step = _step(real, cloud, ends, ovn.neutron, cls, vm_ns, outside)
        if step is not None and cls not in ("dhcp", "vip-after-failover"):
            steps.append(step)
            labels.append(cls)
    out = list(zip(labels, run_agent(real, steps)[warm:]))
    dhcp = _step(real, cloud, ends, ovn.neutron, "dhcp", vm_ns, outside)
    if dhcp is not None:
        before = _packet_ins(real, ovn)
        result = run_agent(real, [dhcp])[0]
        after = _packet_ins(real, ovn)
        result["answered_by"] = sorted(h for h in after if after[h] > before.get(h, 0))
        out.append(("dhcp", result))
    rebind = None
    vip = _step(real, cloud, ends, ovn.neutron, "vip-after-failover", vm_ns, outside)
    if vip is not None:
        failover(real, vm_ns, ends.vip)
        new = ends.vip.new_master
        garp = _garp(real.pid(vm_ns[new.name]), new.mac_address, ends.vip.ip)
        start = time.perf_counter()
        run_agent(real, [garp])
        rebind = _wait_vip_bound(real, ovn, ends.vip, new.host, start)
        pause = {"pid": os.getpid(), "kind": "pause", "seconds": SETTLE_S}
        out.append(("vip-after-failover", run_agent(real, [pause, vip])[1]))
    return out, rebind


#: What runs before the probes (:func:`_warm_up`), as the run summary says it.
WARM_UP = (
    "one ping from each host to every other's Geneve address, from each VM to its router gateways and to the "
    "outside world, from the outside world to the router's gateway addresses and every floating IP"
)
#: Tokens of the warm-up pings: past every class's, so no path is read from them.
WARM_TOKEN = 100


def _warm_up(real: Realisation, cloud: Cloud, router, made: dict, vm_ns: dict) -> list[dict]:
    """Pings that make every neighbour known before the probes: each VM to its router gateways, the outside
    world to the router's gateway addresses and every floating IP. OVN holds a first packet whose next hop it
    has not resolved (here about 2 s); the model's paths are a resolved network's, as a cloud in service is."""
    targets: list[tuple[int, str]] = []
    for name, ns in vm_ns.items():
        for fixed in cloud.port[name].fixed_ips:
            gateway = made["gateways"].get(fixed.subnet_id)
            if gateway and fixed.subnet_id in router.interfaces:
                targets.append((real.pid(ns), gateway))
    # Every chassis's userspace tunnels learn each peer's MAC from ARP seen on br-phy: until then the first
    # Geneve packet to a new peer is lost (real-parts.md A). Each host pings every other's Geneve address.
    for i, _ in enumerate(cloud.hosts):
        for j, _ in enumerate(cloud.hosts):
            if i != j:
                targets.append((real.pid(f"host:{i}"), ENCAP.format(j + 1).split("/")[0]))
    # Each VM once to the outside world. Without these pings the first packet a VM's chassis tunnels to the
    # gateway chassis is lost (it was "the first IPv6 packet": db-1 on compute-3 is the only IPv6 source, and
    # no other class leaves compute-3 northward). Its br-int flows send it to the Geneve port (their counters
    # count it), but it never reaches the wire: the userspace datapath's tunnel neighbour cache has no entry
    # for the gateway's address, and OVS drops the packet while it resolves it. The host-to-host pings above
    # do not fill that cache on every chassis: after them, `ovs-appctl tnl/neigh/show` on compute-3 listed no
    # underlay peer (its peers had learned it from its ARP requests), even with the chassis's kernel
    # neighbours flushed first. An IPv4 ping from db-1 alone is enough: the IPv6 probe then passes. Stated in
    # the run summary as ``warm_up``.
    for name, ns in vm_ns.items():
        for version in sorted({ip.version for ip in cloud.port[name].ips}):
            targets += [
                (real.pid(ns), a) for a in outside_addresses(cloud, router, made) if (":" in a) == (version == 6)
            ]
    outside = real.pid(OUTSIDE)
    targets += [(outside, f["ip"]) for f in gateway_port(made, router.name)["fixed_ips"]]
    targets += [(outside, f["address"]) for f in made["floatingips"]]
    return [{"pid": pid, "kind": "icmp", "dst": dst, "token": WARM_TOKEN + i} for i, (pid, dst) in enumerate(targets)]


def _step(real, cloud: Cloud, ends, made: dict, cls: str, vm_ns: dict, outside: list[str]) -> Optional[dict]:
    """The agent step probing *cls* (same src/dst/protocol/port as the model's probe), or None."""
    src, dst, protocol, port = classes.probe_of(cls, ends)
    if not src or not dst:
        return None
    token = classes.CLASSES.index(cls) + 1
    if cls == "ns-fip-in":
        fip = next(f["address"] for f in made["floatingips"] if f["port"] == dst)
        return {"pid": real.pid(OUTSIDE), "kind": "tcp", "src": outside[0], "dst": fip, "port": port, "token": token}
    vm = cloud.port[src]
    pid = real.pid(vm_ns[src])
    if cls == "dhcp":
        return {"pid": pid, "kind": "dhcp", "iface": "eth0", "mac": vm.mac_address, "token": token}
    if dst == EXTERNAL:
        target = next(a for a in outside if (":" in a) == (protocol == "icmpv6"))
    elif cls == "vip-after-failover":
        target = dst
    else:
        target = str(next(ip for ip in cloud.port[dst].ips if ip.version == 4))
    return {"pid": pid, "kind": "icmp", "dst": target, "token": token}


def _garp(pid: int, mac, ip) -> dict:
    return {"pid": pid, "kind": "garp", "iface": "eth0", "mac": mac, "ip": str(ip)}


def _packet_ins(real: Realisation, ovn: OvnCloud) -> dict[str, int]:
    """Per host, DHCP requests its br-int sent to ovn-controller so far: the counters of the flows that match a
    DHCPv4 request (``udp,tp_src=68,tp_dst=67``) and hand it to ovn-controller (OVN's native DHCP is
    ``put_dhcp_opts``, answered by pinctrl). Only those: a gateway chassis sends ovn-controller other packets
    (ARP, ND) at any time."""
    counts = {}
    time.sleep(SETTLE_S)  # flow statistics reach OpenFlow with the datapath's next revalidation
    for host, ovs in ovn.chassis.items():
        done = real.runner.run(Step(("ovs-ofctl", "dump-flows", ovs.mgmt("br-int")), what=f"{host}: br-int's counters"))
        counts[host] = sum(int(m.group(1)) for m in _CONTROLLER_FLOW.finditer(done.stdout))
    return counts


_CONTROLLER_FLOW = re.compile(r"n_packets=(\d+),[^\n]*udp[^\n]*tp_src=68,tp_dst=67[^\n]*actions=[^\n]*controller\(")


def _wait_vip_bound(real: Realisation, ovn: OvnCloud, vip, host: str, start: float) -> Optional[float]:
    """Seconds from the new master's GARP until OVN bound the VIP's port to *host*'s chassis (None: not within
    :data:`VIP_REBIND_TIMEOUT_S`; the probe then shows where the VIP still goes)."""
    ovs = ovn.chassis[host]
    chassis = os.path.basename(ovs.rundir)
    while time.perf_counter() - start < VIP_REBIND_TIMEOUT_S:
        rows = ovn.central.sb_rows(real.runner, ("Port_Binding", "Chassis"))["Port_Binding"].values()
        names = {u: r["name"] for u, r in ovn.central.sb_rows(real.runner, ("Chassis",))["Chassis"].items()}
        bound = [names.get(_uuid(r.get("chassis")), "") for r in rows if r.get("type") == "virtual"]
        if chassis in bound:
            return round(time.perf_counter() - start, 3)
        time.sleep(0.05)
    return None


def _uuid(value) -> str:
    return value[1] if isinstance(value, list) and value and value[0] == "uuid" else ""


# -- results --------------------------------------------------------------------------
def _class_path(plane: Hops, logical: LogicalMap, made: dict, ends, cls: str, result: dict, rows) -> dict:
    """One class's observed path, in the model's terms (see :mod:`.ovn_observe`)."""
    src, dst, protocol, port = classes.probe_of(cls, ends)
    token = classes.CLASSES.index(cls) + 1
    mine = [r for r in rows if r[3].token == token]
    walker = Walker(plane, logical, 6 if protocol == "icmpv6" else 4)
    reachable = result["verdict"] == "allowed"
    request = walker.walk(events_of(mine, logical, request=True))
    reply = walker.walk(events_of(mine, logical, request=False))
    hops = request.hops
    if cls == "dhcp":  # answered in br-int by ovn-controller: its packet-ins rose on that chassis
        hops = hops + [f"{host}:br-int:ovn-controller" for host in result.get("answered_by", [])]
        reply.hops = hops[::-1]
    return {
        "class": cls,
        "router": plane.router.name,
        "mode": "ovn",
        "src": src,
        "dst": dst,
        "protocol": protocol,
        "port": port,
        "hops": hops,
        "via_network_node": crosses_network_node(plane.cloud, hops),
        "nat": _nat(plane.cloud, made, src, dst, cls, mine),
        "reachable": reachable,
        "ttl": request.ttl if reachable else None,
        "wires": request.wires,
        "reply": reply.hops if reachable else [],
        "reply_ttl": reply.ttl if reachable else None,
        "tunnel_keys": sorted({r[4].datapath for r in mine if r[4] is not None}),
        "answer": result["answer"],
        "latency_s": result.get("latency_s"),
    }


def _nat(cloud: Cloud, made: dict, src: str, dst: str, cls: str, mine) -> str:
    """What the far end saw: the outside world's view of the source, or the VM's view of the destination."""
    roles = {f["address"]: "fip" for f in made["floatingips"]}
    for port in made["ports"]:
        if port["device_owner"] == "network:router_gateway":
            roles.update({f["ip"]: "qg" for f in port["fixed_ips"]})
    seen = [(r[0] if r[0] != "tap" else f"tap:{r[2]}", r[3]) for r in mine]
    if dst == EXTERNAL:
        first = observe.far_end(seen, OUTSIDE)
        if first is None:
            return "none"
        version = 6 if ":" in first.dst else 4
        fixed = next(str(ip) for ip in cloud.port[src].ips if ip.version == version)
        return observe.nat(fixed, first.dst, first, roles)
    if cls == "ns-fip-in":
        roles.update({str(ip): "fixed" for ip in cloud.port[dst].ips})
        far = observe.far_end(seen, f"tap:{dst}")
        fip = next(f["address"] for f in made["floatingips"] if f["port"] == dst)
        return observe.nat(far.src if far else "", fip, far, roles)
    return "none"


def _save_sightings(rows, sb: dict, made: dict, results, path: Path) -> None:
    """What the paths are read from, kept beside the run: every sighting, the SB rows naming them, Neutron's
    ports, the probe results."""
    data = {
        "sightings": [
            {"kind": k, "host": h, "port": p, **s.__dict__, "tunnel": t.__dict__ if t is not None else None}
            for k, h, p, s, t in rows
        ],
        "sb": sb,
        "neutron": made,
        "results": results,
    }
    path.write_text(json.dumps(data, indent=1, sort_keys=True, default=str) + "\n")
