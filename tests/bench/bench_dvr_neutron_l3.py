"""How long Neutron 29's own L3 agents take to build a router in the emulation (issue 15), per router mode.

``control=neutron`` with ``router=legacy`` on tests/scenarios/dvr/neutron-l3.yaml (one ``legacy``
agent; one network node, one compute node, a router with two interfaces, a gateway and a floating
IP) and ``router=dvr`` on neutron-l3-dvr.yaml (``dvr_snat`` on the network node, ``dvr`` on two
compute nodes, started side by side; two floating IPs, a VIP) and an HA router (``ha``: a legacy router with
``ha: true`` on neutron-l3-ha.yaml, a ``legacy`` agent on each of two network nodes, keepalived, conntrackd and
the state-change monitor; also how long after the builds the first one's keepalived was master, and the
measured VRRP failover): each agent's start (import,
configuration, ``init_host``) and router build (one fullsync: ``sync_routers``, the namespace
cleanup, ``RouterInfo.process``), and the emulation's whole bring-up. The baseline in the same run
is labtwin's own build of the same router (``control=labtwin``: its bring-up, which includes
writing the routers' namespaces from its plan). Each measured ``REPEATS`` times (env var, default
3); the median is shown, with the range.

The feasibility study (``../shared/reference/real-parts.md`` part B) measured 11-25 s for one legacy
router on a busy machine of this kind.

Needs root and Open vSwitch; about two minutes.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path

from labtwin import api

HERE = Path(__file__).resolve().parents[1] / "scenarios" / "dvr"
#: The live tests' clouds: a legacy router on one network node and one compute node; a distributed one on one
#: network node and two compute nodes.
TOPOLOGIES = {
    "legacy": HERE / "neutron-l3.yaml",
    "dvr": HERE / "neutron-l3-dvr.yaml",
    "ha": HERE / "neutron-l3-ha.yaml",
}
#: The ``router`` knob per row: the HA row's router is the topology's legacy HA router.
ROUTER = {"legacy": "legacy", "dvr": "dvr", "ha": "legacy"}
REPEATS = int(os.environ.get("REPEATS", "3"))


def skip_reason():
    ok, reasons = api.emulation_possible()
    return None if ok else "; ".join(reasons)


def cell(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    print(f"one router, {REPEATS} runs each: median seconds (range)")
    for mode in ("legacy", "dvr", "ha"):
        start: dict[str, list[float]] = {}
        build: dict[str, list[float]] = {}
        bringup: list[float] = []
        wall: list[float] = []
        labtwin: list[float] = []
        ha: dict[str, list[float]] = {}
        for _ in range(REPEATS):
            run = api.emulate("dvr", TOPOLOGIES[mode], control="neutron", router=ROUTER[mode])
            for host, agent in run.summary["neutron_l3"]["agents"].items():
                key = f"{host} ({agent['agent_mode']})"
                start.setdefault(key, []).append(agent["start_s"])
                build.setdefault(key, []).append(agent["router_build_s"])
            bringup.append(run.summary["bringup_s"])
            wall.append(run.summary["neutron_l3"]["build_wall_s"])
            if mode == "ha":
                ha.setdefault("keepalived master, after the builds", []).append(
                    run.summary["neutron_l3"]["ha"]["master_after_s"]
                )
                ha.setdefault("VRRP failover (ha- link down to pings)", []).append(
                    run.summary["neutron_l3"]["ha_failover"]["ha_failover_s"]
                )
            ours = api.emulate("dvr", TOPOLOGIES[mode], control="labtwin", router=ROUTER[mode])
            labtwin.append(ours.summary["bringup_s"])
        print(f"router={mode}")
        for key in build:
            print(f"  {key:<24} agent start {cell(start[key])}   router build {cell(build[key])}")
        print(f"  every agent, started side by side to built      {cell(wall)}")
        print(f"  emulation bring-up, control=neutron             {cell(bringup)}")
        print(f"  emulation bring-up, control=labtwin (baseline)  {cell(labtwin)}")
        for key, values in ha.items():
            print(f"  {key:<47} {cell(values)}")


if __name__ == "__main__":
    main()
