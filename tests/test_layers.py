"""Layers import one way: description -> model / emulation -> scenarios, twin -> report.

Checked on the source (imports as written), so a forbidden import fails here
even if nothing executes it.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "labtwin"

# layer -> layers it must not import
FORBIDDEN = {
    "description": {"model", "emulation", "scenarios", "twin", "report", "api", "cli"},
    "model": {"emulation", "scenarios", "twin", "report", "api", "cli"},
    "emulation": {"model", "scenarios", "twin", "report", "api", "cli"},
    "twin": {"report", "cli"},
}


def imported_layers(path: Path) -> set[str]:
    """First components below ``labtwin`` of every labtwin import in *path*."""
    tree = ast.parse(path.read_text())
    rel_parts = path.relative_to(PACKAGE).parts
    layers = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = list(rel_parts[:-1])[: len(rel_parts) - node.level]
                names = [".".join(["labtwin", *base, *(node.module.split(".") if node.module else [])])]
                if not node.module:
                    names = [f"{names[0]}.{a.name}" for a in node.names]
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "labtwin" and len(parts) > 1:
                layers.add(parts[1])
    return layers


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_one_way(layer):
    root = PACKAGE / layer
    files = sorted(root.rglob("*.py")) if root.is_dir() else []
    bad = {str(f.relative_to(PACKAGE)): sorted(imported_layers(f) & FORBIDDEN[layer]) for f in files}
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f"{layer} imports layers above it: {bad}"


def test_checker_sees_relative_imports(tmp_path):
    assert imported_layers(PACKAGE / "model" / "reachability.py") >= {"description", "records"}
