"""Live: the calibration's mechanics on this machine (how accurate it is, with its spread, is `make bench`'s job).

Without a calibration the twin still compares counts and verdicts and says timing is not compared;
`calibrate` writes this machine's calibration (fingerprint, date, points) into the XDG cache; the
next twin times its model with it and compares port_ready_s.
"""

from pathlib import Path

import pytest

from labtwin import api, calibration
from labtwin.emulation.machine import fingerprint, machine_key
from labtwin.scenarios.sg_fanout.calibrate import calibrate, families_in

KNOBS = {"firewall": "ipset", "members": 5, "hosts": 2, "timing_repeats": 3}


def port_ready(report):
    return report.rows[report.rows.key == "port_ready_s"].iloc[0]


@pytest.mark.emulation
def test_twin_times_only_against_this_machines_calibration(live, ledger_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    report, _, _ = api.twin("sg-fanout", auto_calibrate=False, **KNOBS)
    assert port_ready(report).agree is None and "no calibration for this machine" in port_ready(report).tolerance
    assert report.agree, report.disagreements.to_string()  # counts and verdicts

    result = calibrate(seed=1, members="5,20", repeats="1", firewall="ipset", timing_repeats="3", check="")
    path = Path(result["calibration"])
    made = calibration.Calibration.from_file(path)
    assert made.fingerprint == fingerprint() and made.date
    assert path == calibration.path_for("sg-fanout", machine_key(made.fingerprint))
    assert families_in(made) == {"ipset"} and made.profile["ipset_apply_fixed_s"] > 0
    assert [p["members"] for p in made.points] == [5, 20] and all(p["port_ready_s"] > 0 for p in made.points)

    report, model, emulation = api.twin("sg-fanout", auto_calibrate=False, **KNOBS)
    assert model.design["profile"] == str(path) and emulation.versions["machine"] == machine_key(made.fingerprint)
    assert port_ready(report).agree is not None  # compared; whether within the band is measured by make bench
    counts = report.rows[report.rows.key != "port_ready_s"]
    assert counts.agree.all(), counts[~counts.agree.astype(bool)].to_string()
