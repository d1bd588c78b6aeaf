"""Every docstring example in the package runs (a doctest is the best example)."""

import doctest
import importlib
import pkgutil

import pytest

import labtwin

# Modules whose import has side effects or needs a running kernel: none of them carry examples.
SKIP = {"labtwin.emulation.probe_agent", "labtwin.pytest_plugin"}

MODULES = sorted(m.name for m in pkgutil.walk_packages(labtwin.__path__, "labtwin.") if m.name not in SKIP)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
