"""multisegment at production scale: 100 racks x 20 hosts, 10,000 ports requested per rack, beside bare SimPy.

Issue 16's target: under 5 s. Measured here: the wall time and peak memory of a process that runs one model
(imports included), the model call alone, and a bare SimPy process stepping one timeout per arrival (1,000,000)
in the same run: the ratio is the model's work per port request (IPAM, the agent's wiring, the operator's
watch, a record). The model no longer spends a SimPy event per arrival (one process walks every rack's
arrivals in time order and yields only to the operator's and the agents' processes), and its records are
the same as with one event per arrival (the golden files say so).

Not met yet: about 25 us of Python per request keeps 10^6 requests near 30 s. Reaching 5 s needs batched
arrivals (numpy draws, count-based allocation, one record per batch instead of one per port): a decision on
which records the model keeps, stated in issue 16's notes. This bench fails on a regression past
:data:`CEILING_S`, the time this version takes with a margin, and reports the target.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import simpy

RACKS, HOSTS_PER_RACK, DEMAND = 100, 20, 10_000
TARGET_S = 5.0
CEILING_S = 60.0  # this version: about 30 s here; past this, something regressed

ONE_RUN = """
import json, resource, time
start = time.perf_counter()
from labtwin import api
model_start = time.perf_counter()
run = api.simulate("multisegment", racks={racks}, hosts_per_rack={hosts}, demand={demand}, segments_per_host="many")
wall = time.perf_counter() - start
model_s = time.perf_counter() - model_start
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"wall_s": wall, "model_s": model_s, "requests": run.summary["requests"], "peak_mb": peak_mb}}))
"""


def bare_simpy(events: int) -> float:
    """Seconds a bare SimPy process takes to step through *events* timeouts."""
    env = simpy.Environment()

    def loop():
        for _ in range(events):
            yield env.timeout(1)

    env.process(loop())
    start = time.perf_counter()
    env.run()
    return time.perf_counter() - start


def main() -> str:
    code = ONE_RUN.format(racks=RACKS, hosts=HOSTS_PER_RACK, demand=DEMAND)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    r = json.loads(out.splitlines()[-1])
    bare = bare_simpy(r["requests"])
    per_request_us = 1e6 * r["model_s"] / r["requests"]
    rows = [
        f"{RACKS} racks x {HOSTS_PER_RACK} hosts, demand {DEMAND:,} per rack: {r['requests']:,} port requests",
        f"wall {r['wall_s']:.1f} s (model {r['model_s']:.1f} s), peak {r['peak_mb']:.0f} MB",
        f"per request: model {per_request_us:.1f} us, bare SimPy (one timeout each) {1e6 * bare / r['requests']:.2f} us"
        f" -> {r['model_s'] / bare:.0f}x",
        f"target {TARGET_S} s: " + ("met" if r["wall_s"] < TARGET_S else "NOT MET (see the docstring)"),
    ]
    table = "\n".join(rows)
    if r["wall_s"] > CEILING_S:
        raise AssertionError(f"{table}\nover the regression ceiling {CEILING_S} s")
    return table


if __name__ == "__main__":
    print(main())
