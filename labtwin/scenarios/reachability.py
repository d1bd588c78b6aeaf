"""The built-in ``reachability`` scenario: a reachability matrix between VM ports.

The smallest end-to-end example of the twin: the model evaluates the
security-group policy; the emulation sends real packets (see the emulation
issue); the twin says every verdict matches.
"""

from ..emulation import reachability as emulation
from ..description.flows import parse_flows
from ..model import reachability as model
from .base import Knob, Scenario, Tolerance
from .refusals import refusing_emulation, routers_have_a_host


def probe_list(text: str) -> str:
    """Check a probe list such as ``icmp,tcp:22`` (a bad entry is a knob error)."""
    return ",".join(str(flow) for flow in parse_flows(text))


SCENARIO = Scenario(
    name="reachability",
    title="Reachability matrix between VM ports",
    default_topology="minimal.yaml",
    knobs=(
        Knob("probes", "icmp,tcp:22", "flows to try between every ordered pair of VM ports: icmp, tcp:PORT, udp:PORT",
             kind=probe_list),
    ),
    simulate=model.simulate,
    emulate=refusing_emulation("reachability", emulation.emulate, routers_have_a_host),
    tolerances=(
        Tolerance("probe_count", why="both backends ask the same questions"),
        Tolerance("allowed", why="every verdict must match: a real packet crossed real iptables or it did not"),
    ),
    notebook="00-tour.ipynb",
)
