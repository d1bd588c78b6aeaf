"""The command line imports only what a command uses (issue 16: start-up under 0.5 s; ``make bench`` times it).

Checked by what is imported, not by a timer: ``labtwin --help`` and a model run must not import pandas,
an emulation package, or another scenario's model.
"""

import json
import subprocess
import sys

HEAVY = ("pandas", "labtwin.twin", "labtwin.oracle")


def imported_by(code: str) -> set[str]:
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out.splitlines()[-1]))


def emulations(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.startswith("labtwin.scenarios.") and ".emulation" in m)


def test_the_command_line_imports_no_backend_and_no_pandas():
    modules = imported_by("import labtwin.cli")
    assert not [m for m in HEAVY if m in modules]
    assert not emulations(modules)
    assert not [m for m in modules if m.startswith("labtwin.scenarios.") and ".model" in m]


def test_a_model_run_imports_its_own_model_only():
    modules = imported_by(
        "import contextlib, io\nfrom labtwin.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main(['simulate', 'sg-fanout'])\n"
        "    except SystemExit as exc:\n        assert not exc.code\n"
    )
    assert "labtwin.scenarios.sg_fanout.model" in modules
    assert "pandas" not in modules and not emulations(modules)
    others = (
        "labtwin.scenarios.dvr.model",
        "labtwin.scenarios.multisegment.model",
        "labtwin.scenarios.reachability.model",
    )
    assert not [m for m in modules if m.startswith(others)]
