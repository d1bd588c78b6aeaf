"""Live: calibrate on emulation runs at 5, 20, 40 members; the model then predicts 30 members within 30%."""

import json

import pytest

from labtwin.model.profiles import load_profile
from labtwin.scenarios.sg_fanout_calibrate import calibrate


@pytest.mark.emulation
def test_calibrated_model_predicts_an_unfitted_size_within_30_percent(live, ledger_dir, tmp_path):
    out = tmp_path / "measured.json"
    result = calibrate(out=out, seed=1, members="5,20,40", joins="5", repeats="3", check="30")  # issue 4: median of repeats
    assert load_profile(out).name == "measured"
    assert json.loads(out.read_text())["polling_interval_s"] < 1e-3
    for row in result["check"]:
        assert row["error"] <= 0.30, result["check"]
