"""Every docstring example in the package runs (a doctest is the best example), and every module imports.

Only modules that carry examples get a doctest case (a module without one would pass "0 of 0" and
count as a test); every module gets an import check.
"""

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import labtwin

# Modules whose import has side effects or needs a running kernel: none of them carry examples.
SKIP = {"labtwin.emulation.probe_agent", "labtwin.pytest_plugin"}

MODULES = sorted(m.name for m in pkgutil.walk_packages(labtwin.__path__, "labtwin.") if m.name not in SKIP)
PACKAGE = Path(labtwin.__file__).parent


def has_examples(name: str) -> bool:
    relative = Path(*name.split(".")[1:])
    path = PACKAGE / relative / "__init__.py" if (PACKAGE / relative).is_dir() else PACKAGE / f"{relative}.py"
    return bool(re.search(r"^\s*>>> ", path.read_text(), flags=re.M))


WITH_EXAMPLES = [name for name in MODULES if has_examples(name)]


@pytest.mark.parametrize("name", MODULES)
def test_module_imports(name):
    assert importlib.import_module(name).__name__ == name


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has '>>> ' lines but doctest found no example"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


def test_examples_are_found():
    assert len(WITH_EXAMPLES) >= 20 and "labtwin.description.names" in WITH_EXAMPLES
