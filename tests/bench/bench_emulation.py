"""Bring-up and teardown per VM port: labtwin's realisation vs plain Mininet vs bare netns.

For 10, 50 and 200 VM ports spread over several hosts (25 ports a host, at
least 2 hosts) this times, in the same run:

- labtwin: plan + :class:`Realisation` up (namespaces, veths, OVS VLAN fabric,
  bridges, iptables/ipset) and down (ledger teardown);
- plain Mininet: ``Host`` + ``Link`` for the same count (what ``addHost``/
  ``addLink`` do; built without ``Mininet()``, whose init raises machine-wide sysctls);
- bare: ``ip netns add`` + veth, as one ``ip -batch`` (a lower bound);

and at 200 ports the time from bring-up to the first packet across hosts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = (10, 50, 200)


def skip_reason():
    if os.geteuid() != 0 or shutil.which("mnexec") is None or shutil.which("ovs-vsctl") is None:
        return "needs root, mnexec and Open vSwitch"
    return None


def cloud_yaml(ports: int) -> str:
    hosts = max(2, ports // 25)
    lines = ["name: bench", "physnets: [{name: physnet1}]", "hosts:"]
    lines += [f"  - {{name: c{h}, role: compute, bridge_mappings: {{physnet1: br-vlan}}}}" for h in range(hosts)]
    lines += [
        "networks: [{name: net}]",
        "segments: [{name: seg, network_id: net, network_type: vlan, physical_network: physnet1, segmentation_id: 100}]",  # noqa: E501
        "subnets: [{name: sub, network_id: net, cidr: 10.8.0.0/16}]",
        "security_groups:",
        "  - name: default",
        "    rules:",
        "      - {direction: ingress, ethertype: IPv4, remote_group_id: default}",
        "      - {direction: egress, ethertype: IPv4}",
        "ports:",
    ]
    lines += [f"  - {{name: p{i}, network_id: net, binding:host_id: c{i % hosts}}}" for i in range(ports)]
    return "\n".join(lines) + "\n"


def bench_labtwin(ports: int, first_packet: bool = False) -> tuple[float, float, float | None]:
    from labtwin.description import load_cloud
    from labtwin.emulation.naming import new_run_id
    from labtwin.emulation.probes import ProbeSpec, probe
    from labtwin.emulation.realise import Realisation
    from labtwin.scenarios.reachability.emulation.plan import plan

    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as fh:
        fh.write(cloud_yaml(ports))
        fh.flush()
        cloud = load_cloud(fh.name)
    start = time.perf_counter()
    real = Realisation(plan(cloud, new_run_id()))
    real.__enter__()
    try:
        up = time.perf_counter() - start
        first = None
        if first_packet:
            a, b = real.plan.endpoints["p0"], real.plan.endpoints["p1"]  # on different hosts
            spec = ProbeSpec("p0", "p1", a.ns, str(b.ips[0]), "icmp")
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < 30:
                if probe(real.runner, real.pids, [spec], timeout=0.2)[0].verdict == "allowed":
                    first = time.perf_counter() - t0
                    break
    finally:
        t1 = time.perf_counter()
        real.__exit__(None, None, None)
        down = time.perf_counter() - t1
    return up, down, first


def bench_mininet(ports: int) -> tuple[float, float]:
    from mininet.link import Link
    from mininet.node import Host

    start = time.perf_counter()
    hub = Host("ltbnchhub")
    hosts = [Host(f"ltbnch{i}") for i in range(ports)]
    links = [Link(h, hub, intfName1="eth0", intfName2=f"hub{i}") for i, h in enumerate(hosts)]
    for i, h in enumerate(hosts):
        h.setIP(f"10.9.{i // 250}.{i % 250 + 1}/16", intf="eth0")
    up = time.perf_counter() - start
    start = time.perf_counter()
    for link in links:
        link.delete()
    for h in hosts + [hub]:
        h.terminate()
    return up, time.perf_counter() - start


def bench_bare(ports: int) -> tuple[float, float]:
    names = [f"ltbare{i}" for i in range(ports)]
    add = [f"netns add {n}" for n in names]
    add += [f"link add eth0 netns {n} type veth peer name {n}x netns {names[0]}" for n in names[1:]]
    start = time.perf_counter()
    subprocess.run(["ip", "-batch", "-"], input="\n".join(add) + "\n", text=True, check=True)
    up = time.perf_counter() - start
    start = time.perf_counter()
    subprocess.run(["ip", "-batch", "-"], input="".join(f"netns del {n}\n" for n in names), text=True, check=True)
    return up, time.perf_counter() - start


def main():
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from labtwin.emulation.snapshot import differences, machine_state

    rows = []
    first = None
    before = machine_state()
    for n in SIZES:
        up, down, fp = bench_labtwin(n, first_packet=(n == max(SIZES)))
        first = fp if fp is not None else first
        mup, mdown = bench_mininet(n)
        bup, bdown = bench_bare(n)
        rows.append((n, up / n, down / n, mup / n, mdown / n, bup / n, bdown / n))
    print(
        f"{'ports':>6} | {'labtwin up':>11} {'down':>8} | {'mininet up':>11} {'down':>8} | {'bare up':>9} {'down':>8}  (ms per port)"  # noqa: E501
    )
    for n, *ms in rows:
        print(
            f"{n:>6} | {ms[0] * 1e3:>11.2f} {ms[1] * 1e3:>8.2f} | {ms[2] * 1e3:>11.2f} {ms[3] * 1e3:>8.2f} | "
            f"{ms[4] * 1e3:>9.2f} {ms[5] * 1e3:>8.2f}"
        )
    changed = differences(before, machine_state())
    print(
        f"machine after {len(SIZES)} realisations and teardowns (up to {max(SIZES)} ports): "
        + ("exactly as before" if not changed else f"CHANGED: {sorted(changed)}")
    )
    print(
        f"first packet across hosts after bring-up at {max(SIZES)} ports: "
        + (f"{first:.2f} s (includes the probe agent's start)" if first is not None else "none within 30 s")
    )


if __name__ == "__main__":
    main()
