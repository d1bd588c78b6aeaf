"""Where chromium is missing, the browser tests say so: skipped with the reason on a developer's machine, failed
in CI (``CI=true``), where ``make setup`` must have installed it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from labtwin.emulation import programs

pytest_plugins = ["pytester"]

HERE = Path(__file__).resolve().parent
USES_THE_LAB = "def test_lab(lab):\n    raise AssertionError('ran without chromium')\n"


@pytest.fixture
def without_chromium(pytester, monkeypatch):
    """A test using the browser tests' fixtures, on a machine where chromium is not installed."""
    for name in ("conftest.py", "lab_driver.py"):
        shutil.copy(HERE / name, pytester.path / name)
    pytester.makepyfile(test_uses_the_lab=USES_THE_LAB)
    real_path = programs.Program.path
    monkeypatch.setattr(
        programs.Program, "path", lambda prog: None if prog.name == programs.CHROMIUM else real_path(prog)
    )
    return pytester


def test_skipped_with_the_reason_outside_ci(without_chromium, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    result = without_chromium.runpytest_inprocess("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        ["*/usr/bin/chromium is not installed (Debian package chromium*run `make setup` as root*"]
    )


def test_failed_in_ci(without_chromium, monkeypatch):
    monkeypatch.setenv("CI", "true")
    result = without_chromium.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*CI=true: make setup must have installed it*"])
