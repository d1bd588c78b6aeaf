"""labtwin's loader against Neutron 29's own server (labtwin.oracle): where they differ, Neutron is right.

Each case starts Neutron's ML2 + segments + router plugins in a child process (~5 s), so these are
marked slow: `make test` runs them, the quick loop does not.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from labtwin.cli import main
from labtwin.oracle import OracleFailed, ask_neutron

ROOT = Path(__file__).resolve().parents[2]
#: Every topology in the repository that labtwin loads: the defaults, the example scenario's, the inputs.
TOPOLOGIES = sorted(
    [*ROOT.glob("topologies/*.yaml"), *ROOT.glob("tests/example_scenario/topologies/*.yaml")]
    + [p for p in ROOT.glob("tests/inputs/*.yaml") if p.name != "fip-without-router.yaml"]  # invalid on purpose
)
HERE = Path(__file__).resolve().parent


@pytest.mark.slow
@pytest.mark.parametrize("path", TOPOLOGIES, ids=lambda p: p.name)
def test_neutron_answers_every_topology_as_labtwin_does(path):
    report = ask_neutron(path)
    assert report.objects > 0 and report.neutron_version == "29.0.0"
    assert report.agree, "\n".join(str(d) for d in report.differences)


@pytest.mark.slow
def test_the_oracle_finds_where_labtwin_is_wrong():
    """A port with port security off that also names a group: labtwin's loader still accepts it (issue 12
    lists it), Neutron refuses it. The oracle must say so, located at the port: the check can fail."""
    report = ask_neutron(HERE / "port-security-off-with-group.yaml")
    assert not report.agree
    (difference,) = report.differences
    assert difference.loc == ("ports", 1) and difference.name == "vm-open"
    assert "PortSecurityAndIPRequiredForSecurityGroups" in difference.neutron
    assert difference.labtwin.startswith("gives 10.0.0.")


@pytest.mark.slow
def test_validate_neutron_prints_each_difference_and_exits_1():
    result = CliRunner().invoke(main, ["validate", "--neutron", str(HERE / "port-security-off-with-group.yaml")])
    assert result.exit_code == 1, result.output + result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].endswith("ok (1 hosts, 1 networks, 2 ports)")
    assert "Neutron 29.0.0 answers 1 object(s) differently" in lines[1]
    assert "ports[1] (vm-open): port:" in lines[2] and "PortSecurityAndIPRequiredForSecurityGroups" in lines[2]


def test_without_neutron_installed_the_error_says_how_to_get_it(monkeypatch):
    """The child imports Neutron; when it cannot, the answer is an error naming the fix, never 'agrees'."""
    monkeypatch.setitem(sys.modules, "neutron", None)  # import neutron -> ImportError, in the forked child too
    with pytest.raises(OracleFailed, match=r"make setup.*neutron==29\.0\.0"):
        ask_neutron(ROOT / "topologies" / "minimal.yaml")
    result = CliRunner().invoke(main, ["validate", "--neutron", str(ROOT / "topologies" / "minimal.yaml")])
    assert result.exit_code == 1 and "Neutron could not be asked" in result.stderr
