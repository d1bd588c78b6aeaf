"""A 10,000-run design sweep, serial in this process beside an embedded Dask LocalCluster, in one run.

Issue 16: ``labtwin sweep`` runs a grid on Dask; this bench reports runs per second for each engine on this
machine (2 cores here: a LocalCluster can at best double the serial rate, less its start-up and the
tasks' round trips). The grid: sg-fanout, 20 sizes x 4 agent firewalls x 125 seeds. Both engines must
give the same rows (a test checks it seed by seed on a small grid; here the row counts and totals).
"""

from __future__ import annotations

import os
import time

from labtwin import sweep

VARY = {"members": list(range(10, 210, 10)), "firewall": ["iptables", "ipset", "ovs", "subtable"]}
REPEATS = 125


def timed(**engine):
    start = time.perf_counter()
    result = sweep.run("sg-fanout", VARY, repeats=REPEATS, **engine)
    return result, time.perf_counter() - start


def main() -> str:
    serial, serial_s = timed(scheduler="serial")
    local, local_s = timed(scheduler="local")
    runs = len(serial.table)
    if runs != 10_000 or len(local.table) != runs:
        raise AssertionError(f"expected 10,000 runs on each engine, got {runs} and {len(local.table)}")
    if serial.table["rules_written"].sum() != local.table["rules_written"].sum():
        raise AssertionError("the LocalCluster's rows differ from the serial run's")
    rows = [
        f"{'engine':<32} {'wall s':>7} {'runs/s':>8}",
        f"{'serial (this process)':<32} {serial_s:>7.1f} {runs / serial_s:>8.0f}",
        f"{f'LocalCluster, {os.cpu_count()} workers':<32} {local_s:>7.1f} {runs / local_s:>8.0f}",
        f"speed-up: {serial_s / local_s:.2f}x (cluster start-up and the batches' round trips included)",
    ]
    return "\n".join(rows)


if __name__ == "__main__":
    print(main())
