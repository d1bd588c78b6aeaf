"""ML2/OVN and several segments of one network on one host: what the model says, and what it leaves alone.

Neutron maps a host to every segment on the physnets it has bridges for, and its OVN driver writes one
localnet port per segment; OVN 23.03's ovn-controller uses one localnet port per network per chassis
(controller/binding.c) and logs the others as skipped. The model counts those (host, network) pairs and
does not predict verdicts of the ports there (which segment wins depends on binding order); the twin
shows those probes as not compared, with the reason, and compares the rest.
"""

from pathlib import Path

from labtwin import api
from labtwin.description import load_cloud
from labtwin.description.notes import ovn_localnet_conflicts, ports_on_localnet_conflicts
from labtwin.records import Probe, Run

ROOT = Path(__file__).resolve().parents[3]
TWO = ROOT / "tests/scenarios/reachability/two-segments-one-host.yaml"


def test_hosts_with_two_segments_of_a_network_on_their_physnets_are_the_conflicts():
    assert ovn_localnet_conflicts(load_cloud(ROOT / "topologies/multisegment.yaml")) == {
        "r2-c1": ["provider"],
        "r2-c2": ["provider"],
    }
    assert ovn_localnet_conflicts(load_cloud(ROOT / "topologies/minimal.yaml")) == {}
    cloud = load_cloud(TWO)
    assert ovn_localnet_conflicts(cloud) == {"h-two": ["provider"]}
    assert ports_on_localnet_conflicts(cloud) == {"vm-a1", "vm-a2"}


def test_the_model_under_ovn_marks_those_probes_and_counts_only_the_others():
    ovn = api.simulate("reachability", str(TWO), 1, control="ovn", probes="icmp")
    ours = api.simulate("reachability", str(TWO), 1, probes="icmp")
    assert ovn.summary["ovn_localnet_conflicts"] == 1 and "ovn_localnet_conflicts" not in ours.summary
    marked = [p for p in ovn.records if isinstance(p, Probe) and "not_compared" in p.detail]
    assert len(marked) == 6 == ovn.summary["not_compared"]  # every pair touches h-two
    assert ovn.summary["allowed"] == 0 < ours.summary["allowed"]


def test_the_twin_shows_marked_probes_as_not_compared_and_still_fails_a_wrong_count():
    model = api.simulate("reachability", str(TWO), 1, control="ovn", probes="icmp")
    emulated = Run(
        "reachability",
        "emulation",
        model.design,
        1,
        model.topology,
        {**model.summary},
        [r for r in model.records if isinstance(r, Probe)],
    )
    report = api.compare_runs("reachability", model, emulated)
    probes = report.rows[report.rows.kind == "probe"]
    assert probes.agree.isna().all() and probes.tolerance.str.startswith("not compared: ML2/OVN").all()
    assert report.agree
    wrong = Run(
        *[getattr(emulated, f) for f in ("scenario", "backend", "design", "seed", "topology")],
        {**emulated.summary, "ovn_localnet_conflicts": 0},
        emulated.records,
    )
    bad = api.compare_runs("reachability", model, wrong).disagreements
    assert list(bad.key) == ["ovn_localnet_conflicts"]


def test_validate_notes_each_host_where_ovn_would_skip_a_segment():
    """Not an error (Neutron accepts the cloud): `labtwin validate` names the host, the network and its
    segments, and exits 0; a cloud without such a host gets no note."""
    from click.testing import CliRunner

    from labtwin.cli import main

    result = CliRunner().invoke(main, ["validate", str(ROOT / "topologies/multisegment.yaml")])
    notes = [line for line in result.stdout.splitlines() if ": note: " in line]
    assert result.exit_code == 0 and len(notes) == 2, result.output
    assert "hosts[r2-c1]: under ML2/OVN" in notes[0] and "segments r2-s1, r2-s2" in notes[0]
    quiet = CliRunner().invoke(main, ["validate", str(ROOT / "topologies/minimal.yaml")])
    assert quiet.exit_code == 0 and ": note: " not in quiet.stdout
