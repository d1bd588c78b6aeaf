"""The built-in cost profiles: train-2019 (2019's costs, derived where no source gives a number) and
neutron-29 (the same deployment, the hybrid driver's apply measured from Neutron 29's own agent code)."""

import json

import pytest

from labtwin.scenarios.sg_fanout import profiles
from labtwin.scenarios.sg_fanout.profiles import NEUTRON_29_MEASURED, TRAIN_2019, load_profile


def test_neutron_29_is_train_2019s_deployment_with_the_apply_measured_from_neutrons_code():
    calibration = json.loads(profiles.NEUTRON_29_CALIBRATION.read_text())
    assert calibration["method"]["control"] == "neutron" and calibration["fingerprint"]
    p = load_profile("neutron-29")
    assert p.name == "neutron-29"
    for key in NEUTRON_29_MEASURED:
        assert getattr(p, key) == calibration["profile"][key], key
    unchanged = [k for k in p.to_dict() if k not in NEUTRON_29_MEASURED and k != "name"]
    assert all(getattr(p, k) == getattr(TRAIN_2019, k) for k in unchanged)
    assert p.polling_interval_s == 2.0  # the deployment's loop is still Neutron's default


def test_a_calibration_of_labtwins_agent_is_not_taken_for_neutrons(tmp_path, monkeypatch):
    ours = json.loads(profiles.NEUTRON_29_CALIBRATION.read_text())
    ours["method"]["control"] = "labtwin"
    path = tmp_path / "neutron29.json"
    path.write_text(json.dumps(ours))
    monkeypatch.setattr(profiles, "NEUTRON_29_CALIBRATION", path)
    with pytest.raises(ValueError, match="not a calibration of Neutron's agent"):
        load_profile("neutron-29")


def test_a_profile_file_can_build_on_neutron_29(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"base": "neutron-29", "polling_interval_s": 1.0}))
    p = load_profile(str(path))
    assert p.polling_interval_s == 1.0 and p.iptables_rule_s == load_profile("neutron-29").iptables_rule_s
