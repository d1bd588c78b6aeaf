"""Ask Neutron about one topology file, in a child process of its own.

Neutron's configuration and plugin registry are process-wide (one plugin stack per process), so
each cloud gets a fresh child: it starts the server, creates the cloud, compares, and sends the
differences back. The parent never imports Neutron.
"""

from __future__ import annotations

import multiprocessing
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from labtwin.description.loader import Declared, load_declared

from .compare import Difference


class OracleFailed(RuntimeError):
    """Neutron's server could not answer (not installed, failed to start, crashed): nothing compared."""


@dataclass(frozen=True)
class OracleReport:
    """What Neutron said about one file, beside labtwin: the differences (empty: they agree)."""

    path: str
    objects: int
    differences: tuple[Difference, ...]
    neutron_version: str
    seconds: float

    @property
    def agree(self) -> bool:
        return not self.differences


#: Seconds a child may take before it counts as hung (a start is ~4 s, a request up to ~0.3 s).
TIMEOUT_S = 300.0


def ask_neutron(path: Union[str, Path]) -> OracleReport:
    """Load *path* (a :class:`~labtwin.description.errors.CloudError` for a file labtwin refuses outright),
    then ask Neutron, in a child process, for every object; the differences from labtwin's answers."""
    declared = load_declared(path)
    started = time.perf_counter()
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(declared, send), daemon=True)
    child.start()
    send.close()
    try:
        if not receive.poll(TIMEOUT_S):
            raise OracleFailed(f"{path}: Neutron's server gave no answer in {TIMEOUT_S:.0f} s")
        kind, payload = receive.recv()
    except EOFError:
        raise OracleFailed(f"{path}: Neutron's server process ended without an answer") from None
    finally:
        child.join(5)
        if child.is_alive():
            child.kill()
    if kind == "error":
        raise OracleFailed(f"{path}: {payload}")
    differences, objects, version = payload
    return OracleReport(str(path), objects, tuple(differences), version, time.perf_counter() - started)


def _child(declared: Declared, send) -> None:
    try:
        send.send(("ok", _answers(declared)))
    except BaseException as exc:  # everything goes back to the parent, which names the file
        send.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}"))
    finally:
        send.close()


def _answers(declared: Declared) -> tuple[list[Difference], int, str]:
    from .compare import differences
    from .load import load_into_neutron
    from .server import NeutronServer

    cloud = declared.cloud
    given = "default_security_group_rules" in cloud.model_fields_set
    templates = [_template(rule) for rule in cloud.default_security_group_rules] if given else None
    server = NeutronServer(p.name for p in cloud.physnets).start(templates)
    macs = {p.name: p.mac_address for p in declared.resolved.ports if p.mac_address} if declared.resolved else {}
    load = load_into_neutron(declared.cloud, server, macs)
    return differences(declared, load), len(load.answers), neutron_version()


def _template(rule) -> dict:
    """A cloud's default rule as Neutron's API takes it (``any`` protocol is no protocol)."""
    body = rule.model_dump(mode="json")
    body["protocol"] = None if body["protocol"] == "any" else body["protocol"]
    return body


def neutron_version() -> str:
    from importlib.metadata import version

    return version("neutron")
