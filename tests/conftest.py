"""Shared fixtures: paths to the repository's topologies."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def topologies() -> Path:
    return ROOT / "topologies"


@pytest.fixture
def minimal_text(topologies) -> str:
    return (topologies / "minimal.yaml").read_text()
