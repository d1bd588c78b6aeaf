"""The one runner: every effect the emulation has on the machine goes through here.

A :class:`Step` is data: an argv list (never a shell string), optional stdin
text (for ``ip -batch -``, ``iptables-restore``, ``ipset restore``), a
timeout, and the ledger :class:`~labtwin.emulation.ledger.Item` s it creates.
:class:`Runner` appends those items to the ledger *before* running the step,
so a run killed at any point leaves a ledger that names everything it may have
created. ``Runner(dry_run=True)`` records the steps without executing them,
which is how the plan is unit-tested without root.

Every argv's program must be declared in :mod:`~labtwin.emulation.programs`
(checked in dry runs too), and a declared program that is not installed is a
:class:`~labtwin.emulation.programs.MissingProgram` error naming its Debian
package, even for a step with ``check=False``: a missing program never reads as
empty output.

>>> runner = Runner(dry_run=True)
>>> runner.run(Step(("ip", "link", "show"), what="list links")).returncode
0
>>> runner.steps[0].argv
('ip', 'link', 'show')
"""

from __future__ import annotations

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Iterable, Optional, Sequence

from .ledger import Item, Ledger
from .programs import declared, require


class StepFailed(RuntimeError):
    """A step exited non-zero (or timed out) while ``check`` was set."""

    def __init__(self, result: "Result") -> None:
        step = result.step
        super().__init__(
            f"{step.what or step.argv[0]} failed (exit {result.returncode}): "
            f"{' '.join(step.argv)}\n{result.stderr.strip()[-2000:]}"
        )
        self.result = result


@dataclass(frozen=True)
class Step:
    """One command to run: argv, stdin, timeout, and what it creates."""

    argv: tuple[str, ...]
    what: str = ""
    stdin: Optional[str] = None
    timeout: float = 30.0
    check: bool = True
    creates: tuple[Item, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.argv, str) or not all(isinstance(a, str) for a in self.argv):
            raise TypeError(f"argv must be a sequence of str, not {self.argv!r}")
        object.__setattr__(self, "argv", tuple(self.argv))


@dataclass(frozen=True)
class Result:
    step: Step
    returncode: int
    stdout: str = ""
    stderr: str = ""
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def in_netns(pid: int, argv: Sequence[str]) -> tuple[str, ...]:
    """*argv* run inside the network namespace of process *pid* (nsenter, no shell).

    >>> in_netns(42, ["ip", "-o", "link"])
    ('nsenter', '--net=/proc/42/ns/net', '--', 'ip', '-o', 'link')
    """
    return ("nsenter", f"--net=/proc/{int(pid)}/ns/net", "--", *argv)


@dataclass
class Runner:
    """Runs steps (or only records them when ``dry_run``), ledgering creations first."""

    dry_run: bool = False
    ledger: Optional[Ledger] = None
    steps: list[Step] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)

    def run(self, step: Step) -> Result:
        self._check_programs(step)  # before the ledger: a step that cannot start creates nothing
        if self.ledger is not None and step.creates:
            self.ledger.append(step.creates)
        return self._execute(step)

    def undo(self, argv: Sequence[str], what: str) -> Result:
        """A teardown step: a failure is not an error (the thing may be gone already), 15 s at most."""
        return self.run(Step(tuple(argv), what=what, check=False, timeout=15))

    def run_all(self, steps: Iterable[Step], parallel: int = 1) -> list[Result]:
        """Run independent steps, up to *parallel* at once; all creations are ledgered first."""
        steps = list(steps)
        for step in steps:
            self._check_programs(step)
        if self.ledger is not None:
            self.ledger.append([item for s in steps for item in s.creates])
        if parallel <= 1 or len(steps) <= 1:
            return [self._execute(s) for s in steps]
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            return list(pool.map(self._execute, steps))

    def spawn(self, step: Step, talk: bool = False, stderr_to: Optional[IO] = None) -> Optional[subprocess.Popen]:
        """Start a long-lived process (a capture, a worker); its ledger item carries the argv to find it by.

        *talk*: its stdin and stdout are pipes (a worker answering requests); *stderr_to*: an open file
        for its stderr (else a pipe).
        """
        self._check_programs(step)
        if self.ledger is not None and step.creates:
            self.ledger.append(step.creates)
        self.steps.append(step)
        if self.dry_run:
            return None
        proc = subprocess.Popen(
            list(step.argv),
            stdin=subprocess.PIPE if talk else subprocess.DEVNULL,
            stdout=subprocess.PIPE if talk else subprocess.DEVNULL,
            stderr=stderr_to if stderr_to is not None else subprocess.PIPE,
            text=True,
            shell=False,
        )
        if self.ledger is not None:
            for item in step.creates:
                self.ledger.note_pid(item, proc.pid)
        return proc

    def _check_programs(self, step: Step) -> None:
        """Declared always; installed too unless this is a dry run (which runs nothing)."""
        if self.dry_run:
            declared(step.argv)
        else:
            require(step.argv)

    def _execute(self, step: Step) -> Result:
        self._check_programs(step)
        self.steps.append(step)
        if self.dry_run:
            result = Result(step, 0)
        else:
            start = time.perf_counter()
            try:
                done = subprocess.run(
                    list(step.argv), input=step.stdin, capture_output=True, text=True, timeout=step.timeout, shell=False
                )
                result = Result(step, done.returncode, done.stdout, done.stderr, time.perf_counter() - start)
            except subprocess.TimeoutExpired as exc:
                result = Result(
                    step,
                    -1,
                    _text(exc.stdout),
                    f"timed out after {step.timeout}s " + _text(exc.stderr),
                    time.perf_counter() - start,
                )
        self.results.append(result)
        if step.check and not result.ok:
            raise StepFailed(result)
        return result


def _text(data) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data
