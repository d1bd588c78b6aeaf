"""multisegment_figures.summary_table: the headline numbers of runs side by side."""

from labtwin.scenarios.multisegment import SCENARIO
from labtwin.scenarios.multisegment.figures import summary_table
from labtwin.scenarios.multisegment.model import simulate


def run(**knobs):
    return simulate(None, SCENARIO.design({"racks": 1, "hosts_per_rack": 1, "demand": 1500, **knobs}), 1)


def test_summary_table_rows_per_label_and_only_errors_that_happened():
    table = summary_table({"one": run(segments_per_host="one"), "many": run(segments_per_host="many")})
    assert list(table.index) == ["one", "many"]
    assert table.loc["one", "allocated"] == 1020 and table.loc["many", "allocated"] == 1500
    assert table.loc["one", "refused: exhausted"] == 480
    assert "refused: 409 multi" not in table
    assert list(table["segments"]) == [1, 2] and list(table["collisions"]) == [0, 1]


def test_summary_table_shows_migration_ports_when_there_is_one():
    table = summary_table({"m": run(segments_per_host="many", bridge_naming="segment", migration="rolling-restart")})
    assert table.loc["m", "ports moved"] > 0
    assert "ports moved" not in summary_table({"n": run()})
