"""Every external program the code runs is declared once (labtwin/emulation/programs.py), with its package.

Two nets: a scan of the source for every argv the code builds (Step, in_netns,
exec_argv, ledger undo, snapshot listings, subprocess calls, and names those
argvs are assigned to), and the Runner itself, which refuses an undeclared
program even in a dry run and turns an absent one into an error naming its
Debian package.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from labtwin.emulation import programs
from labtwin.emulation.programs import PROGRAMS, MissingProgram, UndeclaredProgram
from labtwin.emulation.runner import Runner, Step

SOURCE = Path(__file__).resolve().parents[2] / "labtwin"
#: Calls whose argument at this position is an argv.
ARGV_CALLS = {"Step": 0, "in_netns": 1, "exec_argv": 1, "run": 0, "Popen": 0, "check_output": 0, "spawn": 0}


def _name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _assignments(tree: ast.AST) -> dict[str, list[ast.expr]]:
    """name -> every expression assigned to it in the module (plain and for-loop targets over literal tuples)."""
    found: dict[str, list[ast.expr]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found.setdefault(target.id, []).append(node.value)
        elif isinstance(node, ast.For) and isinstance(node.target, ast.Tuple) and isinstance(node.iter, ast.Tuple):
            for row in node.iter.elts:
                if isinstance(row, ast.Tuple) and len(row.elts) == len(node.target.elts):
                    for target, value in zip(node.target.elts, row.elts):
                        if isinstance(target, ast.Name):
                            found.setdefault(target.id, []).append(value)
    return found


def _programs_of(expr: ast.expr, names: dict[str, list[ast.expr]], seen: frozenset = frozenset()) -> set[str]:
    """The program names an argv expression can start with (what static reading can resolve)."""
    if isinstance(expr, (ast.Tuple, ast.List)) and expr.elts:
        first = expr.elts[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return {first.value}
        return _programs_of(first, names, seen) if isinstance(first, ast.Starred) else set()
    if isinstance(expr, ast.Starred):
        return _programs_of(expr.value, names, seen)
    if isinstance(expr, ast.BinOp):
        return _programs_of(expr.left, names, seen)
    if isinstance(expr, ast.Call) and _name(expr.func) in ("in_netns", "exec_argv") and len(expr.args) > 1:
        return _programs_of(expr.args[1], names, seen) | {"nsenter"}
    if isinstance(expr, ast.Call) and _name(expr.func) in ("tuple", "list") and expr.args:
        return _programs_of(expr.args[0], names, seen)
    if isinstance(expr, ast.Name) and expr.id not in seen:
        return set().union(*[_programs_of(v, names, seen | {expr.id}) for v in names.get(expr.id, [])])
    return set()


def invoked_programs() -> dict[str, list[str]]:
    """program -> source locations, for every argv the package builds."""
    found: dict[str, list[str]] = {}
    for path in sorted(SOURCE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        names = _assignments(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            exprs = [kw.value for kw in node.keywords if kw.arg in ("argv", "undo", "args")]
            position = ARGV_CALLS.get(_name(node.func))
            if position is not None and len(node.args) > position:
                exprs.append(node.args[position])
            if _name(node.func) == "_out":
                exprs.append(ast.Tuple(elts=list(node.args)))
            for expr in exprs:
                for prog in _programs_of(expr, names):
                    found.setdefault(prog, []).append(f"{path.relative_to(SOURCE.parent)}:{node.lineno}")
    return found


def test_every_program_the_code_invokes_is_declared():
    declared = {p.name for p in PROGRAMS} | {"bash"}  # bash: the shell Mininet's mnexec holds a namespace with
    invoked = invoked_programs()
    undeclared = {prog: where for prog, where in invoked.items() if prog not in declared}
    assert not undeclared, f"programs run but not declared in labtwin/emulation/programs.py: {undeclared}"
    # the scan reaches the reads that once failed silently, and the ledger's undo argvs
    assert {"nft", "iptables-save", "ipset", "tcpdump", "ovs-ofctl", "ovs-vsctl", "ip", "nsenter"} <= set(invoked)


def test_the_scan_sees_a_program_nobody_declared(tmp_path, monkeypatch):
    module = tmp_path / "labtwin" / "emulation" / "rogue.py"
    module.parent.mkdir(parents=True)
    module.write_text(
        "def read(runner, pid):\n"
        '    for key, argv in (("conn", ("conntrack", "-L")),):\n'
        "        runner.run(Step(in_netns(pid, argv), what=key))\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "SOURCE", tmp_path / "labtwin")
    assert set(invoked_programs()) == {"conntrack", "nsenter"}


def test_every_declared_program_has_a_package_and_a_reason():
    for prog in PROGRAMS:
        assert prog.package and prog.needed_for, prog
    assert len({p.name for p in PROGRAMS}) == len(PROGRAMS)


def test_make_setup_installs_every_package():
    printed = subprocess.run(
        [sys.executable, str(SOURCE / "emulation" / "programs.py"), "--packages"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert {p.package for p in PROGRAMS if not p.unpacked} <= set(printed)
    assert not {p.package for p in PROGRAMS if p.unpacked} & set(printed)  # OVN: unpacked, never installed
    makefile = (SOURCE.parent / "Makefile").read_text()
    assert "labtwin/emulation/programs.py --packages" in makefile


def test_runner_refuses_an_undeclared_program_even_in_a_dry_run():
    with pytest.raises(UndeclaredProgram, match="nmap"):
        Runner(dry_run=True).run(Step(("nsenter", "--net=/proc/1/ns/net", "--", "nmap", "-sn")))


def test_a_missing_program_is_an_error_naming_its_package_even_without_check(monkeypatch):
    monkeypatch.setattr(programs, "_installed", lambda prog: prog.name != "nft")
    with pytest.raises(MissingProgram, match=r"nft is not installed \(Debian package nftables"):
        Runner().run(Step(("nsenter", "--net=/proc/1/ns/net", "--", "nft", "list", "ruleset"), check=False))


def test_doctor_requires_chromium_but_emulation_does_not(monkeypatch):
    """The browser tests' chromium: `labtwin doctor` reports it missing and exits 1 (CI stops there), while
    emulation, which does not need it, stays possible."""
    from click.testing import CliRunner

    from labtwin.cli import main
    from labtwin.emulation import doctor

    real_path = programs.Program.path
    monkeypatch.setattr(
        programs.Program, "path", lambda prog: None if prog.name == programs.CHROMIUM else real_path(prog)
    )
    chromium = next(check for check in doctor.checks() if check.what == programs.CHROMIUM)
    assert not chromium.ok and not chromium.emulation
    assert chromium.detail.startswith("missing: apt-get install chromium (needed for browser tests")
    assert not any(programs.CHROMIUM in reason for reason in doctor.emulation_possible()[1])
    report = CliRunner().invoke(main, ["doctor"])
    assert report.exit_code == 1
    assert f"MISSING  {programs.CHROMIUM}" in report.output and "only the tests need" in report.output
