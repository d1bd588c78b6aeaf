"""Port requests: Poisson arrivals per rack, served one by one or in batches between other processes' events.

Each rack receives ``demand`` requests over the horizon: exponential gaps (mean ``horizon / demand``) and a
uniformly drawn host of the rack, from the rack's own generator (numpy's PCG64, seeded from the run's seed
and the rack's name). One SimPy process walks every rack's arrivals in time order and yields only when
another process has something to do first (the operator adding a segment, an agent restart): arrivals in
between change nothing another process could see, so they need no SimPy event of their own.

**Batched** (the model's default): between two such events, a rack's requests are served at once where the
answer is the same as serving them one by one. That holds when every host of the rack draws from the same
candidate subnets, exactly the subnets on the rack's physnet, no other rack shares that physnet, and no
agent is down: then the first requests fill the first subnet, the next the second, the rest are refused,
and the operator's watch fires at a request whose index follows from the free count
(:func:`operator_cut`). The request that makes the operator act is served on its own, at its time, so
the segment addition starts exactly when it would. Otherwise (a rack whose hosts map different physnets,
a migration's agent down) the requests are served one by one.

What a batch does not keep (stated, and the reason the one-by-one path stays as the reference that
``tests/scenarios/multisegment/test_batched.py`` compares every summary number against):

- **Records**: one ``allocation_ok`` event per subnet a batch allocated from (``count``, ``until``: the last
  request's time) and one ``allocation_failed`` per refusal reason, instead of one per port.
- **Addresses**: a batch takes a subnet's lowest free addresses, not Neutron's random pick among the first
  1000 free (:data:`~.ipam.MAX_WIN`); only their number is used.
- **Taps**: a host's first port of a segment in a batch names its tap (every tap has the same 14-character
  length, so the longest name's length holds; which of several equally long names is reported may differ).
"""

from __future__ import annotations

import hashlib
import heapq
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import numpy as np

from .cloud import Rack
from .ipam import IpamError, SubnetPool

if TYPE_CHECKING:
    from . import Simulation


@dataclass
class RackArrivals:
    """A rack's requests in time order: times (seconds), host indexes into ``rack.hosts``, and how many are
    served (``next``)."""

    rack: Rack
    times: np.ndarray
    hosts: np.ndarray
    next: int = 0

    def name(self, i: int) -> str:
        return f"{self.rack.name}-vm{i + 1}"

    def host(self, i: int) -> str:
        return self.rack.hosts[int(self.hosts[i])]


def draw(rack: Rack, demand: int, horizon: float, seed: int) -> RackArrivals:
    """*demand* Poisson arrivals over *horizon* on *rack*, each on a uniformly drawn host of the rack."""
    key = hashlib.sha256(f"{seed}/{rack.name}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(key[:8], "big"))
    gaps = rng.exponential(horizon / demand, demand) if demand else np.empty(0)
    return RackArrivals(rack, np.cumsum(gaps), rng.integers(0, len(rack.hosts), demand))


@dataclass(frozen=True)
class RackPlan:
    """How a rack's next requests are served: from *pools* in order (or all refused with *error*), and after
    how many requests the operator's watch fires (None: not before another process acts)."""

    pools: tuple[SubnetPool, ...]
    error: Optional[IpamError]
    cut: Optional[int]


def run_demand(sim: Simulation, batched: bool):
    """The SimPy process serving every rack's requests (see the module docstring)."""
    racks = [draw(rack, int(sim.design.demand), sim.horizon, sim.seed) for rack in sim.racks]
    batched = batched and len({r.physnet for r in sim.racks}) == len(sim.racks)
    plans: dict[str, tuple[tuple, Optional[RackPlan]]] = {}
    queue: Optional[list[tuple[float, int]]] = None  # (time, rack) of each rack's next request, once built
    while True:
        if batched and serve_batches(sim, racks, plans):
            queue = None
        if queue is None:
            queue = [(float(a.times[a.next]), i) for i, a in enumerate(racks) if a.next < len(a.times)]
            heapq.heapify(queue)
        if not queue:
            return
        t, i = queue[0]
        if t >= sim.env.peek():  # another process acts first (or at the same instant): let it
            yield sim.env.timeout(max(0.0, sim.env.peek() - sim.env.now))
            if sim.design.migration != "none":  # an agent may have gone down or come back anywhere
                sim.changed_racks.update(a.rack.name for a in racks)
            continue
        heapq.heappop(queue)
        arrivals = racks[i]
        sim.changed_racks.add(arrivals.rack.name)
        sim.advance_to(t)
        sim.request_port(arrivals.rack, arrivals.host(arrivals.next), arrivals.name(arrivals.next))
        arrivals.next += 1
        if arrivals.next < len(arrivals.times):
            heapq.heappush(queue, (float(arrivals.times[arrivals.next]), i))


def serve_batches(sim: Simulation, racks: list[RackArrivals], plans: dict) -> bool:
    """Serve at once each rack's requests up to its horizon: the next event that changes the rack (the
    segment it waits for; under a migration, any other process's next event) or the request that makes the
    operator act, whichever comes first. Racks are independent here (each on its own physnet), so a rack may
    run ahead of the clock: what it records carries its own times. Only racks something changed since
    (``Simulation.changed_racks``: a request served alone, the segment it waited for) are looked at.
    False when nothing was served."""
    served = False
    for arrivals in racks:
        rack = arrivals.rack
        if rack.name not in sim.changed_racks or arrivals.next >= len(arrivals.times):
            continue  # nothing changed it since it was last served as far as it could be
        sim.changed_racks.discard(rack.name)
        horizon = sim.env.peek() if sim.design.migration != "none" else sim.changes_at.get(rack.name, math.inf)
        if arrivals.times[arrivals.next] >= horizon:
            continue
        plan = rack_plan(sim, rack, plans)
        if plan is None:
            continue  # served one by one
        last = int(np.searchsorted(arrivals.times, horizon, side="left"))
        if plan.cut is not None:
            last = min(last, arrivals.next + plan.cut - 1)  # the request that makes the operator act: on its own
        if last > arrivals.next:
            serve(sim, arrivals, last, plan)
            served = True
    return served


def rack_plan(sim: Simulation, rack: Rack, plans: dict) -> Optional[RackPlan]:
    """How the rack's requests are served until something changes it, or None when they cannot be batched."""
    ipam = sim.ipam
    if any(h in sim.down for h in rack.hosts):
        return None
    key = (ipam.changes_on(sim.physnets_of(rack)), rack.name in sim.pending)
    known = plans.get(rack.name)
    if known is not None and known[0] == key:
        plan = known[1]
    else:
        plan = _plan(sim, rack)
        plans[rack.name] = (key, plan)
    if plan is None or plan.cut is None:
        return plan
    free, allocatable = ipam.free_on(rack.physnet), sum(len(p.free) for p in plan.pools)
    return RackPlan(plan.pools, plan.error, operator_cut(free, allocatable, int(sim.design.add_segment_at)))


def _plan(sim: Simulation, rack: Rack) -> Optional[RackPlan]:
    """The rack's pools (or refusal) and whether the operator watches it (cut 0 for yes, filled in by
    :func:`rack_plan` from the free count), or None when its requests cannot be batched."""
    ipam = sim.ipam
    if len({tuple(ipam.segments_of(h)) for h in rack.hosts}) != 1:
        return None
    try:
        pools, error = tuple(ipam.candidate_subnets(rack.hosts[0])), None
    except IpamError as exc:
        pools, error = (), exc
    if pools and {id(p) for p in pools} != {id(p) for p in ipam.on_physnet(rack.physnet)}:
        return None
    watching = rack.name not in sim.pending and sim.may_add(rack)
    return RackPlan(pools, error, 0 if watching else None)


def operator_cut(free: int, allocatable: int, threshold: int) -> Optional[int]:
    """After how many requests the rack's free addresses (*free*, of which each of the next *allocatable*
    requests takes one) reach *threshold*: the request after which the operator's watch fires.

    >>> operator_cut(100, 100, 0), operator_cut(100, 100, 30), operator_cut(10, 0, 20), operator_cut(50, 0, 20)
    (100, 70, 1, None)
    """
    if free - min(1, allocatable) <= threshold:
        return 1
    if free - allocatable <= threshold:
        return free - threshold
    return None


def serve(sim: Simulation, arrivals: RackArrivals, last: int, plan: RackPlan) -> None:
    """Serve the rack's requests up to *last* (exclusive) at once, under *plan*."""
    first = arrivals.next
    times = arrivals.times[first:last]
    served = 0
    for pool in plan.pools:
        take = min(len(pool.free), len(times) - served)
        if take <= 0:
            continue
        del pool.free[:take]
        sim.allocated_batch(arrivals, pool, first + served, first + served + take)
        served += take
    if served < len(times):
        error = plan.error or sim.exhausted(arrivals.rack)
        sim.refused_batch(arrivals, error, first + served, last)
    arrivals.next = last


__all__ = ["RackArrivals", "RackPlan", "draw", "operator_cut", "rack_plan", "run_demand", "serve", "serve_batches"]
