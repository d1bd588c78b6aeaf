"""Layer contracts, by glob: who may import whom.

- ``description`` (generic cloud objects) imports no scenario, no engine above it;
- the engines (``emulation``, ``twin``, ``records``, ``calibration``) import no scenario;
- inside a scenario (``scenarios/<name>/``) the model and the emulation never import each other,
  and the model never touches the emulation engine;
- no scenario imports another scenario;
- ``twin`` and ``report`` import only ``records`` and ``api`` (and themselves).

Checked on the source (imports as written, relative ones resolved), so a forbidden import fails here
even if nothing executes it.
"""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "labtwin"
SCENARIOS = sorted(p.name for p in (PACKAGE / "scenarios").iterdir() if (p / "__init__.py").is_file())


def module_of(path: Path) -> str:
    parts = ["labtwin", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every labtwin module *path* imports (``from X import y`` gives ``X.y`` as well as ``X``)."""
    package = module_of(path).split(".") if path.name == "__init__.py" else module_of(path).split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + (node.module.split(".") if node.module else []))
            found |= {module} | {f"{module}.{a.name}" for a in node.names}
    return {m for m in found if m == "labtwin" or m.startswith("labtwin.")}


def files(pattern: str) -> list[Path]:
    """Files of the package whose path (relative to ``labtwin/``) matches *pattern*."""
    return sorted(p for p in PACKAGE.rglob("*.py") if fnmatch.fnmatch(str(p.relative_to(PACKAGE)), pattern))


def breaking(pattern: str, forbidden, allowed=lambda module, path: False) -> dict[str, list[str]]:
    """Per file matching *pattern*: the imports that match a *forbidden* glob (unless *allowed*)."""
    out = {}
    for path in files(pattern):
        bad = sorted(
            m for m in imports(path) if any(fnmatch.fnmatch(m, f) for f in forbidden(path)) and not allowed(m, path)
        )
        if bad:
            out[str(path.relative_to(PACKAGE))] = bad
    return out


def scenario_of(path: Path) -> str:
    return path.relative_to(PACKAGE / "scenarios").parts[0]


ANY_SCENARIO = ["labtwin.scenarios.*"]
ENGINES_ABOVE = [
    "labtwin.api",
    "labtwin.api.*",
    "labtwin.cli",
    "labtwin.cli.*",
    "labtwin.report*",
    "labtwin.pytest_plugin",
    "labtwin.testing",
]


def test_description_imports_nothing_above_it():
    assert not breaking(
        "description/*", lambda p: ANY_SCENARIO + ENGINES_ABOVE + ["labtwin.emulation*", "labtwin.twin*"]
    )


@pytest.mark.parametrize("engine", ["emulation/*", "twin/*", "oracle/*", "records.py", "calibration.py"])
def test_engines_import_no_scenario(engine):
    assert not breaking(engine, lambda p: ["labtwin.scenarios", *ANY_SCENARIO, *ENGINES_ABOVE])


def test_a_scenario_model_never_touches_an_emulation():
    assert not breaking(
        "scenarios/*/model/*",
        lambda p: [f"labtwin.scenarios.{scenario_of(p)}.emulation*", "labtwin.emulation*", *ENGINES_ABOVE],
    )


def test_a_scenario_emulation_never_imports_its_model():
    assert not breaking(
        "scenarios/*/emulation/*", lambda p: [f"labtwin.scenarios.{scenario_of(p)}.model*", *ENGINES_ABOVE]
    )


def test_no_scenario_imports_another():
    def others(path):
        return [f"labtwin.scenarios.{s}" for s in SCENARIOS if s != scenario_of(path)] + [
            f"labtwin.scenarios.{s}.*" for s in SCENARIOS if s != scenario_of(path)
        ]

    assert not breaking("scenarios/*/*", others)


@pytest.mark.parametrize("layer", ["twin/*", "report/*"])
def test_twin_and_report_import_only_records_and_api(layer):
    own = "labtwin." + layer.split("/")[0]
    assert not breaking(
        layer,
        lambda p: ["labtwin.*"],
        allowed=lambda m, p: (
            m in ("labtwin.records", "labtwin.api")
            or m.startswith(own)
            or m.startswith("labtwin.records.")
            or m.startswith("labtwin.api.")
        ),
    )


def test_the_checker_sees_relative_imports_and_can_fail(tmp_path):
    model = PACKAGE / "scenarios" / "reachability" / "model" / "__init__.py"
    assert {"labtwin.description", "labtwin.records"} <= imports(model)
    assert "labtwin.scenarios.reachability.spec" in imports(model)  # a relative import (..spec)
    assert breaking("scenarios/reachability/model/*", lambda p: ["labtwin.records"])  # a rule that breaks


def test_the_oracle_imports_only_the_description():
    """labtwin.oracle checks the description layer against Neutron: it may import that layer and itself."""
    assert not breaking(
        "oracle/*",
        lambda p: ["labtwin.*"],
        allowed=lambda m, p: m.startswith(("labtwin.description", "labtwin.oracle")),
    )


def test_conformance_reads_models_never_an_emulation():
    """labtwin.conformance checks the loader and the scenarios' models against Neutron's documentation: it may
    import the description, the scenarios' specs and models and itself, never an emulation or the twin."""
    assert not breaking(
        "conformance/*",
        lambda p: ["labtwin.*"],
        allowed=lambda m, p: (
            m.startswith(("labtwin.description", "labtwin.conformance", "labtwin.scenarios")) and ".emulation" not in m
        ),
    )
