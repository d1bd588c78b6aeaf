"""Reading an sg-fanout host's firewall state from the kernel (raw dumps; :mod:`.state` parses them).

Shared by both controls (labtwin's agent and Neutron's): whoever wrote the
state, it is read and counted the same way.
"""

from __future__ import annotations

import time

from labtwin.emulation.runner import Runner, Step, in_netns

#: What each dump of a converged host must contain; a dump without it is a failed read, not "no rules".
EXPECTED_IN_DUMP = {"iptables": "*filter", "nft": "table ip filter", "flows": "cookie="}


def read_hybrid(host: str, runner: Runner, pid: int) -> dict:
    """iptables-save, the nft rule handles and ipset save of the host namespace held by *pid*."""
    out = {}
    for key, argv in (
        ("iptables", ("iptables-save",)),
        ("nft", ("nft", "-a", "list", "table", "ip", "filter")),
        ("ipset", ("ipset", "save")),
    ):
        out[key] = runner.run(Step(in_netns(pid, argv), what=f"{host}: read {key}")).stdout
    return _stamped(host, out)


def read_flows(host: str, runner: Runner, bridge: str) -> dict:
    """dump-flows of the host's integration bridge."""
    out = {"flows": runner.run(Step(("ovs-ofctl", "dump-flows", bridge), what=f"{host}: dump-flows")).stdout}
    return _stamped(host, out)


def _stamped(host: str, dumps: dict) -> dict:
    require_content(host, dumps)
    dumps["t"] = time.perf_counter()
    return dumps


def require_content(host: str, dumps: dict) -> None:
    """Raise when a dump lacks what every converged host has (a count must never come from an empty read)."""
    for key, marker in EXPECTED_IN_DUMP.items():
        if key in dumps and marker not in dumps[key]:
            raise RuntimeError(
                f"{host}: the {key} dump has no {marker!r}: the read failed or returned nothing "
                f"({len(dumps[key])} characters)"
            )
