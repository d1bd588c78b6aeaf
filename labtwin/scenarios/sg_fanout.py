"""The ``sg-fanout`` scenario: a port joins a security group that references itself.

Asks, per firewall strategy, how many data-plane objects a join rewrites,
how many rules that writes, and how long until the new port is usable by
every member (Train PTG: 170 members -> 171 updates today, 2 with a
per-group subtable; 150+ ports -> up to 5 minutes to bring a port up).

Without ``--topology`` the cloud is generated from the knobs (members,
hosts, placement). With a topology file, the group is its self-referencing
group with the most members and the hosts are the file's hosts; the knobs
``members`` and ``hosts`` are then ignored (the run's summary says so in
``note``). ``default_topology`` names a small realistic file for notebooks
and the emulation; the model does not need it.
"""

from ..model import sg_fanout as model
from ..model.sg_fanout_strategies import FIREWALLS
from .base import Knob, Scenario, Tolerance


def positive(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


SCENARIO = Scenario(
    name="sg-fanout",
    title="Security-group remote-group fanout: updates, rules and time to ready per firewall strategy",
    default_topology="sg-fanout.yaml",
    knobs=(
        Knob("firewall", "iptables", "iptables (hybrid, per-member rules, no ipset) | ipset | ovs (native, conjunction) "
             "| subtable (PTG proposal: one table per remote group per host)", choices=FIREWALLS),
        Knob("members", 20, "existing members of the group (generated cloud only)", kind=positive),
        Knob("hosts", 2, "compute hosts, each running an L2 agent (generated cloud only)", kind=positive),
        Knob("placement", "spread", "packed: members and joins on the first host; spread: round-robin over hosts",
             choices=("packed", "spread")),
        Knob("joins", 1, "ports that join the group, one API call per join_interval_s", kind=positive),
        Knob("leaves", 0, "existing members deleted after the joins", kind=positive),
        Knob("profile", "train-2019", "cost profile: a name (train-2019) or a profile JSON file (labtwin calibrate)"),
    ),
    simulate=model.simulate,
    tolerances=(
        Tolerance("updates_total", absolute=0, why="counts come from semantics on both sides: they must be equal"),
        Tolerance("refreshes_total", absolute=0, why="port filters recomputed: equal by construction of the workload"),
        Tolerance("port_ready_s", relative=0.3, absolute=2.0,
                  why="the model uses a profile, the emulation real time; 2 s absorbs one agent-loop tick"),
    ),
    needs_topology=False,
    notebook="sg-fanout.ipynb",
)
