"""The committed reachability trace loads without root and agrees with the model."""

from pathlib import Path

from labtwin.description import load_cloud
from labtwin.emulation.captures import summarise
from labtwin.records import Run
from labtwin.scenarios.reachability.model import simulate

TRACE = Path(__file__).resolve().parents[3] / "traces" / "reachability"


def test_recorded_run_loads_and_matches_the_model(topologies):
    run = Run.load(TRACE)
    assert run.backend == "emulation" and run.scenario == "reachability"
    model = simulate(load_cloud(topologies / "minimal.yaml"), run.design, run.seed).probes
    joined = model.merge(run.probes, on=["src", "dst", "protocol", "port"])
    assert len(joined) == len(model) == len(run.probes)
    assert (joined.verdict_x == joined.verdict_y).all()
    assert {"bringup.namespaces", "rules.applied", "teardown"} <= set(run.operations.op)


def test_recorded_pcaps_open_and_show_vlan_segment_traffic():
    pcaps = sorted((TRACE / "pcap").glob("*.pcap"))
    assert pcaps
    seen = [row for path in pcaps for row in summarise(path)]
    assert any(row.get("ttl") == 64 and row.get("src", "").startswith("10.0.0.") for row in seen)
