"""dvr's traffic model at 10^6 flows, beside the per-burst DES it replaced, measured in the same run.

The target (issue 16): the dvr model at 10^6 flows under 5 s. The traffic model steps only the bursts the
network node accepts (``model.traffic.run_traffic``), so its time follows the node's capacity, not the
offered load; the per-burst DES (``run_traffic_per_burst``) is timed at the sizes it can still run, for the
ratio. Their agreement is a test (tests/scenarios/dvr/test_traffic.py).
"""

from __future__ import annotations

import random
import time

from labtwin import api
from labtwin.scenarios.dvr.model.traffic import run_traffic, run_traffic_per_burst

TARGET_S = 5.0
WEIGHTS = {"ns-snat": 0.5, "ew-cross-host": 0.3, "ns-fip-in": 0.2}
CROSSING = {"ns-snat": True, "ew-cross-host": False, "ns-fip-in": True}


def timed(func, *args) -> float:
    start = time.perf_counter()
    func(*args)
    return time.perf_counter() - start


def main() -> str:
    rows = [f"{'flows':>9} {'aggregated s':>13} {'per-burst s':>12}"]
    for flows in (10_000, 100_000, 1_000_000):
        args = (WEIGHTS, CROSSING, flows, 1e6, random.Random(1), 1.0)
        fast = timed(run_traffic, *args)
        slow = timed(run_traffic_per_burst, *args) if flows <= 100_000 else float("nan")
        rows.append(f"{flows:>9} {fast:>13.3f} {slow:>12.3f}")
    whole = timed(lambda: api.simulate("dvr", flows=1_000_000))
    rows.append(f"labtwin simulate dvr --set flows=1000000 (paths, traffic, failover): {whole:.2f} s")
    table = "\n".join(rows)
    if whole >= TARGET_S:
        raise AssertionError(f"{table}\nover {TARGET_S} s")
    return table


if __name__ == "__main__":
    print(main())
