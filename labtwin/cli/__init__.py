"""The ``labtwin`` command line: the group and what its commands share (errors, exit codes, output); the
commands live beside it by what they are about (:mod:`.describe`, :mod:`.runs`, :mod:`.machine`).

Exit codes: 0 success; 1 a check ran and failed (twin disagreement, doctor
says no); 2 bad input (a topology problem, an unknown scenario or knob, a
usage error). Problems with a topology print as ``PATH:LINE: field: message``.
Progress goes to stderr, so ``--json`` output on stdout stays machine-readable.
"""

from __future__ import annotations

import functools
import sys

import click

# Everything else is imported by the command that uses it: ``labtwin --help`` starts in a fraction of a second
# (issue 16; tests/test_cli_startup.py, make bench).


@functools.cache
def stderr_console():
    """rich's console on stderr (progress and status lines), made when first used."""
    from rich.console import Console

    return Console(stderr=True)


def to_json(value, **kwargs) -> str:
    from ..records import to_json as records_to_json

    return records_to_json(value, **kwargs)


def _fail(message: str, code: int = 2):
    click.echo(message, err=True)
    sys.exit(code)


def friendly_errors(func):
    """Turn expected errors into messages and exit codes, never tracebacks."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except KeyboardInterrupt:
            _fail("labtwin: interrupted", 130)
        except Exception as exc:
            expected = _expected(exc)
            if expected is None:
                raise
            _fail(*expected)

    return wrapper


def _expected(exc: Exception):
    """(message, exit code) for an error the user can act on, or None (a bug: its traceback is shown)."""
    from ..api import EmulationUnavailable
    from ..description import CloudError
    from ..emulation.ovs_lock import OvsLockTimeout
    from ..emulation.probes import ProbeAgentSilent
    from ..emulation.programs import MissingProgram
    from ..importer.dump import DumpError
    from ..scenarios import ScenarioError

    if isinstance(exc, CloudError):
        return "\n".join(str(p) for p in exc.problems), 2
    if isinstance(exc, DumpError):
        return "\n".join(exc.problems) + "\nlabtwin import: nothing written", 2
    if isinstance(exc, ScenarioError):
        return f"labtwin: {exc}", 2
    if isinstance(exc, (EmulationUnavailable, MissingProgram, OvsLockTimeout, ProbeAgentSilent)):
        return f"labtwin: {exc}", 1
    if isinstance(exc, PermissionError):
        return f"labtwin: {exc} (emulation needs root: run as root, see `labtwin doctor`)", 1
    return None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="labtwin")
def main():
    """labtwin: a digital-twin test lab for OpenStack Neutron designs."""


# The commands, by what they are about; importing them registers them on ``main``.
from . import describe, machine, runs  # noqa: E402,F401
