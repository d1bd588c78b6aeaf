"""sg-fanout model benchmark: the full sweep, beside a bare SimPy loop with as many events.

The target (issue 4): 4 strategies x 10 member counts (10..1000) x hosts 1, 10,
100 = 120 model runs in under 30 s here. The baseline is a bare SimPy process
stepping through the same number of events the sweep processed, so the ratio
says how much the model adds on top of SimPy itself.
"""

from __future__ import annotations

import time

import simpy

from labtwin.scenarios.sg_fanout.model import sweep

MEMBERS = (10, 20, 50, 100, 150, 200, 300, 500, 700, 1000)
HOSTS = (1, 10, 100)
TARGET_S = 30.0


def counted_sweep() -> tuple[float, int, object]:
    """Run the sweep, counting the events SimPy processes (Environment.step calls)."""
    original = simpy.Environment.step
    count = 0

    def step(env):
        nonlocal count
        count += 1
        return original(env)

    simpy.Environment.step = step
    try:
        start = time.perf_counter()
        df = sweep(members=MEMBERS, hosts=HOSTS)
        elapsed = time.perf_counter() - start
    finally:
        simpy.Environment.step = original
    return elapsed, count, df


def bare_loop(events: int) -> float:
    """A process that only yields timeouts: *events* SimPy events, nothing else."""
    env = simpy.Environment()

    def ticker(env, n):
        for _ in range(n):
            yield env.timeout(1)

    env.process(ticker(env, events - 2))  # the process start and end are events too
    start = time.perf_counter()
    env.run()
    return time.perf_counter() - start


def main() -> None:
    elapsed, events, df = counted_sweep()
    bare = bare_loop(events)
    runs = len(df)
    print(
        f"sg-fanout sweep: {runs} runs ({len(set(df.firewall))} strategies x {len(MEMBERS)} member counts "
        f"x hosts {', '.join(map(str, HOSTS))})"
    )
    print(f"{'':>24} {'seconds':>9} {'events':>9} {'us/event':>9}")
    print(
        f"{'model sweep':>24} {elapsed:>9.2f} {events:>9} {1e6 * elapsed / events:>9.1f}  "
        f"target < {TARGET_S:.0f} s: {'ok' if elapsed < TARGET_S else 'MISSED'}"
    )
    print(
        f"{'bare SimPy, same events':>24} {bare:>9.2f} {events:>9} {1e6 * bare / events:>9.1f}  "
        f"model/bare {elapsed / bare:.1f}x"
    )
    one_host = df[(df.hosts == 1) & df.members.isin([100, 170, 1000])]
    print("\none host, one join (members spread over 1 host):")
    print(one_host[["firewall", "members", "updates_total", "rules_written", "port_ready_s"]].to_string(index=False))


if __name__ == "__main__":
    main()
