"""The ``neighbours`` scenario: which VM ports share an L2 network, and so reach each other without a router.

A tiny example of a scenario built the way README's "Add a scenario" says: this folder (spec, model,
emulation) plus one registry line, a topology and a test folder. It studies nothing new: it is here so
that a newcomer has a complete, small scenario to copy, and so that the test suite proves the recipe
works (``tests/example_scenario/test_neighbours.py``).

A simplification, stated: security groups are ignored on both sides (the emulation writes no filter,
and the model asks only whether two ports are on one network), so a topology for it turns port
security off (Neutron then filters nothing and puts the ports in no group).
"""

from labtwin.description import Cloud
from labtwin.scenarios.base import Scenario, Tolerance
from labtwin.scenarios.refusals import refusing_emulation

from . import emulation, model
from .spec import NeighboursDesign


def ports_to_ask(cloud: Cloud, design: dict) -> list[str]:
    """What a cloud lacks for this scenario: two bound VM ports with an address, none of them filtered."""
    lacks = []
    if len([p for p in cloud.vm_ports if p.host and p.ips]) < 2:
        lacks.append("two VM ports bound to a host, each with a fixed IP")
    if any(p.security_groups for p in cloud.vm_ports):
        lacks.append("VM ports without filtering: port_security_enabled false (this example ignores security groups)")
    return lacks


SCENARIO = Scenario(
    name="neighbours",
    title="Which VM ports share an L2 network (an example scenario)",
    default_topology="neighbours.yaml",
    simulate=model.simulate,
    emulate=refusing_emulation("neighbours", emulation.emulate, ports_to_ask),
    tolerances=(
        Tolerance("probe_count", why="both backends ask the same pairs"),
        Tolerance("allowed", why="every verdict must match"),
    ),
    missing=ports_to_ask,
    design_type=NeighboursDesign,
)
