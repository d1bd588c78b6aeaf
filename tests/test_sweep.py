"""Design sweeps (labtwin.sweep): the same rows wherever the grid runs, resumable, loud on bad input."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

from labtwin import sweep
from labtwin.cli import main
from labtwin.scenarios import ScenarioError

#: sg-fanout: a generated cloud whose join times are drawn per seed; dvr: a topology file, shipped to workers.
GRIDS = [
    dict(scenario="sg-fanout", vary={"members": [10, 40], "firewall": ["iptables", "ovs"]}, repeats=2),
    dict(scenario="dvr", vary={"flows": "200,2000"}, fixed={"router": "dvr"}, repeats=2),
]


def _rows(result: sweep.SweepResult) -> list[dict]:
    return result.table.to_dict("records")


@pytest.fixture(scope="module")
def serial_runs():
    return [sweep.run(**grid, scheduler="serial") for grid in GRIDS]


@pytest.mark.slow
def test_a_local_cluster_of_two_workers_gives_the_serial_rows_seed_by_seed(serial_runs):
    for grid, serial in zip(GRIDS, serial_runs):
        on_dask = sweep.run(**grid, scheduler="local", workers=2)
        assert on_dask.ran == len(serial.table) == 8 if grid["scenario"] == "sg-fanout" else 4
        assert _rows(on_dask) == _rows(serial)


@pytest.mark.slow
def test_a_running_cluster_is_reached_by_its_address(serial_runs):
    """What ``--scheduler tcp://host:8786`` does: a client of a cluster the sweep did not start."""
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        remote = sweep.run(**GRIDS[1], scheduler=cluster.scheduler_address)
    assert _rows(remote) == _rows(serial_runs[1])


def test_the_seed_comparison_can_fail(serial_runs):
    """Another first seed changes the rows: the equality above compares runs, not constants."""
    other = sweep.run(**GRIDS[0], seed=7, scheduler="serial")
    assert other.table["port_ready_s"].tolist() != serial_runs[0].table["port_ready_s"].tolist()


def test_each_row_is_one_run_with_its_knobs_seed_and_summary(serial_runs):
    table = serial_runs[0].table
    assert len(table) == 8
    assert table[["members", "firewall", "seed", "repeat"]].head(2).to_dict("records") == [
        {"members": 10, "firewall": "iptables", "seed": 1, "repeat": 0},
        {"members": 10, "firewall": "iptables", "seed": 2, "repeat": 1},
    ]
    assert table["members"].dtype.kind == "i" and table["rules_written"].dtype.kind == "i"
    summary = serial_runs[0].summary
    assert summary["runs"].tolist() == [2, 2, 2, 2]
    row = summary[(summary.members == 40) & (summary.firewall == "ovs")].iloc[0]
    runs = table[(table.members == 40) & (table.firewall == "ovs")]
    assert row["port_ready_s"] == pytest.approx(runs["port_ready_s"].mean())


def test_a_rerun_skips_the_points_already_in_the_file(tmp_path):
    out = tmp_path / "sg.parquet"
    first = sweep.run("sg-fanout", {"members": "10,20"}, repeats=2, out=out, scheduler="serial")
    assert (first.ran, first.reused) == (4, 0)
    again = sweep.run("sg-fanout", {"members": "10,20,30"}, repeats=2, out=out, scheduler="serial")
    assert (again.ran, again.reused) == (2, 4)
    assert len(pd.read_parquet(out)) == 6
    assert _rows(again)[:4] == _rows(first)
    fresh = sweep.run("sg-fanout", {"members": "10,20,30"}, repeats=2, scheduler="serial")
    assert _rows(again) == _rows(fresh)
    default_hosts = sweep.run("sg-fanout", {"members": "10"}, {"hosts": 2}, out=out, scheduler="serial")
    assert default_hosts.ran == 0  # hosts=2 is the default: the same design, already run
    other_knob = sweep.run("sg-fanout", {"members": "10"}, {"hosts": 3}, out=out, scheduler="serial")
    assert (other_knob.ran, len(pd.read_parquet(out))) == (1, 7)  # another grid's rows are kept beside


def test_an_interrupted_sweep_keeps_what_it_finished(tmp_path):
    out = tmp_path / "sg.parquet"

    def interrupt_after_two(done, total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweep.run("sg-fanout", {"members": "10,20,30,40"}, out=out, scheduler="serial", progress=interrupt_after_two)
    assert pd.read_parquet(out)["members"].tolist() == [10, 20]
    resumed = sweep.run("sg-fanout", {"members": "10,20,30,40"}, out=out, scheduler="serial")
    assert (resumed.ran, resumed.reused) == (2, 2)


def test_a_failing_run_names_its_point_and_keeps_the_rows_before_it(tmp_path, monkeypatch):
    out = tmp_path / "sg.parquet"
    real = sweep.run_points

    def fail_at_30(scenario, cloud, topology, points):
        if dict(points[0].design)["members"] == 30:
            raise sweep.SweepError("the run at members=30 seed=1 failed: boom")
        return real(scenario, cloud, topology, points)

    monkeypatch.setattr(sweep, "run_points", fail_at_30)
    with pytest.raises(sweep.SweepError, match="members=30 seed=1"):
        sweep.run("sg-fanout", {"members": "10,20,30"}, out=out, scheduler="serial")
    assert pd.read_parquet(out)["members"].tolist() == [10, 20]


def test_a_model_error_in_a_run_is_a_sweep_error_naming_the_point():
    from labtwin.description import Cloud

    with pytest.raises(sweep.SweepError, match=r"the run at router=dvr flows=200 seed=3 failed"):
        point = sweep.Point((("router", "dvr"), ("flows", 200)), ("router", "flows"), 3, 0)
        sweep.run_points("dvr", Cloud.model_construct(), "broken.yaml", [point])


@pytest.mark.parametrize(
    "vary, fixed, repeats, message",
    [
        ({}, {}, 1, "vary at least one knob"),
        ({"members": "10,10"}, {}, 1, "--vary members: 10 given twice"),
        ({"members": "10,"}, {}, 1, "--vary members: give one or more values"),
        ({"members": "10"}, {"members": "20"}, 1, "members both fixed"),
        ({"members": "10"}, {}, 0, "--repeats must be 1 or more"),
        ({"members": "10,lots"}, {}, 1, "members"),
        ({"nonsense": "1"}, {}, 1, "nonsense"),
    ],
)
def test_bad_grids_are_refused_before_anything_runs(tmp_path, vary, fixed, repeats, message):
    out = tmp_path / "never.parquet"
    with pytest.raises(ScenarioError, match=message):
        sweep.run("sg-fanout", vary, fixed, repeats=repeats, out=out, scheduler="serial")
    assert not out.exists()


def test_a_file_that_is_not_parquet_is_named_and_left_alone(tmp_path):
    out = tmp_path / "notes.parquet"
    out.write_text("my notes")
    with pytest.raises(ScenarioError, match="notes.parquet: not a sweep's Parquet file"):
        sweep.run("sg-fanout", {"members": "10"}, out=out, scheduler="serial")
    assert out.read_text() == "my notes"


def test_a_scheduler_that_is_not_an_address_is_refused():
    with pytest.raises(ScenarioError, match="--scheduler takes local, serial or"):
        sweep.run("sg-fanout", {"members": "10"}, scheduler="my-cluster")


def test_the_command_line_writes_the_file_and_prints_the_summary(tmp_path):
    out = tmp_path / "s.parquet"
    args = ["sweep", "sg-fanout", "--vary", "members=10,20", "--repeats", "2", "--scheduler", "serial"]
    result = CliRunner().invoke(main, [*args, "--out", str(out), "--show", "rules_written"])
    assert result.exit_code == 0, result.output
    assert result.stdout.split("\n")[0].split() == ["members", "runs", "rules_written"]
    assert "4 runs, 0 already in the file" in result.stderr
    assert len(pd.read_parquet(out)) == 4
    result = CliRunner().invoke(main, [*args, "--show", "nope"])
    assert result.exit_code == 2 and "--show: no column nope" in result.stderr
