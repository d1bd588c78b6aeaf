"""The run-record schema: save, load, DataFrames, determinism."""

from labtwin import api
from labtwin.records import Recorder, Run


def test_save_load_round_trip(tmp_path):
    run = api.simulate("reachability", seed=7)
    run.save(tmp_path)
    back = Run.load(tmp_path)
    assert back.records == run.records
    assert back.summary == run.summary and back.design == run.design and back.seed == 7
    assert list(back.probes.columns[:2]) == ["scenario", "backend"]
    assert len(back.probes) == run.summary["probe_count"]


def test_same_seed_same_bytes(tmp_path):
    api.simulate("reachability", seed=5).save(tmp_path / "a")
    api.simulate("reachability", seed=5).save(tmp_path / "b")
    assert (tmp_path / "a" / "records.jsonl").read_bytes() == (tmp_path / "b" / "records.jsonl").read_bytes()


def test_versions_are_recorded():
    run = api.simulate("reachability")
    assert {"labtwin", "python", "simpy", "kernel"} <= set(run.versions)
    assert run.versions["labtwin"] and run.versions["python"]
    assert "ovs" not in run.versions  # a model run ran on no OVS; an emulation adds its OVS (labtwin.api.emulate)


def test_recording_runs_no_program(monkeypatch):
    import subprocess

    monkeypatch.setattr(subprocess, "run", lambda *a, **k: (_ for _ in ()).throw(AssertionError("ran a program")))
    Run("sg-fanout", "emulation", {}, 1)  # the ground floor: no subprocess, even for an emulation run


def test_frames_have_one_column_per_field():
    rec = Recorder()
    rec.event(0.5, "rpc", host="h1", subject="p1", sg="default")
    rec.operation("filter", "h1", 1.0, 0.25, count=3)
    rec.metric("updates_total", 171)
    run = Run("demo", "model", {}, 1, records=rec.records)
    assert run.events.loc[0, "detail"] == {"sg": "default"}
    assert run.operations.loc[0, "count"] == 3
    assert run.metrics.set_index("name").loc["updates_total", "value"] == 171
    assert run.probes.empty and "verdict" in run.probes.columns
