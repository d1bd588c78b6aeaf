"""Loader benchmark: validating big clouds, beside plain YAML parsing of the same text.

The target (issue 2): 1,000 hosts and 20,000 ports load and validate in under 2 s here.
Both columns are measured in the same run, so the ratio is what to watch.
"""

from __future__ import annotations

import gc
import time

import yaml

from labtwin.description import parse_cloud


def big_cloud_yaml(hosts: int, ports: int, networks: int = 20) -> str:
    """A synthetic cloud: VLAN tenant networks of /20, ports spread over hosts, one self-referencing group."""
    lines = ["name: bench", "physnets: [{name: physnet1}]", "hosts:"]
    lines += [
        f"  - {{name: h{i}, role: compute, rack: r{i // 40}, bridge_mappings: {{physnet1: br-vlan}}}}"
        for i in range(hosts)
    ]
    lines.append("networks:")
    lines += [f"  - {{name: n{i}}}" for i in range(networks)]
    lines.append("segments:")
    lines += [
        f"  - {{name: s{i}, network_id: n{i}, physical_network: physnet1, segmentation_id: {100 + i}}}"
        for i in range(networks)
    ]
    lines.append("subnets:")
    lines += [f"  - {{name: sub{i}, network_id: n{i}, cidr: 10.{i}.0.0/20}}" for i in range(networks)]
    lines += [
        "security_groups:",
        "  - name: default",
        "    rules:",
        "      - {direction: ingress, remote_group_id: default}",
        "      - {direction: egress}",
    ]
    lines.append("ports:")
    lines += [f"  - {{name: p{i}, network_id: n{i % networks}, binding:host_id: h{i % hosts}}}" for i in range(ports)]
    return "\n".join(lines) + "\n"


def best_of(func, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def yaml_load_gc_paused(text: str):
    gc.disable()
    try:
        return yaml.load(text, Loader=yaml.CSafeLoader)
    finally:
        gc.enable()


def main() -> None:
    print("loader: labtwin load+validate vs plain yaml.load (libyaml) of the same text; best of 3")
    print("(labtwin pauses the cyclic GC while loading; the third column does the same for plain yaml)")
    print(
        f"{'hosts':>6} {'ports':>7} {'yaml.load s':>12} {'yaml no-gc s':>13} {'labtwin s':>10} {'vs no-gc':>9}  target"
    )
    for hosts, ports in ((100, 1_000), (500, 10_000), (1_000, 20_000)):
        text = big_cloud_yaml(hosts, ports)
        plain = best_of(lambda: yaml.load(text, Loader=yaml.CSafeLoader))
        plain_nogc = best_of(lambda: yaml_load_gc_paused(text))
        ours = best_of(lambda: parse_cloud(text, "bench.yaml"))
        target = "< 2 s: " + ("ok" if ours < 2 else "MISSED") if ports == 20_000 else ""
        print(
            f"{hosts:>6} {ports:>7} {plain:>12.3f} {plain_nogc:>13.3f} {ours:>10.3f} {ours / plain_nogc:>8.1f}x  {target}"  # noqa: E501
        )


if __name__ == "__main__":
    main()
