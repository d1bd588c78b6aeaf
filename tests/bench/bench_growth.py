"""Growth table: each scenario's model at 1x, 10x and 100x its size, time and peak memory, with the fitted exponent.

One process per point (so its peak memory is its own); the time is the model call alone, the imports done
first. The exponent is the least-squares slope of log time on log size: about 1 where the work grows with the
size, 2 where it grows with its square. Nothing here is a target (the targets are in bench_sg_fanout_scale,
bench_dvr_scale and bench_cli_startup): the table makes a change of complexity visible, with the start-up
process measured alongside (its peak memory is the floor every point shares).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

from baseline import PEAK_MB

POINT = """
import json, time
from labtwin import api
api.simulate({scenario!r}, **{small!r})  # imports and caches warmed on the smallest size
start = time.perf_counter()
api.simulate({scenario!r}, **{knobs!r})
took = time.perf_counter() - start
{peak_mb}
mb = peak_mb
print(json.dumps({{"s": took, "mb": mb}}))
"""

#: scenario -> (the knob that sizes it, its 1x value, other knobs)
GROWTH = {
    "sg-fanout": ("members", 200, {"hosts": 50}),
    "dvr": ("flows", 10_000, {}),
    "multisegment": ("demand", 30, {"racks": 10, "hosts_per_rack": 4, "segments_per_host": "many"}),
}


def point(scenario: str, knobs: dict, small: dict) -> dict:
    code = POINT.format(peak_mb=PEAK_MB, scenario=scenario, knobs=knobs, small=small)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(out.splitlines()[-1])


def slope(sizes: list[float], times: list[float]) -> float:
    xs, ys = [math.log(s) for s in sizes], [math.log(max(t, 1e-6)) for t in times]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def main() -> str:
    rows = [f"{'scenario':<13} {'knob':<8} {'1x':>18} {'10x':>18} {'100x':>18} {'exponent':>9}"]
    for scenario, (knob, base, other) in GROWTH.items():
        sizes = [base, 10 * base, 100 * base]
        small = {**other, knob: base}
        points = [point(scenario, {**other, knob: size}, small) for size in sizes]
        cells = [f"{p['s']:>8.3f} s {p['mb']:>5.0f} MB" for p in points]
        exponent = slope(sizes, [p["s"] for p in points])
        rows.append(f"{scenario:<13} {knob:<8} {cells[0]:>18} {cells[1]:>18} {cells[2]:>18} {exponent:>9.2f}")
    return "\n".join(rows)


if __name__ == "__main__":
    print(main())
