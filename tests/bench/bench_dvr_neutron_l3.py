"""How long Neutron 29's own L3 agent takes to build a legacy router in the emulation (issue 15).

``control=neutron`` on tests/scenarios/dvr/neutron-l3.yaml (one network node, one compute node, one
legacy router with two interfaces, a gateway and a floating IP): the agent's start (import,
configuration, ``init_host``) and its router build (one fullsync: ``sync_routers``, the namespace
cleanup, ``RouterInfo.process``), and the emulation's whole bring-up. The baseline in the same run
is labtwin's own build of the same router (``control=labtwin``: its bring-up, which includes writing
the router's namespace from its plan). Each measured ``REPEATS`` times (env var, default 3); the
median is shown, with the range.

The feasibility study (``../shared/reference/real-parts.md`` part B) measured 11-25 s for one legacy
router on a busy machine of this kind.

Needs root and Open vSwitch; about a minute.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path

from labtwin import api

TOPOLOGY = Path(__file__).resolve().parents[1] / "scenarios" / "dvr" / "neutron-l3.yaml"
REPEATS = int(os.environ.get("REPEATS", "3"))


def skip_reason():
    ok, reasons = api.emulation_possible()
    return None if ok else "; ".join(reasons)


def cell(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    neutron: dict[str, list[float]] = {"start": [], "build": [], "bringup": []}
    labtwin: list[float] = []
    for _ in range(REPEATS):
        run = api.emulate("dvr", TOPOLOGY, control="neutron", router="legacy")
        agent = run.summary["neutron_l3"]["agents"]["network-1"]
        neutron["start"].append(agent["start_s"])
        neutron["build"].append(agent["router_build_s"])
        neutron["bringup"].append(run.summary["bringup_s"])
        ours = api.emulate("dvr", TOPOLOGY, control="labtwin", router="legacy")
        labtwin.append(ours.summary["bringup_s"])
    print(f"one legacy router, {REPEATS} runs each: median seconds (range)")
    print(f"  Neutron's L3 agent start (import, config, init_host) {cell(neutron['start'])}")
    print(f"  Neutron's router build (one fullsync)                {cell(neutron['build'])}")
    print(f"  emulation bring-up, control=neutron                  {cell(neutron['bringup'])}")
    print(f"  emulation bring-up, control=labtwin (baseline)       {cell(labtwin)}")


if __name__ == "__main__":
    main()
