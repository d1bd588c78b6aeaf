"""What the scale benches share: the bare SimPy baseline, and a child process's own peak memory."""

from __future__ import annotations

import time

import simpy

#: Code for a bench's child process: its peak resident memory in MB as ``peak_mb``. VmHWM, not ru_maxrss: Linux
#: keeps ru_maxrss across exec, so it would report the (large) bench process that started the child.
PEAK_MB = 'peak_mb = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1024'


#: Code for a bench's child process: counts the SimPy events it processes in ``events`` (Environment.step calls).
COUNT_EVENTS = """import simpy
events = 0
step = simpy.Environment.step
def counted(env):
    global events
    events += 1
    return step(env)
simpy.Environment.step = counted"""


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
