"""Is the PTG's "up to 5 minutes" still true? Neutron 29's own firewall code, joined into a big group.

The PTG (Train, 2019) said a port joining a large self-referencing group could wait up to five
minutes for its filters. Here Neutron 29.0.0's own agent code (``control=neutron``: its
``SecurityGroupAgentRpc`` with the hybrid iptables driver, with ipset, or the OVS firewall on the
host's own OVS) programs one emulated host holding every
member (``placement=packed``), and a port joins: the time until it is reachable from a member
(``port_ready_s``, the fastest of 3 timed joins, as the twin measures) and the first agent
iteration (``agent_iteration``), at 50, 150 and 300 members (``SIZES`` and ``FIREWALLS`` env vars to
change).

Beside each measurement, the model's prediction of the same join in a deployment (a 2 s agent
loop, the API and Nova before the port is plugged): with ``train-2019`` (the 2019 costs, derived
from the PTG's own number) and with ``neutron-29`` (the same deployment, the data-plane apply
calibrated from Neutron 29's own code on a machine of this kind). The baseline in the same run is
the emulation's own fixed part: the same join under labtwin's agent.

Needs root and Open vSwitch; about 16 minutes at the default sizes (300 members dominate).
"""

from __future__ import annotations

import os

from labtwin import api
from labtwin.records import Operation

SIZES = tuple(int(s) for s in os.environ.get("SIZES", "50,150,300").split(","))
FIREWALLS = tuple(os.environ.get("FIREWALLS", "iptables,ipset,ovs").split(","))


def skip_reason():
    ok, reasons = api.emulation_possible()
    return None if ok else "; ".join(reasons)


def knobs(firewall: str, members: int) -> dict:
    return {"firewall": firewall, "members": members, "hosts": 1, "placement": "packed", "timing_repeats": 3}


def seconds(ready) -> str:
    """A time to ready, or why there is none: the emulation's poller gives up after 30 s (its iteration, the
    agent's own work, is still measured)."""
    return f"{ready:.3f}" if ready is not None else "not within 30"


def first_iteration(run) -> float:
    return next(r.duration for r in run.records if isinstance(r, Operation) and r.op == "agent_iteration")


def main() -> None:
    print(
        f"{'firewall':>8} {'members':>7} | {'Neutron 29 ready s':>18} {'its iteration s':>15} "
        f"{'labtwin agent s':>15} | {'model train-2019 s':>18} {'model neutron-29 s':>18}"
    )
    for firewall in FIREWALLS:
        for members in SIZES:
            neutron = api.emulate("sg-fanout", control="neutron", **knobs(firewall, members))
            ours = api.emulate("sg-fanout", control="labtwin", **knobs(firewall, members))
            old = api.simulate("sg-fanout", profile="train-2019", **knobs(firewall, members))
            new = api.simulate("sg-fanout", profile="neutron-29", control="neutron", **knobs(firewall, members))
            print(
                f"{firewall:>8} {members:>7} | {seconds(neutron.summary['port_ready_s']):>18} "
                f"{first_iteration(neutron):>15.3f} {seconds(ours.summary['port_ready_s']):>15} | "
                f"{old.summary['port_ready_s']:>18.2f} {new.summary['port_ready_s']:>18.2f}",
                flush=True,
            )
    print(
        "model columns: a deployment's join (API, Nova, a 2 s agent loop); Neutron 29 columns: the agent's "
        "work alone, from the moment the server's notification reaches it"
    )


if __name__ == "__main__":
    main()
