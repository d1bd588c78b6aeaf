"""The ``dvr`` scenario, emulated: real namespaces, policy routing, NAT and DVR MAC rewriting; one probe per class.

Realise the plan (:mod:`.labtwin_agent.routing`), program the OpenFlow flows
(:mod:`.labtwin_agent.flows`), start the DHCP responders and one capture per capture
point, announce every VM (gratuitous ARP, so the learning bridges know where
each MAC is before any probe), send one probe per traffic class, then fail the
VRRP VIP over (move it from the old master to the new one, which sends a
gratuitous ARP -- no keepalived: the failover is what keepalived would do) and
probe the VIP. The path of each probe is what the capture points saw
(:mod:`.observe`); its NAT what the far end saw. ``control=ovn`` (``router=ovn``) is real OVN, built by
Neutron's ML2/OVN (:mod:`.ovn`); ``control=neutron`` has Neutron's own L3 agent build the routers instead of
:mod:`.labtwin_agent` (:mod:`.neutron_l3`: legacy and DVR routers, IPv4 and IPv6), with the same probes.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping, Optional

from labtwin.description import Cloud
from labtwin.description.notes import anycast_gateways
from labtwin.emulation import captures as cap
from labtwin.emulation.ledger import Item
from labtwin.emulation.naming import new_run_id
from labtwin.emulation.plan import PlanError
from labtwin.emulation.realise import Realisation
from labtwin.emulation.runner import Step, in_netns
from labtwin.records import Recorder, Run

from .. import groups
from .. import spec as classes
from ..knobs import DvrDesign
from . import layout as L
from . import observe
from .labtwin_agent.routing import plan_dvr
from .plan import DvrPlan
from .probing import crosses_network_node, failover, record_paths, run_agent, start_captures, summarise_run
from .walk import observed_walk

#: Pause after the gratuitous ARPs, so every learning bridge has seen them before the first probe.
SETTLE_S = 0.3


#: Run by file path with ``python -I``, as the probe worker (:mod:`.probing`).
DHCPD = Path(__file__).parent / "labtwin_agent" / "dhcpd.py"


class NotEmulated(PlanError):
    """The design asks for something only the model has (``router=ovn``)."""


def emulate(cloud: Cloud, design: Mapping[str, Any], seed: int, topology: str = "", out_dir=None) -> Run:
    """Realise *cloud* under *design*, probe every class, tear down; a Run with backend ``emulation``."""
    design = DvrDesign.of(design)
    check_emulable(cloud, design)
    if design.control == "ovn":
        from .ovn import emulate_ovn  # imports nothing of OVN's until asked

        return emulate_ovn(cloud, design, seed, topology, out_dir)
    rec, t0 = Recorder(), time.perf_counter()
    out = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="labtwin-dvr-"))
    (out / "pcap").mkdir(parents=True, exist_ok=True)
    agents: list = []
    if design.control == "neutron":  # Neutron's own L3 agents build the routers, several side by side (issue 15)
        from .neutron_l3 import plan_neutron_routers
        from .neutron_l3_run import build_routers

        views, agents = plan_neutron_routers(cloud, design, new_run_id())
        dp = views[0]
    else:
        dp = plan_dvr(cloud, design, new_run_id())
        views = [dp]
    # each router's classes, probed through its view of the plan (its layout), with its own probe tokens
    studied = [(view, classes.pick_endpoints(cloud, view.layout.router)) for view in views]
    ends = studied[0][1]
    for view, view_ends in studied:
        _hold_vip(view, view_ends)
    neutron: dict = {}
    ha = None
    with Realisation(dp.plan) as real:
        _flows(dp, real)
        if agents and dp.layout.router.ha:  # keepalived's instances, kept up through their failover
            from .neutron_l3_ha import HaRouters

            ha = HaRouters(real, dp, agents)
            neutron = ha.build()
        elif agents:
            neutron = build_routers(real, dp, agents)
        bringup = time.perf_counter() - t0
        servers = [_dhcp_server(real, dp, key, out) for key in dp.dhcp_servers]
        points = start_captures(real, dp.captures, out)
        try:
            results = [_probe(real, view, e, i * len(classes.CLASSES), i == 0) for i, (view, e) in enumerate(studied)]
            if ha is not None:  # the HA router's VRRP failover, the last act
                client = dp.vm_ns.get(ends.snat.name) if ends.snat is not None else None
                neutron["ha_failover"] = ha.fail_over(client, next(str(a.ip) for a in dp.layout.external))
        finally:
            if ha is not None:
                ha.stop()
        counters = _stage_counters(real, dp)
        for point in points:
            cap.stop(point[1])
        for proc in servers:
            cap.stop(proc)
    rec.operation("bringup", "", 0.0, bringup, count=len(dp.plan.namespaces))
    real.record_teardown(rec, t0)
    seen = [(label, s) for label, c in points for s in observe.sightings(c.path)]
    paths = [
        _class_path(cloud, view, e, cls, r, seen, counters, i * len(classes.CLASSES))
        for i, ((view, e), found) in enumerate(zip(studied, results))
        for cls, r in found
    ]
    record_paths(rec, paths)
    summary = summarise_run(cloud, design, paths, real, bringup, len(dp.captures))
    summary["built_by"] = built_by(design, dp)
    if neutron:
        summary["neutron_l3"] = neutron
    if neutron.get("ha_failover"):  # the HA router's VRRP failover, compared with the model's (issue 15)
        summary["ha_failover_s"] = neutron["ha_failover"]["ha_failover_s"]
    run = Run("dvr", "emulation", dict(design), seed, topology, summary, rec.records)
    if out_dir:
        run.save(out)
    return run


def built_by(design: DvrDesign, dp: DvrPlan) -> dict[str, str]:
    """Whose code built each part of the run (``control=labtwin`` or ``neutron``; OVN's run says its own): under
    ``control=neutron`` the routers are Neutron 29's, and what its agents do not build stays labtwin's own, said
    here so that no part passes for Neutron's. (Neutron's OVS agent is not run for dvr: the br-int/br-tun/br-ex
    flows, DVR MAC rewriting included, are labtwin's; the issue asks for the L3 agent.)"""
    neutron = design.control == "neutron"
    parts = {
        "routers": (
            "Neutron 29's own L3 agents (L3NATAgentWithStateReport per host and agent mode): namespaces, "
            "addresses, routes, policy rules, iptables, radvd, keepalived"
            if neutron
            else "labtwin's own agent (emulation/labtwin_agent)"
        ),
        "l2_flows": "labtwin's own OpenFlow flows on br-int, br-tun and br-ex (DVR MAC rewriting included)",
        "security_groups": "none written (the runs refuse a cloud whose groups drop a studied probe)",
    }
    if dp.dhcp_servers:
        parts["dhcp"] = "labtwin's own DHCP responder (emulation/labtwin_agent/dhcpd.py) in the DHCP namespace"
    if design.distributed_dhcp:
        parts["dhcp"] = (
            "labtwin's own br-int table 77 flows to a responder stand-in (distributed_dhcp: Neutron's OVS agent's "
            "dhcp extension is not run)"
        )
    return parts


def check_emulable(cloud: Cloud, design: DvrDesign) -> None:
    """The labtwin agent builds one router, legacy or dvr, and real OVN one OVN router; Neutron's own L3 agents
    (``control=neutron``) build several, legacy and distributed side by side; anything else is the model's
    alone (NotEmulated). A cloud with more routers than its control plane builds is refused rather than
    half-built, since the twin would miss the others' probes.
    """
    routers = classes.studied_routers(cloud)
    if len(routers) > 1 and design.control != "neutron":
        raise NotEmulated(
            f"the {'OVN' if design.control == 'ovn' else 'labtwin'} emulation builds one router; this cloud has "
            f"{len(routers)} with interfaces ({', '.join(r.name for r in routers)}): control=neutron builds "
            "several (Neutron's own L3 agents), and the model covers them all"
        )
    for router in routers:
        if router.external_gateway_info is None:
            raise NotEmulated(f"the dvr emulation builds routers with a gateway; {router.name} has none")
    mode = classes.router_mode(classes.the_router(cloud), design)
    if mode == "ovn" and len(routers) == 1:
        from .ovn import check_emulable_ovn

        check_emulable_ovn(cloud)
        return
    for router in routers or [classes.the_router(cloud)]:
        mode = classes.router_mode(router, design)
        if mode not in ("legacy", "dvr"):
            raise NotEmulated(f"router={mode} is model-only; the emulation builds legacy and dvr")
    if design.control == "neutron":
        _check_neutron_builds(cloud, design)
    for router in routers or [classes.the_router(cloud)]:
        _check_outside_answers(cloud, router)
        _check_one_overlay_bridge(cloud, router)
        _check_no_group_drops(cloud, router)
    if design.agent != "ovs" or design.firewall_driver != "openvswitch":
        raise NotEmulated(
            f"agent={design.agent} firewall_driver={design.firewall_driver} is model-only: the labtwin emulation "
            "plugs VMs into br-int directly (the openvswitch firewall's wiring)"
        )


def _check_neutron_builds(cloud: Cloud, design: DvrDesign) -> None:
    """What Neutron's own L3 agents build here so far (:mod:`.neutron_l3`): legacy and DVR routers, several side by
    side (at most one distributed), IPv4 and IPv6 (Neutron's agent runs radvd for an IPv6 qr- port), a legacy
    HA router alone (:mod:`.neutron_l3_ha`); the PTG's proposals are labtwin's own extensions, which Neutron's
    agent does not have."""
    routers = classes.studied_routers(cloud) or [classes.the_router(cloud)]
    proposals = [
        knob
        for knob, on in (
            ("distributed_snat=true", design.distributed_snat),
            ("ipv6_fast_exit=true", design.ipv6_fast_exit),
            ("vip_arp=learned", design.vip_arp == "learned"),
        )
        if on
    ]
    if proposals:
        raise NotEmulated(
            f"{', '.join(proposals)} is a PTG proposal, labtwin's own extension of DVR: Neutron's L3 agent has no "
            "such mode, so it stays on control=labtwin"
        )
    for router in routers:
        if router.ha and classes.router_mode(router, design) == "dvr":
            raise NotEmulated(
                f"control=neutron builds legacy HA routers (.neutron_l3_ha); {router.name} is HA and distributed "
                "(DVR+HA: not yet)"
            )
        v6 = [name for name in router.interfaces if cloud.subnet[name].ip_version == 6]
        if router.ha and v6:
            raise NotEmulated(
                f"control=neutron builds IPv4 HA routers; {router.name} is HA with IPv6 interfaces ({', '.join(v6)}): "
                "Neutron's agent starts radvd on the keepalived master only, at its state change, which the run "
                "does not ledger yet"
            )
    if len(routers) > 1:
        ha = [r.name for r in routers if r.ha]
        distributed = [r.name for r in routers if classes.router_mode(r, design) == "dvr"]
        if ha:
            raise NotEmulated(f"control=neutron builds an HA router alone; this cloud has {len(routers)} routers")
        if len(distributed) > 1:
            raise NotEmulated(
                f"control=neutron builds one distributed router beside legacy ones; {', '.join(distributed)} are "
                "distributed (they would share each host's fip- namespace and fg- port: not planned yet)"
            )
        if design.distributed_dhcp:
            raise NotEmulated("distributed_dhcp=true with several routers is the model's alone")


def _check_no_group_drops(cloud: Cloud, router) -> None:
    """The labtwin agent writes no security-group filter (VMs plug into br-int as the OVS firewall's wiring,
    without its flows): refused when the groups drop a studied probe, which real OVN's ACLs (``control=ovn``)
    and the model apply."""
    ends = classes.pick_endpoints(cloud, router)
    ext = classes.external_network(cloud, router)
    for cls in classes.CLASSES:
        found = groups.verdict(cloud, ext, cls, ends)
        if found is not None and not found.allowed and found.dropped_by:
            raise NotEmulated(
                f"the security groups drop {cls} ({found.reason}); the labtwin emulation writes no security-group "
                "filter: control=ovn checks them through real OVN's ACLs"
            )


def _check_one_overlay_bridge(cloud: Cloud, router) -> None:
    """Each emulated host has one bridge for the router's networks (a VLAN trunk between hosts): refused when
    they leave a host by different bridges (a tunnel and a VLAN physnet), which the model keeps apart."""
    for host in cloud.hosts:
        bridges = classes.router_bridges(cloud, router, host.name)
        if len(bridges) > 1:
            raise NotEmulated(
                f"router {router.name}'s networks leave {host.name} by {' and '.join(bridges)}; the labtwin "
                "emulation has one bridge per host for them (the model covers it)"
            )


def _check_outside_answers(cloud: Cloud, router) -> None:
    """The emulated outside world answers the probes at the external subnets' gateway addresses, which an IPv6
    gateway left to Neutron's default cannot do: the router's own namespace takes it as its own
    (:func:`~labtwin.description.notes.anycast_gateways`). Refused, naming the fix."""
    gateway = router.external_gateway_info if router is not None else None
    for subnet in anycast_gateways(cloud):
        if gateway is not None and subnet.network_id == gateway.network_id:
            raise NotEmulated(
                f"external subnet {subnet.name}'s gateway {subnet.gateway_ip} is its subnet-router anycast "
                "address (Neutron's IPv6 default), which the router's own namespace takes as its own: the "
                "emulated outside world cannot answer there; give the subnet the upstream router's address "
                f"as gateway_ip (e.g. {subnet.cidr.network_address + 1})"
            )


# -- setup ------------------------------------------------------------------------
def _hold_vip(dp: DvrPlan, ends: classes.Endpoints) -> None:
    """Before the failover the VIP lives on the old VRRP master (the port that wrote its ARP entry last)."""
    if ends.vip is not None:
        prefix = ends.vip.subnet.cidr.prefixlen
        dp.plan.config[dp.vm_ns[ends.vip.old_master.name]].ip_batch.append(f"addr add {ends.vip.ip}/{prefix} dev eth0")


def _flows(dp: DvrPlan, real: Realisation) -> None:
    """The OpenFlow flows per bridge, and the IPv6 policy rules (``ip rule`` needs ``-6``, not sayable in a batch)."""
    for key, lines in dp.ip6_rules.items():
        real.runner.run(
            Step(
                real.exec_argv(key, ["ip", "-6", "-batch", "-"]),
                what=f"IPv6 rules in {key}",
                stdin="\n".join(lines) + "\n",
            )
        )
    for bridge, lines in dp.flows.items():
        real.runner.run(
            Step(("ovs-ofctl", "add-flows", bridge, "-"), what=f"flows on {bridge}", stdin="\n".join(lines) + "\n")
        )


def _dhcp_server(real: Realisation, dp: DvrPlan, key: str, out: Path):
    dev, server_ip, leases = dp.dhcp_servers[key]
    # the run id makes the argv this run's own: teardown and `labtwin clean` end processes by argv
    argv = in_netns(
        real.pid(key),
        [sys.executable, "-I", str(DHCPD), dev, server_ip, json.dumps(leases, sort_keys=True), dp.plan.run_id],
    )
    item = Item(f"dhcpd:{key}", "process", f"dhcp responder {key}", where=key, match=tuple(argv[3:]))
    proc = real.runner.spawn(Step(argv, what=f"dhcp responder in {key}", creates=(item,)))
    point = cap.Capture(key, key, dev, out / "dhcpd.log", proc)
    cap._wait_listening(proc, 10.0)
    return point


# -- probes -------------------------------------------------------------------------
def _probe(
    real: Realisation, dp: DvrPlan, ends: classes.Endpoints, base: int = 0, announce: bool = True
) -> list[tuple[str, dict]]:
    """Announce the VMs (*announce*: once per run), probe every class but the VIP, fail the VIP over, probe it.
    (class, result) pairs; the probes' tokens start after *base* (one range per router)."""
    labels = []
    steps = [
        {"pid": real.pid(key), "kind": "garp", "iface": dev, "mac": mac, "ip": ip}
        for key, dev, mac, ip in (dp.speakers if announce else [])
    ]
    if ends.vip is not None:
        old = ends.vip.old_master
        steps.append(
            {
                "pid": real.pid(dp.vm_ns[old.name]),
                "kind": "garp",
                "iface": "eth0",
                "mac": old.mac_address,
                "ip": str(ends.vip.ip),
            }
        )
    steps.append({"pid": os.getpid(), "kind": "pause", "seconds": SETTLE_S})
    warm = len(steps)
    for token, cls in enumerate(classes.CLASSES):
        step = _step(real, dp, ends, cls, base + token + 1)
        if step is not None and cls != "vip-after-failover":
            steps.append(step)
            labels.append(cls)
    results = run_agent(real, steps)[warm:]
    out = list(zip(labels, results))
    vip = _step(real, dp, ends, "vip-after-failover", base + len(classes.CLASSES))
    if vip is not None:
        failover(real, dp.vm_ns, ends.vip)
        new = ends.vip.new_master
        garp = {
            "pid": real.pid(dp.vm_ns[new.name]),
            "kind": "garp",
            "iface": "eth0",
            "mac": new.mac_address,
            "ip": str(ends.vip.ip),
        }
        pause = {"pid": os.getpid(), "kind": "pause", "seconds": SETTLE_S}
        out.append(("vip-after-failover", run_agent(real, [garp, pause, vip])[2]))
    return out


def _step(real: Realisation, dp: DvrPlan, ends, cls: str, token: int) -> Optional[dict]:
    """The agent step probing *cls* (same src/dst/protocol/port as the model's probe), or None."""
    src, dst, protocol, port = classes.probe_of(cls, ends)
    if not src or not dst:
        return None
    lay = dp.layout
    ext4 = next(str(a.ip) for a in lay.external if a.version == 4)
    ext6 = next((str(a.ip) for a in lay.external if a.version == 6), None)
    if cls == "ns-fip-in":
        return {
            "pid": real.pid("external"),
            "kind": "tcp",
            "src": ext4,
            "dst": str(lay.fips[dst]),
            "port": port,
            "token": token,
            "cls": cls,
        }
    vm = lay.cloud.port[src]
    pid = real.pid(dp.vm_ns[src])
    if cls == "dhcp":
        return {"pid": pid, "kind": "dhcp", "iface": "eth0", "mac": vm.mac_address, "token": token}
    if dst == classes.EXTERNAL:
        target = ext6 if protocol == "icmpv6" else ext4
    elif cls == "vip-after-failover":
        target = dst
    else:
        target = str(next(a.ip for a in L.fixed_interfaces(lay.cloud, lay.cloud.port[dst]) if a.version == 4))
    return {"pid": pid, "kind": "icmp", "dst": target, "token": token}


def _stage_counters(real: Realisation, dp: DvrPlan) -> dict[str, int]:
    """Packets counted by each OpenFlow stage that has no device (table 77)."""
    counts = {}
    for hop_label, (bridge, table, _) in dp.stages.items():
        done = real.runner.run(Step(("ovs-ofctl", "dump-flows", bridge, f"table={table}"), what=f"counters {bridge}"))
        counts[hop_label] = sum(
            int(part.split("=")[1].rstrip(","))
            for line in done.stdout.splitlines()
            for part in line.split()
            if part.startswith("n_packets=")
        )
    return counts


# -- results ------------------------------------------------------------------------
def _class_path(cloud: Cloud, dp: DvrPlan, ends, cls: str, result: dict, seen, counters, base: int = 0) -> dict:
    src, dst, protocol, port = classes.probe_of(cls, ends)
    token = base + classes.CLASSES.index(cls) + 1
    mine = [(label, s) for label, s in seen if s.token == token]
    stages = [h for h, n in counters.items() if n > 0] if cls == "dhcp" else []
    hops = observe.path(mine, broadcast=(cls == "dhcp"), stages=stages)
    reachable = result["verdict"] == "allowed"
    return {
        "class": cls,
        "router": dp.layout.router.name,
        "mode": dp.layout.mode,
        "src": src,
        "dst": dst,
        "protocol": protocol,
        "port": port,
        "hops": hops,
        "via_network_node": crosses_network_node(cloud, hops),
        "nat": _nat(dp, ends, cls, mine),
        "reachable": reachable,
        **observed_walk(dp, hops, mine, reachable, broadcast=(cls == "dhcp")),
        "answer": result["answer"],
        "latency_s": result.get("latency_s"),
    }


def _nat(dp: DvrPlan, ends, cls: str, mine) -> str:
    """What the far end saw: the outside world's view of the source, or the VM's view of the destination."""
    lay = dp.layout
    src, dst, _, _ = classes.probe_of(cls, ends)
    roles = {str(ip): "fip" for ip in lay.fips.values()}
    roles.update({str(a.ip): "qg" for a in lay.qg.addrs})
    roles.update({str(a.ip): "fg" for fg in lay.fg.values() for a in fg.addrs})
    if dst == classes.EXTERNAL:
        first = observe.far_end(mine, classes.EXTERNAL)
        if first is None:
            return "none"
        version = 6 if ":" in first.dst else 4
        fixed = next(str(a.ip) for a in L.fixed_interfaces(lay.cloud, lay.cloud.port[src]) if a.version == version)
        return observe.nat(fixed, first.dst, first, roles)
    if cls == "ns-fip-in":
        vm = lay.cloud.port[dst]
        roles.update({str(a.ip): "fixed" for a in L.fixed_interfaces(lay.cloud, vm)})
        far = observe.far_end(mine, f"{vm.host}:{L.tap(vm)}")
        return observe.nat(far.src if far else "", str(lay.fips[dst]), far, roles)
    return "none"
