"""The built-in ``reachability`` scenario: a reachability matrix between VM ports.

The smallest end-to-end example of the twin: the model evaluates the
security-group policy; the emulation sends real packets (see the emulation
issue); the twin says every verdict matches.
"""

from labtwin.description import Cloud

from ..base import Scenario, Tolerance, lazy, on_default_topology
from ..refusals import refusing_emulation
from .spec import ReachabilityDesign


def routers_have_a_host(cloud: Cloud, design: ReachabilityDesign) -> list[str]:
    """The reachability emulation puts each router on the first network node, else the first host."""
    if cloud.routers and not cloud.hosts:
        return [f"a host to put router {cloud.routers[0].name!r} on (it has no hosts)"]
    return []


SCENARIO = Scenario(
    name="reachability",
    title="Reachability matrix between VM ports",
    default_topology="minimal.yaml",
    simulate=on_default_topology("minimal.yaml", lazy("labtwin.scenarios.reachability.model:simulate")),
    emulate=refusing_emulation(
        "reachability",
        on_default_topology("minimal.yaml", lazy("labtwin.scenarios.reachability.emulation:emulate")),
        routers_have_a_host,
    ),
    tolerances=(
        Tolerance("probe_count", why="both backends ask the same questions"),
        Tolerance(
            "allowed",
            why="every verdict must match: a real packet crossed real iptables or it did not (probes marked not "
            "compared left out on both sides)",
        ),
        Tolerance(
            "ovn_localnet_conflicts",
            why="control=ovn: (host, network) pairs where the host maps two or more segments of the network to "
            "its bridges (model, from the cloud) against the localnet ports each chassis's ovn-controller logged "
            "as skipped (emulation): equal",
        ),
    ),
    notebook="00-tour.ipynb",
    design_type=ReachabilityDesign,
)
