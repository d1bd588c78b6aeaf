"""CLI start-up: ``labtwin --help``, ``validate`` and ``simulate``, beside a bare interpreter started the same way.

The target (issue 16): each command under 0.5 s here, start-up included. A scenario names its backends
lazily (``scenarios.base.lazy``) and pandas is imported where a frame is made, so a command imports
only what it uses. Both columns are measured in the same run, each the fastest of 7; ``labtwin's own``
is the difference, what labtwin adds to starting Python, and is what must stay under the target.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LABTWIN = Path(sys.executable).parent / "labtwin"
TARGET_S = 0.5
RUNS = 7
COMMANDS = (
    ("labtwin --help", [str(LABTWIN), "--help"]),
    ("labtwin validate minimal.yaml", [str(LABTWIN), "validate", str(ROOT / "topologies" / "minimal.yaml")]),
    ("labtwin simulate sg-fanout", [str(LABTWIN), "simulate", "sg-fanout"]),
    ("labtwin simulate reachability", [str(LABTWIN), "simulate", "reachability"]),
)


def fastest_wall(argv: list[str]) -> float:
    """The fastest of :data:`RUNS` runs: other work on the machine only ever adds time."""
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> str:
    bare = fastest_wall([sys.executable, "-c", "pass"])
    own_header = "labtwin's own s"
    rows = [f"{'command':<32} {'wall s':>7} {'bare python s':>14} {own_header:>16}  target"]
    slow = []
    for name, argv in COMMANDS:
        wall = fastest_wall(argv)
        own = wall - bare
        ok = own < TARGET_S
        slow += [] if ok else [name]
        rows.append(f"{name:<32} {wall:>7.3f} {bare:>14.3f} {own:>16.3f}  {'<' if ok else '>='} {TARGET_S}")
    table = "\n".join(rows)
    if slow:
        raise AssertionError(f"{table}\nover {TARGET_S} s of start-up: {', '.join(slow)}")
    return table


if __name__ == "__main__":
    print(main())
