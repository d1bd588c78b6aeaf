"""The conformance suite: every case from Neutron's documentation against labtwin's answer.

Cases live beside this file, one folder each (``case.yaml`` + ``topology.yaml``; the format is
:mod:`labtwin.conformance`'s docstring). A case labtwin cannot answer yet carries ``known_gap`` and
is an expected failure here, with its reason; if it starts to pass, the test fails so the gap is
removed from the case.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from labtwin.conformance import KINDS, CaseError, check, load_case, load_cases

CASES = load_cases()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_labtwin_answers_as_neutrons_documentation_says(case):
    result = check(case)
    if case.known_gap is not None:
        assert not result.passed, f"{case.name} passes now: remove its known_gap ({case.known_gap})"
        pytest.xfail(case.known_gap)
    assert result.passed, "\n".join(result.differences)


def test_the_suite_covers_every_kind_from_neutrons_own_pages():
    assert len(CASES) >= 20
    assert {c.kind for c in CASES} == set(KINDS)
    for case in CASES:
        assert case.page.startswith("doc/source/") and case.url.startswith("https://docs.openstack.org/neutron/")
        assert case.section and case.title


def mutated(case, tmp_path: Path, change) -> object:
    """A copy of *case* whose expected outcome *change* edits: the check must then find a difference."""
    folder = tmp_path / case.name
    shutil.copytree(case.folder, folder)
    data = yaml.safe_load((folder / "case.yaml").read_text())
    change(data["expect"])
    (folder / "case.yaml").write_text(yaml.safe_dump(data))
    return load_case(folder)


def by_name(name):
    return next(c for c in CASES if c.name == name)


@pytest.mark.parametrize(
    "name,change",
    [
        ("01-slaac-selfservice", lambda e: e["ports"].update(instance1=["pool:192.0.2.2-192.0.2.254", "fd00::1"])),
        ("07-routed-deferred", lambda e: e.update(deferred=["port2"])),
        ("13-refuse-host-no-segment", lambda e: e.update(exception="VlanIdInUse")),
        ("19-sg-default-implicit", lambda e: e["rules"].update(default=2)),
        ("24-sg-ovsfw-remote-aap", lambda e: e["verdicts"][1].update(src_ip="10.0.0.99")),
        ("30-path-dvr-ns1-snat", lambda e: e["legs"][0].update(segmentation_id=102)),
        ("30-path-dvr-ns1-snat", lambda e: e["legs"][0].update(src_mac="snat sg- port")),
        ("30-path-dvr-ns1-snat", lambda e: e.update(ttl_decrements=1)),
        (
            "30-path-dvr-ns1-snat",
            lambda e: e["steps"].insert(5, {"n": 0, "host": "compute1", "where": "fip", "device": "fg-"}),
        ),
        ("32-path-dvr-ew-cross", lambda e: e.update(via_network_node=True)),
        # the guide's (and the old model's) IPv6 by the network node's snat-
        ("34-path-dvr-ipv6", lambda e: e.update(via_network_node=True)),
        ("34-path-dvr-ipv6", lambda e: e["legs"].insert(0, {"from": "compute1", "to": "network1"})),
        (
            "34-path-dvr-ipv6",
            lambda e: e["steps"].insert(5, {"n": 0, "host": "network1", "where": "snat", "device": "sg-"}),
        ),
        ("35-path-provider-ew1", lambda e: e["legs"][0].update(segmentation_id=102)),
        (
            "35-path-provider-ew1",
            lambda e: e["steps"].insert(0, {"n": 0, "host": "compute1", "where": "root", "device": "br-tun"}),
        ),
        ("36-path-provider-ew2", lambda e: e.update(ttl_decrements=0)),
        ("36-path-provider-ew2", lambda e: e["legs"][1].update(segmentation_id=101)),
        ("36-path-provider-ew2", lambda e: e.update(dst="instance1")),
    ],
)
def test_each_check_can_fail(tmp_path, name, change):
    """A wrong expectation (standing for a wrong model: the comparison is symmetric) is found."""
    assert check(by_name(name)).passed
    assert not check(mutated(by_name(name), tmp_path, change)).passed


def test_a_broken_case_names_its_file_and_field(tmp_path):
    case = by_name("01-slaac-selfservice")
    folder = tmp_path / "broken"
    shutil.copytree(case.folder, folder)
    data = yaml.safe_load((folder / "case.yaml").read_text())
    del data["source"]["section"]
    (folder / "case.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(CaseError, match=r"broken/case.yaml: source.section: missing"):
        load_case(folder)
