"""The ``dvr`` scenario, emulated: real namespaces, policy routing, NAT and DVR MAC rewriting; one probe per class.

Realise the plan (:mod:`.labtwin_agent.routing`), program the OpenFlow flows
(:mod:`.labtwin_agent.flows`), start the DHCP responders and one capture per capture
point, announce every VM (gratuitous ARP, so the learning bridges know where
each MAC is before any probe), send one probe per traffic class, then fail the
VRRP VIP over (move it from the old master to the new one, which sends a
gratuitous ARP -- no keepalived: the failover is what keepalived would do) and
probe the VIP. The path of each probe is what the capture points saw
(:mod:`.observe`); its NAT what the far end saw. ``control=ovn`` (``router=ovn``) is real OVN, built by
Neutron's ML2/OVN (:mod:`.ovn`); ``control=neutron`` has Neutron's own L3 agents build the routers instead of
:mod:`.labtwin_agent` (:mod:`.neutron_l3`: legacy and DVR routers, several side by side, IPv4 and IPv6; HA
routers with the keepalived Neutron's agent runs, failed over by cutting the master's ha- link:
:mod:`.neutron_l3_ha`), with the same probes. What can be built, and whose code built what: :mod:`.emulable`.
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
from labtwin.emulation import captures as cap
from labtwin.emulation.ledger import Item
from labtwin.emulation.naming import new_run_id
from labtwin.emulation.realise import Realisation
from labtwin.emulation.runner import Step, in_netns
from labtwin.records import Recorder, Run

from .. import spec as classes
from ..knobs import DvrDesign
from . import layout as L
from . import observe
from .emulable import built_by, check_emulable
from .labtwin_agent.routing import plan_dvr
from .plan import DvrPlan
from .probing import crosses_network_node, failover, record_paths, run_agent, start_captures, summarise_run
from .walk import observed_walk

#: Pause after the gratuitous ARPs, so every learning bridge has seen them before the first probe.
SETTLE_S = 0.3


#: Run by file path with ``python -I``, as the probe worker (:mod:`.probing`).
DHCPD = Path(__file__).parent / "labtwin_agent" / "dhcpd.py"


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
