"""``labtwin calibrate sg-fanout``: fit a ``measured`` cost profile from emulation runs.

"Emulate small, simulate big": the emulation runs the workload at a few
group sizes; the model's costs are then fitted so that the model, with that
profile, reproduces the emulation's ``port_ready_s``.

What the emulation has and does not have decides the profile's fixed part
(:data:`EMULATION_BASE`): no API server, no Nova, no RPC and no DB fetch,
and the emulated agent starts the moment the join is made (no ``rpc_loop``
tick) -- so those costs are zero and the polling interval is negligible.
What is fitted is the data-plane apply, per firewall family, as
*fixed + per-rule* cost by least squares (non-negative):

- hybrid (``iptables``, ``ipset``): ``iptables_apply_fixed_s`` (one
  ``iptables-restore`` and the wiring), ``iptables_rule_s`` (per rule in the
  rebuilt chains), ``ipset_cmd_s`` (the ``ipset add`` before it);
- OVS (``ovs``, ``subtable``): ``ovs_apply_fixed_s`` (one bundle),
  ``ovs_flow_s`` (per flow mod).

The model is linear in its costs for a given layout (one iteration per host
per join here), so each run's *features* -- d port_ready_s / d cost -- are
read from the model itself at a small unit cost, and the fit is an ordinary
linear least squares of the emulation's medians on those features.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Optional

import numpy as np

from ..description.sg_fanout import generated_layout
from ..emulation import sg_fanout as emulation
from ..model.profiles import CostProfile, profile_from_dict, save_profile
from ..model.sg_fanout_process import simulate_layout

#: Costs the emulation does not have (see the module docstring); join_interval_s keeps joins apart, as the
#: emulation waits for each join to be ready before the next.
EMULATION_BASE = {
    "polling_interval_s": 1e-4, "rpc_cast_s": 0.0, "rpc_handle_s": 0.0, "api_create_port_s": 0.0,
    "api_delete_port_s": 0.0, "nova_bind_s": 0.0, "nova_spawn_s": 0.0, "vif_plug_s": 0.0, "join_interval_s": 10.0,
    "sg_info_call_s": 0.0, "sg_info_per_device_s": 0.0, "sg_info_per_member_ip_s": 0.0, "port_filter_s": 0.0,
    "iptables_rule_s": 0.0, "iptables_restore_rule_s": 0.0, "iptables_apply_fixed_s": 0.0, "ipset_cmd_s": 0.0,
    "ipset_entry_s": 0.0, "ovs_flow_s": 0.0, "ovs_apply_fixed_s": 0.0,
}
FAMILIES = {
    "hybrid": (("iptables", "ipset"), ("iptables_apply_fixed_s", "iptables_rule_s", "ipset_cmd_s")),
    "ovs": (("ovs", "subtable"), ("ovs_apply_fixed_s", "ovs_flow_s")),
}
UNIT = 1e-3
MEASURED_PROFILE = Path(__file__).with_name("sg_fanout_measured.json")


def base_profile(name: str = "measured", **costs) -> CostProfile:
    return profile_from_dict({**EMULATION_BASE, **costs, "name": name})


def predict(firewall: str, members: int, hosts: int, joins: int, profile, placement: str = "spread", seed: int = 1) -> float:
    """The model's port_ready_s (median over joins, unrounded) for a generated layout."""
    layout = generated_layout(members, hosts, placement, joins, 0)
    return statistics.median(simulate_layout(layout, firewall, profile, seed).ready_s)


def features(firewall: str, members: int, hosts: int, joins: int, params: tuple, seed: int = 1) -> list[float]:
    """d port_ready_s / d cost for each of *params* (unit costs; the model is linear in them)."""
    zero = predict(firewall, members, hosts, joins, base_profile("zero"), seed=seed)
    return [(predict(firewall, members, hosts, joins, base_profile("unit", **{p: UNIT}), seed=seed) - zero) / UNIT
            for p in params]


def nnls(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares with non-negative coefficients (a cost cannot be negative): drop and refit."""
    active = list(range(x.shape[1]))
    coef = np.zeros(x.shape[1])
    while active:
        sol, *_ = np.linalg.lstsq(x[:, active], y, rcond=None)
        if (sol >= 0).all():
            coef[active] = sol
            return coef
        active.pop(int(np.argmin(sol)))
    return coef


def measure(firewalls, sizes, hosts: int, joins: int, repeats: int, seed: int) -> list[dict]:
    """Emulation runs: one row per (firewall, members, repeat) with its port_ready_s (median over joins)."""
    rows = []
    for firewall in firewalls:
        for members in sizes:
            for r in range(repeats):
                design = {"firewall": firewall, "members": members, "hosts": hosts, "placement": "spread",
                          "joins": joins, "leaves": 0, "profile": "measured"}
                run = emulation.emulate(None, design, seed + r, verdicts=False)
                rows.append({"firewall": firewall, "members": members, "repeat": r,
                             "port_ready_s": run.summary["port_ready_s"],
                             "updates_total": run.summary["updates_total"]})
    return rows


def fit(rows: list[dict], hosts: int, joins: int, seed: int = 1) -> tuple[CostProfile, dict]:
    """The measured profile from *rows*, and the fitted numbers per family."""
    costs, report = {}, {}
    for family, (firewalls, params) in FAMILIES.items():
        mine = [r for r in rows if r["firewall"] in firewalls and r["port_ready_s"] is not None]
        if not mine:
            continue
        x = np.array([features(r["firewall"], r["members"], hosts, joins, params, seed) for r in mine])
        y = np.array([r["port_ready_s"] for r in mine])
        coef = nnls(x, y)
        costs.update({p: float(c) for p, c in zip(params, coef)})
        resid = y - x @ coef
        report[family] = {"parameters": {p: float(f"{c:.6g}") for p, c in zip(params, coef)},
                          "rms_residual_s": float(f"{np.sqrt(np.mean(resid ** 2)):.4g}"), "points": len(mine)}
    return base_profile("measured", **costs), report


def calibrate(out, seed: int = 1, members: str = "5,10,20,40", hosts: str = "2", joins: str = "5",
              repeats: str = "1", firewall: str = "iptables,ipset,ovs,subtable", check: Optional[str] = "30",
              **_ignored) -> dict:
    """Emulate at *members* sizes, fit, save the profile to *out*; check the prediction at *check* members.

    Knobs come as ``--set key=value`` strings: ``members`` (sizes, comma-separated),
    ``hosts``, ``joins`` per run (medians over joins), ``repeats``, ``firewall``
    (comma-separated), ``check`` (a size not used for fitting; empty to skip).
    """
    started = time.perf_counter()
    sizes = [int(s) for s in str(members).split(",")]
    firewalls = [f for f in str(firewall).split(",") if f]
    h, j, rep = int(hosts), int(joins), int(repeats)
    rows = measure(firewalls, sizes, h, j, rep, seed)
    profile, report = fit(rows, h, j, seed)
    path = save_profile(profile, out)
    result = {"profile": str(path), "fit": report, "points": [
        {**r, "model_s": round(predict(r["firewall"], r["members"], h, j, profile, seed=seed), 6)} for r in rows]}
    if check:
        result["check"] = check_prediction(profile, firewalls, int(check), h, j, rep, seed)
    result["elapsed_s"] = round(time.perf_counter() - started, 1)
    return result


def check_prediction(profile, firewalls, members: int, hosts: int, joins: int, repeats: int, seed: int) -> list[dict]:
    """The model's prediction at a size not fitted vs the emulation's median of repeats."""
    out = []
    for firewall in firewalls:
        measured = [r["port_ready_s"] for r in measure([firewall], [members], hosts, joins, repeats, seed + 100)]
        emulated = statistics.median(measured)
        predicted = predict(firewall, members, hosts, joins, profile, seed=seed)
        out.append({"firewall": firewall, "members": members, "emulation_s": round(emulated, 6),
                    "model_s": round(predicted, 6), "error": round(abs(predicted - emulated) / emulated, 3)})
    return out
