"""The built-in ``reachability`` scenario: a reachability matrix between VM ports.

The smallest end-to-end example of the twin: the model evaluates the
security-group policy; the emulation sends real packets (see the emulation
issue); the twin says every verdict matches.
"""

from typing import Optional

from labtwin.description import Cloud
from labtwin.description.flows import parse_flows
from labtwin.records import Run

from ..base import Knob, Scenario, Tolerance
from ..refusals import refusing_emulation
from . import emulation, model


def probe_list(text: str) -> str:
    """Check a probe list such as ``icmp,tcp:22`` (a bad entry is a knob error)."""
    return ",".join(str(flow) for flow in parse_flows(text))


def routers_have_a_host(cloud: Cloud, design: dict) -> list[str]:
    """The reachability emulation puts each router on the first network node, else the first host."""
    if cloud.routers and not cloud.hosts:
        return [f"a host to put router {cloud.routers[0].name!r} on (it has no hosts)"]
    return []


def simulate(cloud: Optional[Cloud], design: dict, seed: int, topology: str = "") -> Run:
    """The model on *cloud*, or on the scenario's default topology when none is given."""
    cloud, topology = SCENARIO.with_cloud(cloud, topology)
    return model.simulate(cloud, design, seed, topology)


def emulate(cloud: Optional[Cloud], design: dict, seed: int, topology: str = "", out_dir=None) -> Run:
    """The emulation on *cloud*, or on the scenario's default topology when none is given."""
    cloud, topology = SCENARIO.with_cloud(cloud, topology)
    return emulation.emulate(cloud, design, seed, topology, out_dir=out_dir)


SCENARIO = Scenario(
    name="reachability",
    title="Reachability matrix between VM ports",
    default_topology="minimal.yaml",
    knobs=(
        Knob(
            "probes",
            "icmp,tcp:22",
            "flows to try between every ordered pair of VM ports: icmp, tcp:PORT, udp:PORT",
            kind=probe_list,
        ),
    ),
    simulate=simulate,
    emulate=refusing_emulation("reachability", emulate, routers_have_a_host),
    tolerances=(
        Tolerance("probe_count", why="both backends ask the same questions"),
        Tolerance("allowed", why="every verdict must match: a real packet crossed real iptables or it did not"),
    ),
    notebook="00-tour.ipynb",
)
