"""labtwin import of a generated 1,000-host, 20,000-port dump: wall time and peak memory, beside reading the
same files with json.load alone (the floor), in one run.

Issue 17's target: under 3 s and under 300 MB (a process that runs `labtwin import`, start-up included).
The dump comes from labtwin.importer.synthetic (a routed network with a segment per rack of 20 hosts, one
network node, a distributed router, every port in two groups): no real deployment.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from baseline import PEAK_MB

from labtwin.importer.synthetic import write_dump

HOSTS, PORTS = 1_000, 20_000
TARGET_S, TARGET_MB = 3.0, 300.0

ONE_RUN = """
import json, sys, time
start = time.perf_counter()
from labtwin.cli import main
try:
    main(["import", "--from", {dump!r}, "--out", {out!r}], standalone_mode=False)
finally:
    wall = time.perf_counter() - start
    {peak_mb}
    mb = peak_mb
    print(json.dumps({{"wall_s": wall, "peak_mb": mb}}), file=sys.stderr)
"""


def main() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        dump = Path(tmp) / "dump"
        write_dump(dump, hosts=HOSTS, ports=PORTS)
        start = time.perf_counter()
        for path in dump.glob("*.json"):
            json.loads(path.read_text())
        floor = time.perf_counter() - start
        code = ONE_RUN.format(peak_mb=PEAK_MB, dump=str(dump), out=str(Path(tmp) / "cloud.yaml"))
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        r = json.loads(done.stderr.strip().splitlines()[-1])
    ok = r["wall_s"] < TARGET_S and r["peak_mb"] < TARGET_MB
    table = (
        f"{HOSTS:,} hosts, {PORTS:,} ports: labtwin import {r['wall_s']:.2f} s, peak {r['peak_mb']:.0f} MB "
        f"(json.loads of the same files alone: {floor:.2f} s); target < {TARGET_S} s and < {TARGET_MB:.0f} MB: "
        + ("ok" if ok else "MISSED")
    )
    if not ok:
        raise AssertionError(table)
    return table


if __name__ == "__main__":
    print(main())
