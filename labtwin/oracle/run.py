"""Ask Neutron about topology files, each in a child process of its own.

Neutron's configuration and plugin registry are process-wide (one plugin stack per process), so
each cloud gets a fresh child: it starts the server, creates the cloud, compares, and sends the
differences back. The parent never imports Neutron. For many files, :func:`ask_neutron_many` starts
one *zygote* that imports Neutron once (~2.5 s of the ~5 s a cloud costs) and forks the children from
it, a few at a time.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Iterable, Union

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


def ask_neutron_many(paths: Iterable[Union[str, Path]], workers: int = 0) -> list[OracleReport]:
    """:func:`ask_neutron` for each of *paths*, in order: children forked from one zygote that imported
    Neutron once, *workers* at a time (0: one per CPU). The first file Neutron cannot answer raises
    :class:`OracleFailed` naming it."""
    declared = [(str(p), load_declared(p)) for p in paths]
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    zygote = context.Process(target=_zygote, args=(declared, workers or os.cpu_count() or 1, send))
    zygote.start()
    send.close()
    reports: dict[int, OracleReport] = {}
    try:
        while len(reports) < len(declared):
            if not receive.poll(TIMEOUT_S + 30):
                raise OracleFailed(f"Neutron's server gave no answer in {TIMEOUT_S:.0f} s ({len(reports)} answered)")
            index, path, kind, payload, seconds = receive.recv()
            if kind == "error":
                raise OracleFailed(f"{path}: {payload}")
            differences, objects, version = payload
            reports[index] = OracleReport(path, objects, tuple(differences), version, seconds)
    except EOFError:
        raise OracleFailed("Neutron's server processes ended without an answer") from None
    finally:
        zygote.join(5)
        if zygote.is_alive():
            zygote.kill()
    return [reports[i] for i in range(len(declared))]


def _zygote(declared: list[tuple[str, Declared]], workers: int, send) -> None:
    """Import Neutron once, then fork a child per cloud, *workers* at a time; each answer goes to *send*."""
    try:
        _preload()
        context = multiprocessing.get_context("fork")
        pending = list(enumerate(declared))
        running: dict = {}
        while pending or running:
            while pending and len(running) < workers:
                index, (path, one) = pending.pop(0)
                receive, child_send = context.Pipe(duplex=False)
                child = context.Process(target=_child, args=(one, child_send), daemon=True)
                child.start()
                child_send.close()
                running[receive] = (index, path, child, time.perf_counter())
            ready = multiprocessing.connection.wait(list(running), timeout=TIMEOUT_S)
            if not ready:
                index, path, _, _ = next(iter(running.values()))
                send.send((index, path, "error", f"no answer in {TIMEOUT_S:.0f} s", 0.0))
                return
            for answered in ready:
                index, path, child, started = running.pop(answered)
                connection: Connection = answered  # type: ignore[assignment]  # wait() gives back what it was given
                try:
                    kind, payload = connection.recv()
                except EOFError:
                    kind, payload = "error", "Neutron's server process ended without an answer"
                child.join(5)
                if child.is_alive():
                    child.kill()
                send.send((index, path, kind, payload, time.perf_counter() - started))
    except BaseException as exc:
        send.send((-1, "(zygote)", "error", f"{type(exc).__name__}: {exc}", 0.0))
    finally:
        for _, _, child, _ in locals().get("running", {}).values():
            child.kill()
        send.close()


def _preload() -> None:
    """What every child imports anyway (Neutron's plugins and models), imported once in the zygote."""
    from .server import preload_neutron

    preload_neutron()


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
