"""What the model and the emulation of ``reachability`` share: its design."""

from __future__ import annotations

from labtwin.scenarios.base import Design


class ReachabilityDesign(Design):
    """The design of the reachability scenario: one typed, frozen value per knob
    (its Scenario parses and bounds-checks them)."""

    probes: str
