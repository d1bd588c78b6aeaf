"""sg-fanout at production scale: 20,000 members over 1,000 hosts, each firewall, beside bare SimPy.

The target (issue 16): each strategy under 2 s and 300 MB (wall time and peak memory of a process that runs
one model, imports included). Beside it, the model call alone against a bare SimPy process stepping through as
many events in the same run: the ratio is the model's work per event (each event here is an agent iteration
that refreshes a host's filters, so per-event work is the point; not a target). ML2/OVN's model has no agent
loop (no SimPy events): its row has time and memory only.
"""

from __future__ import annotations

import json
import subprocess
import sys

from baseline import COUNT_EVENTS, PEAK_MB, bare_simpy

MEMBERS, HOSTS = 20_000, 1_000
TARGET_S, TARGET_MB = 2.0, 300.0
FIREWALLS = ("iptables", "ipset", "ovs", "subtable", "ovn")

ONE_RUN = """
import json, sys, time
start = time.perf_counter()
{count_events}
from labtwin import api
model_start = time.perf_counter()
run = api.simulate("sg-fanout", members={members}, hosts={hosts}, firewall="{firewall}")
wall = time.perf_counter() - start
model_s = time.perf_counter() - model_start
{peak_mb}
print(json.dumps({{"wall_s": wall, "model_s": model_s, "events": events, "peak_mb": peak_mb}}))
"""


def one(firewall: str) -> dict:
    code = ONE_RUN.format(peak_mb=PEAK_MB, count_events=COUNT_EVENTS, members=MEMBERS, hosts=HOSTS, firewall=firewall)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(out.splitlines()[-1])


def main() -> str:
    head = f"{'firewall':<9} {'wall s':>7} {'model s':>8} {'peak MB':>8} {'events':>7} {'bare SimPy s':>13}"
    rows = [f"{head} {'model/bare per event':>21}  target"]
    missed = []
    for firewall in FIREWALLS:
        r = one(firewall)
        bare = bare_simpy(r["events"]) if r["events"] else 0.0
        per_event = f"{r['model_s'] / bare:20.0f}x" if r["events"] else f"{'-':>21}"
        ok = r["wall_s"] < TARGET_S and r["peak_mb"] < TARGET_MB
        missed += [] if ok else [firewall]
        rows.append(
            f"{firewall:<9} {r['wall_s']:>7.2f} {r['model_s']:>8.2f} {r['peak_mb']:>8.0f} {r['events']:>7} "
            f"{bare:>13.4f} {per_event}  " + ("ok" if ok else f"over {TARGET_S} s or {TARGET_MB} MB")
        )
    table = "\n".join(rows)
    if missed:
        raise AssertionError(f"{table}\nmissed the target: {', '.join(missed)}")
    return table


if __name__ == "__main__":
    print(main())
