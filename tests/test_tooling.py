"""The code stays ruff-clean (lint and format, 120 columns) and mypy-clean where typed (pyproject.toml)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("command", [("check",), ("format", "--check")], ids=["lint", "format"])
def test_ruff_is_clean(command):
    done = subprocess.run(
        [sys.executable, "-m", "ruff", *command, "labtwin", "tests"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, (
        f"ruff {' '.join(command)} (fix with `ruff check --fix` / `ruff format`):\n{done.stdout}{done.stderr}"
    )


def test_mypy_is_clean_on_the_typed_layers():
    done = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, f"mypy (files listed in pyproject.toml [tool.mypy]):\n{done.stdout}{done.stderr}"
