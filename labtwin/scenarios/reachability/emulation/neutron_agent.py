"""``control=neutron``: Neutron 29's own agent writes every emulated host's security-group filter.

After the realisation (built without labtwin's filters), one worker per host that
has ports (:mod:`labtwin.emulation.neutron_agent`) starts with the whole cloud on
its server side: every group with its rules and every port with addresses (members
on other hosts count for remote groups). Its agent then prepares the filters of the
host's own ports in one ``rpc_loop`` iteration, as an OVS agent does for devices it
finds at start, with ipset (Neutron's default). The probes then run unchanged.
"""

from __future__ import annotations

import time

from labtwin.description import Cloud
from labtwin.emulation.neutron_agent import in_parallel, start_worker
from labtwin.emulation.neutron_agent.objects import group_dict, port_dict
from labtwin.emulation.plan import Plan, checked_mac, derived_mac
from labtwin.records import Recorder


def program_hosts(real, cloud: Cloud, the_plan: Plan, recorder: Recorder, t0: float) -> dict[str, int]:
    """Start Neutron's agent on each host with ports and let it filter them; Neutron's calls, summed."""
    macs = {e.port: e.mac for e in the_plan.endpoints.values()}
    groups = [group_dict(g.name, g.rules) for g in cloud.security_groups]
    ports = [
        port_dict(p, macs.get(p.name) or checked_mac(p.mac_address or derived_mac(p.id))) for p in cloud.ports if p.ips
    ]
    local: dict[str, list[str]] = {}
    for endpoint in the_plan.endpoints.values():
        port = cloud.port[endpoint.port]
        local.setdefault(port.host or "", []).append(str(port.id))
    keys = {n.subject: n.key for n in the_plan.namespaces if n.role == "host"}
    workers = [start_worker(real, keys[host], host) for host in local]
    answers: dict[str, dict] = {}  # one key per thread: no counter shared between them

    def program(worker) -> None:
        start = time.perf_counter()
        worker.start(groups, ports, "ipset")
        answers[worker.host] = worker.iteration([], local[worker.host], [])
        recorder.operation(
            "neutron_agent", worker.host, start - t0, time.perf_counter() - start, len(local[worker.host])
        )

    in_parallel(program, workers)
    calls: dict[str, int] = {}
    for answer in answers.values():
        for method, n in answer["calls"].items():
            calls[method] = calls.get(method, 0) + n
    return dict(sorted(calls.items()))


def _mac(port) -> str:
    """The MAC the realisation gives a port (the plan's rule), for ports it did not realise."""
    return checked_mac(port.mac_address or derived_mac(port.id))
