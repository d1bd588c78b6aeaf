"""What the model and the emulation of ``multisegment`` share: its design."""

from __future__ import annotations

from labtwin.scenarios.base import Design


class MultisegmentDesign(Design):
    """The design of the multisegment scenario: one typed, frozen value per knob
    (its Scenario parses and bounds-checks them)."""

    segments_per_host: str
    bridge_naming: str
    agent: str
    max_prefix: int
    racks: int
    hosts_per_rack: int
    demand: int
    days: float
    add_segment_at: int
    lead_time_h: float
    operator: str
    migration: str
    migrate_at: float
