"""Neutron's own server as the oracle for labtwin's description layer.

``labtwin validate --neutron FILE`` loads a topology into Neutron 29's real API server (ML2 with the
segments and router plugins, in-process over sqlite: :mod:`.server`), object by object as an
operator would (:mod:`.load`), and compares every answer — addresses given, deferred allocations,
refusals with their exception — with labtwin's own loader (:mod:`.compare`). Where they differ,
Neutron is right. The fast path stays labtwin's loader; the oracle is how we know it is right.

A horizontal engine: it imports the description layer only, never a scenario.
"""

from .compare import Difference
from .run import OracleFailed, OracleReport, ask_neutron, ask_neutron_many

__all__ = ["Difference", "OracleFailed", "OracleReport", "ask_neutron", "ask_neutron_many"]
