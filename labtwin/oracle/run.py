"""Ask Neutron about topology files, each in a child process of its own.

Neutron's configuration and plugin registry are process-wide (one plugin stack per process), so
each cloud gets a fresh child: it starts the server, creates the cloud and sends Neutron's answers
back; the parent, which never imports Neutron, compares them with labtwin's. The parent keeps the
answers by request (:data:`_ANSWERED`): asking again with the same request costs nothing.

For many files, :func:`ask_neutron_many` starts one *zygote* that imports Neutron once (~3 s). Clouds
that need the same server (the same physnets and default rule templates: :func:`_server_key`) go in
batches; a batch process forked from the zygote starts that server once (~2 s: ML2's type drivers, the
default rule templates) and forks one child per cloud from the started server, so each cloud still
has a database of its own (fork copies the in-memory database) and pays only for its own requests.
A few batches run at a time.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import multiprocessing
import multiprocessing.connection
import os
import pickle
import tempfile
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Iterable, Optional, Union

from labtwin.description.loader import Declared, load_declared

from .compare import Difference, differences
from .load import NeutronLoad


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


#: Neutron's answers already given in this process, by the exact request (:func:`_request_key`): the same
#: server asked to create the same objects answers the same way, so asking again only costs time. (For a
#: port without a fixed address Neutron picks one of the free addresses at random; the answer kept is one
#: such pick, and the comparison accepts any: see :mod:`labtwin.oracle.compare`.)
_ANSWERED: dict[str, tuple[NeutronLoad, str]] = {}


def ask_neutron(path: Union[str, Path]) -> OracleReport:
    """Load *path* (a :class:`~labtwin.description.errors.CloudError` for a file labtwin refuses outright),
    then ask Neutron, in a child process, for every object; the differences from labtwin's answers."""
    _collect_prefetched()
    declared = load_declared(path)
    started = time.perf_counter()
    key = _request_key(declared)
    if key not in _ANSWERED:
        work = lambda: _neutrons_answers(declared, _start_server(_server_key(declared)))  # noqa: E731 - in the child
        kind, payload = _in_child(multiprocessing.get_context("fork"), work)
        if kind == "error":
            raise OracleFailed(f"{path}: {payload}")
        _ANSWERED[key] = payload
    return _report(str(path), declared, *_ANSWERED[key], time.perf_counter() - started)


def ask_neutron_many(paths: Iterable[Union[str, Path]], workers: int = 0) -> list[OracleReport]:
    """:func:`ask_neutron` for each of *paths*, in order: batches of clouds that need the same server, forked
    from one zygote that imported Neutron once, *workers* batches at a time (0: one per CPU). The first file
    Neutron cannot answer raises :class:`OracleFailed` naming it."""
    _collect_prefetched()
    declared = [(str(p), load_declared(p)) for p in paths]
    keys = [_request_key(one) for _, one in declared]
    unanswered = [(path, one) if key not in _ANSWERED else None for (path, one), key in zip(declared, keys)]
    seconds: dict[int, float] = {}
    for index, payload, took in _ask_in_batches(unanswered, workers or os.cpu_count() or 1):
        _ANSWERED[keys[index]] = payload
        seconds[index] = took
    return [
        _report(path, one, *_ANSWERED[key], seconds.get(index, 0.0))
        for index, ((path, one), key) in enumerate(zip(declared, keys))
    ]


def _ask_in_batches(declared: list[Optional[tuple[str, Declared]]], workers: int):
    """Neutron's answers for each cloud of *declared* that is not None: ``(index, answers, seconds)``, in the
    order they come."""
    asked = [(index, path, one) for index, item in enumerate(declared) if item is not None for path, one in [item]]
    if not asked:
        return
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    zygote = context.Process(target=_zygote, args=(_batches(asked), workers, send))
    zygote.start()
    send.close()
    try:
        for _ in asked:
            if not receive.poll(TIMEOUT_S + 30):
                raise OracleFailed(f"Neutron's server gave no answer in {TIMEOUT_S:.0f} s")
            index, path, kind, payload, seconds = receive.recv()
            if kind == "error":
                raise OracleFailed(f"{path}: {payload}")
            yield index, payload, seconds
    except EOFError:
        raise OracleFailed("Neutron's server processes ended without an answer") from None
    finally:
        zygote.join(5)
        if zygote.is_alive():
            zygote.kill()


@dataclass
class _Prefetch:
    process: multiprocessing.process.BaseProcess
    answers: Path


#: Answers being asked for in the background (:func:`prefetch`), collected by the next ask.
_PREFETCHING: Optional[_Prefetch] = None


def prefetch(paths: Iterable[Union[str, Path]], niceness: int = 10) -> None:
    """Start asking Neutron about *paths* in a background process at a lower priority (*niceness*), and return at
    once: a test session overlaps the oracle's few CPU-minutes with tests that mostly wait (emulation, notebooks).
    The next :func:`ask_neutron` or :func:`ask_neutron_many` waits for it and keeps its answers. A prefetch that
    fails is dropped without a word: the ask then asks Neutron itself, and its own error names the file."""
    global _PREFETCHING
    _collect_prefetched()  # at most one at a time
    fd, name = tempfile.mkstemp(prefix="labtwin-oracle-", suffix=".pickle")
    os.close(fd)
    # Not a daemon: it forks the zygote, which a daemon may not; atexit kills it if nobody collected it.
    process = multiprocessing.get_context("fork").Process(
        target=_prefetch_child, args=([str(p) for p in paths], niceness, name)
    )
    process.start()
    _PREFETCHING = _Prefetch(process, Path(name))
    atexit.register(_drop_prefetch, _PREFETCHING)


def _prefetch_child(paths: list[str], niceness: int, answers: str) -> None:
    """Every answer, pickled into *answers*; on any failure nothing (the foreground ask reports it)."""
    try:
        os.nice(niceness)
        declared = [load_declared(p) for p in paths]
        keys = [_request_key(one) for one in declared]
        found = {}
        for index, payload, _ in _ask_in_batches(list(zip(paths, declared)), os.cpu_count() or 1):
            found[keys[index]] = payload
        Path(answers).write_bytes(pickle.dumps(found))
    except BaseException:  # noqa: BLE001 - reported by the ask that follows, which asks again
        os._exit(1)


def _collect_prefetched() -> None:
    """Wait for a running prefetch and keep its answers (none when it failed)."""
    global _PREFETCHING
    pending, _PREFETCHING = _PREFETCHING, None
    if pending is None:
        return
    pending.process.join(TIMEOUT_S * 4)
    if pending.process.exitcode == 0 and pending.answers.stat().st_size:
        _ANSWERED.update(pickle.loads(pending.answers.read_bytes()))
    _drop_prefetch(pending)


def _drop_prefetch(pending: _Prefetch) -> None:
    if pending.process.is_alive():
        pending.process.kill()
        pending.process.join(5)
    pending.answers.unlink(missing_ok=True)


def _report(path: str, declared: Declared, load: NeutronLoad, version: str, seconds: float) -> OracleReport:
    return OracleReport(path, len(load.answers), tuple(differences(declared, load)), version, seconds)


def _request_key(declared: Declared) -> str:
    """Everything Neutron is sent for *declared*: the server it needs, the cloud as written, labtwin's MACs."""
    macs = sorted(_macs(declared).items())
    request = [_server_key(declared), declared.cloud.model_dump(mode="json"), macs]
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()


def _macs(declared: Declared) -> dict[str, str]:
    """labtwin's MACs for the ports that have one (Neutron's own are random; SLAAC addresses come from them)."""
    if declared.resolved is None:
        return {}
    return {p.name: p.mac_address for p in declared.resolved.ports if p.mac_address}


#: One cloud of a batch: its index among the files asked about, its path, what labtwin read.
Job = tuple[int, str, Declared]

#: Clouds per batch at most: large groups are split so that the batches keep every worker busy.
BATCH = 8


def _batches(asked: list[Job]) -> list[list[Job]]:
    """The clouds grouped by the server they need, each group cut into batches of at most :data:`BATCH`
    (of near-equal size), largest batches first."""
    groups: dict[tuple, list[Job]] = {}
    for job in asked:
        groups.setdefault(_server_key(job[2]), []).append(job)
    batches: list[list[Job]] = []
    for jobs in groups.values():
        count = -(-len(jobs) // BATCH)
        batches.extend(jobs[k::count] for k in range(count))
    return sorted(batches, key=len, reverse=True)


def _server_key(declared: Declared) -> tuple:
    """What a started server depends on: the cloud's physnets (ML2's VLAN ranges) and its default rule
    templates (``None``: Neutron's own)."""
    cloud = declared.cloud
    physnets = tuple(sorted({p.name for p in cloud.physnets}))
    templates = default_rule_templates(cloud)
    if templates is None:
        return physnets, None
    return physnets, tuple(json.dumps(template, sort_keys=True) for template in templates)


def default_rule_templates(cloud) -> Optional[list[dict]]:
    """The cloud's ``default_security_group_rules`` as Neutron's default-rule templates (None: the file keeps
    Neutron's own), for a server to start with."""
    if "default_security_group_rules" not in cloud.model_fields_set:
        return None
    return [_template(rule) for rule in cloud.default_security_group_rules]


def _start_server(key: tuple):
    from .server import NeutronServer

    physnets, templates = key
    return NeutronServer(physnets).start(None if templates is None else [json.loads(t) for t in templates])


def _zygote(batches: list[list[Job]], workers: int, send) -> None:
    """Import Neutron once, then fork a process per batch, *workers* at a time; every answer goes to *send*
    (a batch that ends early answers for its clouds with an error)."""
    try:
        _preload()
        context = multiprocessing.get_context("fork")
        pending = list(batches)
        running: dict = {}
        while pending or running:
            while pending and len(running) < workers:
                batch = pending.pop(0)
                receive, batch_send = context.Pipe(duplex=False)
                process = context.Process(target=_batch, args=(batch, batch_send))
                process.start()
                batch_send.close()
                running[receive] = (process, {index: path for index, path, _ in batch})
            ready = multiprocessing.connection.wait(list(running), timeout=TIMEOUT_S)
            if not ready:
                _, unanswered = next(iter(running.values()))
                index, path = next(iter(unanswered.items()))
                send.send((index, path, "error", f"no answer in {TIMEOUT_S:.0f} s", 0.0))
                return
            for answered in ready:
                connection: Connection = answered  # type: ignore[assignment]  # wait() gives back what it was given
                process, unanswered = running[answered]
                try:
                    message = connection.recv()
                except EOFError:
                    for index, path in unanswered.items():
                        send.send((index, path, "error", "Neutron's server process ended without an answer", 0.0))
                    process.join(5)
                    del running[answered]
                    continue
                unanswered.pop(message[0], None)
                send.send(message)
    except BaseException as exc:
        send.send((-1, "(zygote)", "error", f"{type(exc).__name__}: {exc}", 0.0))
    finally:
        for process, _ in locals().get("running", {}).values():
            process.kill()
        send.close()


def _batch(batch: list[Job], send) -> None:
    """Start the server *batch* needs, then answer for each cloud in a child forked from it."""
    try:
        try:
            server = _start_server(_server_key(batch[0][2]))
        except BaseException as exc:
            failure = f"Neutron's server did not start: {type(exc).__name__}: {exc}"
            for index, path, _ in batch:
                send.send((index, path, "error", failure, 0.0))
            return
        context = multiprocessing.get_context("fork")
        for index, path, one in batch:
            started = time.perf_counter()
            kind, payload = _in_child(context, lambda: _neutrons_answers(one, server, forked=True))
            send.send((index, path, kind, payload, time.perf_counter() - started))
    finally:
        send.close()


def _in_child(context, work):
    """*work*'s answer, computed in a child process: ``("ok", answer)`` or ``("error", what happened)``."""
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(work, send), daemon=True)
    child.start()
    send.close()
    try:
        if not receive.poll(TIMEOUT_S):
            return "error", f"no answer in {TIMEOUT_S:.0f} s"
        return receive.recv()
    except EOFError:
        return "error", "Neutron's server process ended without an answer"
    finally:
        child.join(5)
        if child.is_alive():
            child.kill()


def _preload() -> None:
    """What every child imports anyway (Neutron's plugins and models), imported once in the zygote."""
    from .server import preload_neutron

    preload_neutron()


def _child(work, send) -> None:
    try:
        send.send(("ok", work()))
    except BaseException as exc:  # everything goes back to the parent, which names the file
        send.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}"))
    finally:
        send.close()


def _neutrons_answers(declared: Declared, server, forked: bool = False) -> tuple[NeutronLoad, str]:
    """Create *declared*'s cloud in the started *server*: every answer, and Neutron's version. *forked*:
    this process was forked from the one that started *server*."""
    from .load import load_into_neutron
    from .server import adopt_database_after_fork

    if forked:
        adopt_database_after_fork()
    return load_into_neutron(declared.cloud, server, _macs(declared)), neutron_version()


def _template(rule) -> dict:
    """A cloud's default rule as Neutron's API takes it (``any`` protocol is no protocol)."""
    body = rule.model_dump(mode="json")
    body["protocol"] = None if body["protocol"] == "any" else body["protocol"]
    return body


def neutron_version() -> str:
    from importlib.metadata import version

    return version("neutron")
