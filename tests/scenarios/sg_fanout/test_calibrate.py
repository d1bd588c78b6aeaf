"""sg-fanout calibration: the fit's mechanics without root (the live fit: test_calibrate_live.py)."""

import numpy as np
import pytest

from labtwin.scenarios.sg_fanout.calibrate import FAMILIES, MEASURED_PROFILE, base_profile, features, nnls, predict
from labtwin.scenarios.sg_fanout.profiles import load_profile


def test_nnls_recovers_costs_and_never_goes_negative():
    x = np.array([[1.0, 10.0], [1.0, 20.0], [1.0, 40.0]])
    assert np.allclose(nnls(x, x @ np.array([0.02, 0.001])), [0.02, 0.001])
    assert (nnls(x, np.array([0.05, 0.03, 0.01])) >= 0).all()  # a falling curve: no negative per-rule cost


@pytest.mark.parametrize("firewall", ["iptables", "ipset", "ovs", "subtable"])
def test_the_model_is_linear_in_the_fitted_costs(firewall):
    family = next(params for fws, params in FAMILIES.values() if firewall in fws)
    costs = dict(zip(family, (0.01, 2e-5, 3e-3)))
    x = features(firewall, 20, 2, 3, family)
    assert predict(firewall, 20, 2, 3, base_profile(**costs)) == pytest.approx(
        sum(c * f for c, f in zip(costs.values(), x)), rel=0.02, abs=1e-4
    )


def test_iptables_per_rule_feature_grows_quadratically():
    params = FAMILIES["iptables"][1]
    small, big = features("iptables", 40, 1, 1, params)[1], features("iptables", 80, 1, 1, params)[1]
    assert 1.5 < np.log2(big / small) < 2.05  # rules rebuilt ~ M ports x M members (plus base rules per port)


def test_committed_measured_profile_loads_and_has_no_orchestration_delays():
    profile = load_profile(MEASURED_PROFILE)
    assert profile.name == "measured"
    assert profile.nova_spawn_s == 0 and profile.api_create_port_s == 0
    assert profile.iptables_apply_fixed_s > 0 and profile.ovs_apply_fixed_s > 0
