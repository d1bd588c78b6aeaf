"""A traffic matrix through the network node: share, queueing delay, loss.

Flows of every class arrive as Poisson processes; the packets that cross the network node
(:mod:`labtwin.scenarios.dvr.model.paths`) queue at one finite-capacity FIFO server standing for the network
node's forwarding path; the others never meet it. A class's crossing is a fraction
(:func:`~labtwin.scenarios.dvr.matrix.crossing_fraction`): its weight stands for its packets out and back, and
its way out and its reply may differ (DVR's IPv6 leaves by ``fip-``, comes back by ``snat-``), so that fraction
of its bursts queue and the rest bypass. Simplifications, each a parameter:

- traffic moves in bursts of :data:`BURST_PACKETS` packets (a TCP window), each burst one way (out or
  reply), as many packets back as out (the matrix's symmetric-volume assumption); the server's service time
  is burst / ``nn_capacity_pps``. :func:`run_traffic` steps only the bursts the network node accepts and
  draws the rest as Poisson counts (the per-burst DES, :func:`run_traffic_per_burst`, is its reference);
- every flow offers :data:`FLOW_PPS` packets/s on average; the offered load is
  ``flows * FLOW_PPS``;
- the network node buffers :data:`NN_BUFFER_BURSTS` bursts (a NIC ring of
  ~2k packets); a burst that finds the buffer full is lost whole;
- DHCP and traffic to the VRRP VIP are small fixed shares
  (:data:`~labtwin.scenarios.dvr.matrix.DHCP_SHARE`, ``VIP_SHARE``) of the matrix; the rest splits by
  the fractions: ``ew_fraction`` east-west (same host vs cross host as the
  topology's routed VM pairs are placed), the north-south rest into IPv6
  (``ipv6_fraction``) and IPv4 with a floating IP (``fip_fraction``, half out,
  half in) or SNAT; with several routers each router's VMs offer their share
  (:func:`~labtwin.scenarios.dvr.matrix.traffic_matrix`).

None of these numbers is sourced; they set the scale of the load curve, not its shape.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from typing import Hashable, Mapping, TypeVar

import simpy

from ..knobs import FLOW_PPS

#: A matrix cell: any key, (router, class) in the scenario.
K = TypeVar("K", bound=Hashable)

BURST_PACKETS = 32
NN_BUFFER_BURSTS = 64


@dataclass
class TrafficStats:
    """What the DES counted; packets per class offered, forwarded by and lost at the network node."""

    offered: dict[Hashable, int] = field(default_factory=dict)  # by matrix cell: (router, class)
    nn_offered: int = 0
    nn_lost: int = 0
    delays: list[float] = field(default_factory=list)
    busy: float = 0.0
    duration: float = 0.0

    def summary(self, capacity_pps: float) -> dict:
        total = sum(self.offered.values())
        delays = sorted(self.delays)
        return {
            "offered_pps": total / self.duration if self.duration else 0.0,
            "nn_pps": (self.nn_offered - self.nn_lost) / self.duration if self.duration else 0.0,
            "network_node_share_sampled": self.nn_offered / total if total else 0.0,
            "nn_delay_ms_mean": 1e3 * sum(delays) / len(delays) if delays else 0.0,
            "nn_delay_ms_p95": 1e3 * delays[min(len(delays) - 1, int(0.95 * len(delays)))] if delays else 0.0,
            "nn_loss": self.nn_lost / self.nn_offered if self.nn_offered else 0.0,
            "nn_utilization": self.busy / self.duration if self.duration else 0.0,
        }


def arrivals(
    env: simpy.Environment,
    rng: random.Random,
    nn: simpy.Resource,
    stats: TrafficStats,
    weights: Mapping[K, float],
    crossing: Mapping[K, float],
    offered_pps: float,
    capacity_pps: float,
    duration: float,
):
    """All classes' bursts as one Poisson stream (the sum of the per-class ones), thinned by weight; a burst of a
    class crosses the network node with its crossing fraction (a draw only where the fraction is neither 0 nor 1)."""
    classes = [cls for cls, w in weights.items() if w > 0]
    parts = {cls: fraction(crossing, cls) for cls in classes}
    cum, acc = [], 0.0
    for cls in classes:
        acc += weights[cls]
        cum.append(acc)
    rate = offered_pps / BURST_PACKETS
    if rate <= 0 or not classes:
        return
    service = BURST_PACKETS / capacity_pps
    while True:
        yield env.timeout(rng.expovariate(rate))
        if env.now >= duration:
            return
        cls = rng.choices(classes, cum_weights=cum)[0]
        stats.offered[cls] = stats.offered.get(cls, 0) + BURST_PACKETS
        part = parts[cls]
        if part >= 1.0 or (part > 0.0 and rng.random() < part):
            stats.nn_offered += BURST_PACKETS
            if nn.count + len(nn.queue) >= NN_BUFFER_BURSTS:
                stats.nn_lost += BURST_PACKETS
                continue
            env.process(forward(env, nn, stats, service))


def forward(env: simpy.Environment, nn: simpy.Resource, stats: TrafficStats, service: float):
    """One burst through the network node: wait for the forwarding path, then occupy it."""
    arrived = env.now
    with nn.request() as turn:
        yield turn
        yield env.timeout(service)
    stats.busy += service
    stats.delays.append(env.now - arrived)


def run_traffic(
    weights: Mapping[K, float],
    crossing: Mapping[K, float],
    flows: int,
    capacity_pps: float,
    rng: random.Random,
    duration: float = 1.0,
) -> TrafficStats:
    """The matrix for *duration* simulated seconds, one step per burst the network node *accepts*.

    The same queue as :func:`run_traffic_per_burst` (one event per burst, every class), drawn from the same
    distributions, with what needs no event of its own aggregated: a burst that never meets the network node
    only adds to its class's count, and a burst that finds the buffer full is lost whole, so the bursts of a
    class are a Poisson count, and the arrivals while the buffer is full are a Poisson count of losses, after
    which (Poisson arrivals being memoryless) the next arrival comes an exponential time after the first
    departure. The work grows with what the network node forwards (its capacity), not with the offered load:
    10^6 flows take what 10^4 do. Agreement with the per-burst model: tests/scenarios/dvr/test_model.py.
    """
    import numpy as np

    stats = TrafficStats(duration=duration)
    draw = np.random.default_rng(rng.getrandbits(64))
    rate = flows * FLOW_PPS / BURST_PACKETS  # bursts per second, all classes
    classes = [cls for cls, w in weights.items() if w > 0]
    total = sum(weights[cls] for cls in classes)
    if rate <= 0 or not classes:
        return stats
    part = {cls: fraction(crossing, cls) for cls in classes}
    for cls in classes:  # the bursts that bypass the network node: a Poisson count per class
        if part[cls] < 1.0:
            bypass = weights[cls] * (1.0 - part[cls])
            stats.offered[cls] = BURST_PACKETS * int(draw.poisson(rate * bypass / total * duration))
    crossers = [cls for cls in classes if part[cls] > 0.0]
    share = sum(weights[cls] * part[cls] for cls in crossers) / total
    if not crossers:
        return stats
    arrived = _network_node_queue(stats, draw, rate * share, BURST_PACKETS / capacity_pps, duration)
    split = draw.multinomial(arrived, [weights[cls] * part[cls] / (share * total) for cls in crossers])
    for cls, bursts in zip(crossers, split):
        stats.offered[cls] = stats.offered.get(cls, 0) + BURST_PACKETS * int(bursts)
    return stats


def fraction(crossing: Mapping[K, float], cls: K) -> float:
    """*cls*'s crossing fraction (a class without one crosses nowhere; ``True`` is 1); refused outside [0, 1]."""
    part = float(crossing.get(cls, 0.0))
    if not 0.0 <= part <= 1.0:
        raise ValueError(f"crossing fraction of {cls!r} is {part}: a share of its packets, between 0 and 1")
    return part


def _network_node_queue(stats: TrafficStats, draw, rate: float, service: float, duration: float) -> int:
    """The FIFO of :data:`NN_BUFFER_BURSTS` bursts (the one being forwarded included) over Poisson arrivals
    at *rate*; fills *stats* and returns how many bursts arrived. Only accepted bursts are stepped through."""
    departures: deque = deque()  # of the accepted bursts still in the network node
    last_departure = 0.0
    arrived = 0
    t = draw.exponential(1 / rate)
    while t < duration:
        while departures and departures[0] <= t:
            departures.popleft()
        if len(departures) >= NN_BUFFER_BURSTS:  # full until its first departure: everything before is lost
            opens = min(departures[0], duration)
            lost = 1 + int(draw.poisson(rate * (opens - t)))  # this arrival, and those until the slot opens
            stats.nn_lost += BURST_PACKETS * lost
            arrived += lost
            t = opens + draw.exponential(1 / rate)
            continue
        arrived += 1
        last_departure = max(t, last_departure) + service
        departures.append(last_departure)
        if last_departure < duration:  # as the per-burst model, which stops at duration: finished bursts only
            stats.busy += service
            stats.delays.append(last_departure - t)
        t += draw.exponential(1 / rate)
    stats.nn_offered = BURST_PACKETS * arrived
    return arrived


def run_traffic_per_burst(
    weights: Mapping[K, float],
    crossing: Mapping[K, float],
    flows: int,
    capacity_pps: float,
    rng: random.Random,
    duration: float = 1.0,
) -> TrafficStats:
    """Run the matrix for *duration* simulated seconds on a fresh environment, one SimPy event per burst (the
    reference :func:`run_traffic` is checked against)."""
    env = simpy.Environment()
    nn = simpy.Resource(env, capacity=1)
    stats = TrafficStats(duration=duration)
    env.process(arrivals(env, rng, nn, stats, weights, crossing, flows * FLOW_PPS, capacity_pps, duration))
    env.run(until=duration)
    return stats
