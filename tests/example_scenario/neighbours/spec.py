"""What the model and the emulation of ``neighbours`` share: which pairs are asked, and how."""

from __future__ import annotations

from itertools import permutations

from labtwin.description import Cloud, Port
from labtwin.scenarios.base import Design, Knob, bounded

#: The one question asked of every ordered pair.
FLOW = "icmp"


def pairs(cloud: Cloud) -> list[tuple[Port, Port]]:
    """Every ordered pair of bound VM ports with an address, in a stable order."""
    ports = [p for p in cloud.vm_ports if p.host and p.ips]
    return list(permutations(ports, 2))


#: The knobs: name, default, help and bounds (checked here and nowhere else).
KNOBS: tuple[Knob, ...] = (
    Knob("timeout", 0.5, f"seconds each {FLOW} probe waits for its answer (emulation)", kind=bounded(float, 0.1, 5.0)),
)


class NeighboursDesign(Design):
    """The design of ``neighbours``: one typed, frozen value per knob."""

    KNOBS = KNOBS

    timeout: float
