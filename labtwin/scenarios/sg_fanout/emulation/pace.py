"""The machine's pace during an sg-fanout run: a fixed piece of the apply's own kind of work, timed.

A calibration records the same, so the twin can tell a machine busy with other work from a wrong model
(:func:`labtwin.api.timing_basis`).
"""

from __future__ import annotations

from labtwin.emulation.realise import Realisation
from labtwin.emulation.runner import Step

from .plan import Shape

#: Rounds of the pace probe timed before the joins and again after them (see :func:`pace`).
PACE_ROUNDS = 5
#: What the pace probe makes and removes again: an empty chain (hybrid), a flow in a table no strategy uses (ovs).
PACE_CHAIN, PACE_TABLE, PACE_COOKIE = "lt-pace", 250, 0x1ABE


def pace_steps(real: Realisation, shape: Shape) -> list[Step]:
    """A fixed piece of the apply's own kind of work, the same whatever the run's size, on the first host:
    two iptables-restore commits in its namespace (hybrid), or two OpenFlow bundles on its bridge (ovs).
    Committing is what a busy machine slows most (a table replace waits for every core to pass a
    quiescent point), and a probe of another kind (a program started, a round trip to ovs-vswitchd)
    followed the apply poorly."""
    host = next(iter(shape.host_ns or shape.host_bridge))
    if shape.hybrid:
        restore = real.exec_argv(shape.host_ns[host], ("iptables-restore", "-n", "-w", "10"))
        texts = (f"*filter\n:{PACE_CHAIN} - [0:0]\nCOMMIT\n", f"*filter\n-X {PACE_CHAIN}\nCOMMIT\n")
        return [Step(restore, what="pace", stdin=text) for text in texts]
    bundle = ("ovs-ofctl", "-O", "OpenFlow14", "bundle", shape.host_bridge[host], "-")
    texts = (
        f"flow add cookie={PACE_COOKIE:#x},table={PACE_TABLE},priority=1,actions=drop\n",
        f"flow delete table={PACE_TABLE},cookie={PACE_COOKIE:#x}/-1\n",
    )
    return [Step(bundle, what="pace", stdin=text) for text in texts]


def pace(real: Realisation, shape: Shape) -> list[float]:
    """Seconds each round of :func:`pace_steps` took, PACE_ROUNDS rounds: how fast this machine does the
    apply's kind of work right now. The run's pace is the median of its rounds before and after the joins:
    a busy machine slows most rounds, while the fastest of a few often escaped it. A calibration records
    the same, so the twin can tell a machine busy with other work from a wrong model
    (:func:`labtwin.api.timing_basis`); the model never sees it. (Not the agents' state reads: those grow
    with the group, and would cancel the very growth a calibration fits.) Made and removed between joins,
    never inside one join's before/after reads."""
    steps = pace_steps(real, shape)
    return [sum(real.runner.run(step).duration for step in steps) for _ in range(PACE_ROUNDS)]
