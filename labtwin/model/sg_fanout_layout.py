"""Moved to :mod:`labtwin.description.sg_fanout` (the emulation uses the same layout); re-exported here."""

from ..description.sg_fanout import (  # noqa: F401
    Layout,
    Member,
    generated_layout,
    layout_from_cloud,
    probe_of,
    self_referencing_group,
)
