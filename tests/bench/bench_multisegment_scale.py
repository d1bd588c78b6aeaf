"""multisegment at production scale: 100 racks x 20 hosts, 10,000 ports requested per rack, beside bare SimPy.

Issue 16's target: under 5 s (wall time of a process that runs one model, imports included), reported with
its peak memory and, beside it, a bare SimPy process stepping one timeout per request (1,000,000) in the
same run. The model serves requests in batches where that gives the same answer
(``labtwin.scenarios.multisegment.model.demand``; tests/scenarios/multisegment/test_batched.py checks every
summary number and every non-allocation record against serving them one by one), so it spends far less
than one SimPy event per request: the ratio is per request, not per event. The one-by-one reference at this
size is timed too, at a tenth of the demand (it took 30-35 s at full size).
"""

from __future__ import annotations

import json
import subprocess
import sys

from baseline import PEAK_MB, bare_simpy

RACKS, HOSTS_PER_RACK, DEMAND = 100, 20, 10_000
TARGET_S = 5.0

ONE_RUN = """
import json, time
start = time.perf_counter()
from labtwin import api
model_start = time.perf_counter()
{run}
wall = time.perf_counter() - start
model_s = time.perf_counter() - model_start
{peak_mb}
print(json.dumps({{"wall_s": wall, "model_s": model_s, "requests": run.summary["requests"], "peak_mb": peak_mb}}))
"""


BATCHED = (
    'run = api.simulate("multisegment", racks={racks}, hosts_per_rack={hosts}, demand={demand}, '
    'segments_per_host="many")'
)
ONE_BY_ONE = """
from labtwin.scenarios.multisegment.model import Simulation
from labtwin.scenarios.multisegment.model.cloud import generate_cloud
from labtwin.scenarios.multisegment.spec import MultisegmentDesign
design = MultisegmentDesign.of(dict(racks={racks}, hosts_per_rack={hosts}, demand={demand}, segments_per_host="many"))
sim = Simulation(generate_cloud({racks}, {hosts}, 22, "linuxbridge"), design, 1, batched=False)
sim.run()
class run: summary = {{"requests": sim.ok + sum(sim.failed.values())}}
"""


def measure(run: str, demand: int) -> dict:
    sizes = dict(racks=RACKS, hosts=HOSTS_PER_RACK, demand=demand)
    code = ONE_RUN.format(peak_mb=PEAK_MB, run=run.format(**sizes))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(out.splitlines()[-1])


def main() -> str:
    r = measure(BATCHED, DEMAND)
    reference = measure(ONE_BY_ONE, DEMAND // 10)
    bare = bare_simpy(r["requests"])
    per_request_us = 1e6 * r["model_s"] / r["requests"]
    rows = [
        f"{RACKS} racks x {HOSTS_PER_RACK} hosts, demand {DEMAND:,} per rack: {r['requests']:,} port requests",
        f"wall {r['wall_s']:.1f} s (model {r['model_s']:.1f} s), peak {r['peak_mb']:.0f} MB",
        f"per request: model {per_request_us:.1f} us, bare SimPy (one timeout each) {1e6 * bare / r['requests']:.2f} us"
        f" -> {r['model_s'] / bare:.0f}x",
        f"one by one (the reference), demand {DEMAND // 10:,}: model {reference['model_s']:.1f} s, "
        f"{1e6 * reference['model_s'] / reference['requests']:.1f} us per request",
        f"target {TARGET_S} s: " + ("met" if r["wall_s"] < TARGET_S else "MISSED"),
    ]
    table = "\n".join(rows)
    if r["wall_s"] >= TARGET_S:
        raise AssertionError(f"{table}\nover the target")
    return table


if __name__ == "__main__":
    print(main())
