"""What the model and the emulation of ``neighbours`` share: which pairs are asked, and how."""

from __future__ import annotations

from itertools import permutations

from labtwin.description import Cloud, Port
from labtwin.scenarios.base import Design

#: The one question asked of every ordered pair.
FLOW = "icmp"


def pairs(cloud: Cloud) -> list[tuple[Port, Port]]:
    """Every ordered pair of bound VM ports with an address, in a stable order."""
    ports = [p for p in cloud.vm_ports if p.host and p.ips]
    return list(permutations(ports, 2))


class NeighboursDesign(Design):
    """The design of ``neighbours``: one typed, frozen value per knob."""

    timeout: float
