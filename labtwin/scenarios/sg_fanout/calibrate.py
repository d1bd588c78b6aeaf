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

- ``iptables``: ``iptables_apply_fixed_s`` (one ``iptables-restore`` and the
  wiring), ``iptables_rule_s`` (per rule in the rebuilt chains);
- ``ipset``: the same two apart (``ipset_apply_fixed_s``, ``ipset_rule_s``)
  and ``ipset_cmd_s`` (the ``ipset add`` before it). Fitted apart because the
  two hybrid variants' applies grow differently here (plain iptables with the
  group size, the ipset variant hardly at all): one shared pair fitted
  neither within 40%;
- OVS (``ovs``, ``subtable``): ``ovs_apply_fixed_s`` (one bundle),
  ``ovs_flow_s`` (per flow mod).

The model is linear in its costs for a given layout (one iteration per host
per join here), so each run's *features* -- d port_ready_s / d cost -- are
read from the model itself at a small unit cost, and the fit is an ordinary
linear least squares of the emulation's times on those features, weighted by 1/y so that
it minimises relative errors (the twin's timing tolerance is a ratio).
"""

from __future__ import annotations

import contextlib
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np

from labtwin import calibration
from labtwin.emulation.machine import fingerprint, machine_key

from . import emulation
from .model import writes_of
from .model.process import simulate_layout
from .profiles import CostProfile, profile_from_dict
from .spec import CONTROLS, TIMING_REPEATS, generated_layout

#: Costs the emulation does not have (see the module docstring); join_interval_s keeps joins apart, as the
#: emulation waits for each join to be ready before the next.
EMULATION_BASE = {
    "polling_interval_s": 1e-4,
    "rpc_cast_s": 0.0,
    "rpc_handle_s": 0.0,
    "api_create_port_s": 0.0,
    "api_delete_port_s": 0.0,
    "nova_bind_s": 0.0,
    "nova_spawn_s": 0.0,
    "vif_plug_s": 0.0,
    "join_interval_s": 10.0,
    "sg_info_call_s": 0.0,
    "sg_info_per_device_s": 0.0,
    "sg_info_per_member_ip_s": 0.0,
    "port_filter_s": 0.0,
    "iptables_rule_s": 0.0,
    "iptables_restore_rule_s": 0.0,
    "iptables_apply_fixed_s": 0.0,
    "ipset_cmd_s": 0.0,
    "ipset_entry_s": 0.0,
    "ovs_flow_s": 0.0,
    "ovs_apply_fixed_s": 0.0,
    "ipset_apply_fixed_s": 0.0,
    "ipset_rule_s": 0.0,
}
FAMILIES = {
    "iptables": (("iptables",), ("iptables_apply_fixed_s", "iptables_rule_s")),
    "ipset": (("ipset",), ("ipset_apply_fixed_s", "ipset_rule_s", "ipset_cmd_s")),
    "ovs": (("ovs", "subtable"), ("ovs_apply_fixed_s", "ovs_flow_s")),
}
UNIT = 1e-3
#: A calibration committed as a documented example, made on the machine the committed traces ran on: what the
#: notebooks plot and the trace tests time against. A twin uses it for counts only when this machine has no
#: calibration, and then never compares timing (labtwin.api.twin passes that reason on).
MEASURED_PROFILE = Path(__file__).with_name("measured.json")
SCENARIO_NAME = "sg-fanout"
#: A calibration made with another method version is not used for timing (it is made again).
#: 12: the pace is the median of 10 rounds; 11: the pace probe is the apply's own kind of work
#: (commits); 10: timed runs ahead of other work (nice -10); 9: pace exponent measured per strategy
#: under a busy core; 8: 7 timed attempts, probes after.
METHOD_VERSION = 12


def base_profile(name: str = "measured", **costs) -> CostProfile:
    return profile_from_dict({**EMULATION_BASE, **costs, "name": name})


def predict(
    firewall: str,
    members: int,
    hosts: int,
    joins: int,
    profile,
    placement: str = "spread",
    seed: int = 1,
    writes: str = "rebuild",
) -> float:
    """The model's port_ready_s (median over joins, unrounded) for a generated layout.

    *writes*: whose agent the model describes (:func:`~labtwin.scenarios.sg_fanout.model.writes_of`): under
    Neutron's OVS firewall a port's filter has more flows, so its time differs with the same costs.
    """
    layout = generated_layout(members, hosts, placement, joins, 0)
    return statistics.median(simulate_layout(layout, firewall, profile, seed, writes).ready_s)


def features(
    firewall: str, members: int, hosts: int, joins: int, params: tuple, seed: int = 1, writes: str = "rebuild"
) -> list[float]:
    """d port_ready_s / d cost for each of *params* (unit costs; the model is linear in them)."""
    zero = predict(firewall, members, hosts, joins, base_profile("zero"), seed=seed, writes=writes)
    return [
        (predict(firewall, members, hosts, joins, base_profile("unit", **{p: UNIT}), seed=seed, writes=writes) - zero)
        / UNIT
        for p in params
    ]


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


def measure(
    firewalls,
    sizes,
    hosts: int,
    joins: int,
    repeats: int,
    seed: int,
    progress=None,
    timing_repeats: int = 1,
    control: str = "labtwin",
) -> list[dict]:
    """Emulation runs: one row per (firewall, members, repeat) with its port_ready_s (median over joins,
    each join timed *timing_repeats* times as the twin times it).

    *progress*, when given, is called after each run with (runs done, runs in all).
    """
    rows, total = [], len(firewalls) * len(sizes) * repeats
    for firewall in firewalls:
        for members in sizes:
            for r in range(repeats):
                design = {
                    "firewall": firewall,
                    "members": members,
                    "hosts": hosts,
                    "placement": "spread",
                    "joins": joins,
                    "leaves": 0,
                    "timing_repeats": timing_repeats,
                    "control": control,
                }  # no profile: the emulation has no costs to assume, it measures them
                run = emulation.emulate(None, design, seed + r, verdicts=False)
                rows.append(
                    {
                        "firewall": firewall,
                        "members": members,
                        "repeat": r,
                        "port_ready_s": run.summary["port_ready_s"],
                        "pace_s": run.summary["pace_s"],
                        "updates_total": run.summary["updates_total"],
                    }
                )
                if progress is not None:
                    progress(len(rows), total)
    return rows


def fit(
    rows: list[dict], hosts: int, joins: int, seed: int = 1, exponents: Optional[dict] = None, writes: str = "rebuild"
) -> tuple[CostProfile, dict]:
    """The measured profile from *rows*, and the fitted numbers per family (*writes*: as :func:`predict`)."""
    costs, report, reference = {}, {}, paces(rows)
    for family, (firewalls, params) in FAMILIES.items():
        mine = [r for r in rows if r["firewall"] in firewalls and r["port_ready_s"] is not None]
        if not mine:
            continue
        x = np.array([features(r["firewall"], r["members"], hosts, joins, params, seed, writes) for r in mine])
        y = np.array([at_reference_pace(r, reference, exponents) for r in mine])
        coef = nnls(x / y[:, None], np.ones_like(y))  # relative errors: the twin's tolerance is a ratio
        costs.update({p: float(c) for p, c in zip(params, coef)})
        resid = y - x @ coef
        report[family] = {
            "parameters": {p: float(f"{c:.6g}") for p, c in zip(params, coef)},
            "rms_residual_s": float(f"{np.sqrt(np.mean(resid**2)):.4g}"),
            "rms_relative_residual": float(f"{np.sqrt(np.mean((resid / y) ** 2)):.3g}"),
            "points": len(mine),
        }
    return base_profile("measured", **costs), report


def calibrate(
    out=None,
    seed: int = 1,
    members: str = "5,10,20,40",
    hosts: str = "2",
    joins: str = "1",
    repeats: str = "3",
    firewall: str = "iptables,ipset,ovs,subtable",
    check: Optional[str] = "30",
    timing_repeats: str = str(TIMING_REPEATS),
    control: str = "labtwin",
    progress=None,
    **_ignored,
) -> dict:
    """Emulate at *members* sizes, fit, save a calibration of this machine; check the prediction at *check* members.

    Knobs come as ``--set key=value`` strings: ``members`` (sizes, comma-separated),
    ``hosts``, ``joins`` per run (medians over joins), ``repeats``, ``firewall``
    (comma-separated), ``check`` (a size not used for fitting; empty to skip), ``timing_repeats``
    (each join timed that many times, as the twin does: the same measurement on both occasions), ``control``
    (whose agent is timed: ``labtwin``'s own, or ``neutron``'s code, calibrated apart; ``ovn``: real OVN,
    :mod:`.calibrate_ovn`).
    The calibration goes to *out*, or to this machine's place in the cache
    (:mod:`labtwin.calibration`), merged with the families already fitted there.
    """
    started = time.perf_counter()
    sizes = [int(s) for s in str(members).split(",")]
    firewalls = [f for f in str(firewall).split(",") if f]
    h, j, rep, timed = int(hosts), int(joins), int(repeats), int(timing_repeats)
    if control == "ovn":  # real OVN: its own costs and fit (no agent, no firewall families)
        from . import calibrate_ovn

        return calibrate_ovn.calibrate(out, seed, members, hosts, joins, repeats, check, progress)
    if control not in CONTROLS:
        raise ValueError(f"control must be one of {', '.join(CONTROLS)}, not {control!r}")
    facts = fingerprint()
    target = Path(out) if out is not None else calibration.path_for(calibration_name(control), machine_key(facts))
    runs = len(firewalls) * len(sizes) * (rep + 1)
    rows = measure(firewalls, sizes, h, j, rep, seed, _shifted(progress, 0, runs), timed, control)
    with one_core_busy():  # the same points once more, to see how this machine's apply follows its pace
        loaded = measure(firewalls, sizes, h, j, 1, seed, _shifted(progress, len(rows), runs), timed, control)
    exponents = pace_exponents(rows, loaded)
    earlier = _earlier(target, facts) if out is None else None
    if earlier is not None:  # keep the other family's points, refit everything together
        rows = [r for r in earlier.points if r["firewall"] not in firewalls] + rows
        exponents = {
            **{k: v for k, v in earlier.method.get("pace_exponent", {}).items() if k not in firewalls},
            **exponents,
        }
    profile, report = fit(rows, h, j, seed, exponents, writes_of(control))
    reference = paces(rows)
    points = [
        {
            **r,
            "at_reference_pace_s": round(at_reference_pace(r, reference, exponents), 6),
            "model_s": round(
                predict(r["firewall"], r["members"], h, j, profile, seed=seed, writes=writes_of(control)), 6
            ),
        }
        for r in rows
    ]
    checked = (
        check_prediction(profile, firewalls, int(check), h, j, rep, seed, timed, reference, exponents, control)
        if check
        else []
    )
    method = {
        "version": METHOD_VERSION,
        "control": control,
        "hosts": h,
        "joins": j,
        "timing_repeats": timed,
        "pace_s": reference,
        "pace_exponent": exponents,
        "loaded_points": loaded,
    }
    result = calibration.Calibration(
        calibration_name(control), facts, profile.to_dict(), fit=report, method=method, points=points, check=checked
    )
    path = calibration.save(result, target)
    return {
        "calibration": str(path),
        "machine": facts,
        "date": calibration.Calibration.from_file(path).date,
        "method": method,
        "fit": report,
        "spread": spread(rows, exponents),
        "points": points,
        "check": checked,
        "elapsed_s": round(time.perf_counter() - started, 1),
    }


def calibration_name(control: str) -> str:
    """Where a calibration of *control*'s agent is kept: ``sg-fanout`` for labtwin's, ``sg-fanout-neutron`` for
    Neutron's (each agent has its own costs; neither may time the other)."""
    return SCENARIO_NAME if control == "labtwin" else f"{SCENARIO_NAME}-{control}"


def _earlier(path: Path, facts: dict) -> Optional[calibration.Calibration]:
    if not path.is_file():
        return None
    earlier = calibration.Calibration.from_file(path)
    return earlier if earlier.fingerprint == facts and earlier.method.get("version") == METHOD_VERSION else None


def families_in(cal: calibration.Calibration) -> set[str]:
    """The firewall families a calibration has fitted (``iptables``, ``ipset``, ``ovs``) with today's method."""
    if cal.method.get("version") != METHOD_VERSION:
        return set()
    return {family for family in FAMILIES if family in cal.fit}


def family_of(firewall: str) -> str:
    return next(family for family, (firewalls, _) in FAMILIES.items() if firewall in firewalls)


def paces(rows: list[dict]) -> dict[str, float]:
    """Per firewall, the median pace (the fixed probe's time) of the calibration's runs: the machine's speed then."""
    by_firewall: dict[str, list[float]] = {}
    for r in rows:
        if r.get("pace_s"):
            by_firewall.setdefault(r["firewall"], []).append(r["pace_s"])
    return {fw: round(statistics.median(v), 6) for fw, v in sorted(by_firewall.items())}


def spread(rows: list[dict], exponents: Optional[dict] = None) -> dict[str, float]:
    """Per firewall, the largest max/min ratio of port_ready_s (at the reference pace) among repeats of one
    size (1.0 = no spread)."""
    worst: dict[str, float] = {}
    for (fw, members), times in _group(rows, paces(rows), exponents).items():
        if len(times) > 1 and min(times) > 0:
            worst[fw] = round(max(worst.get(fw, 1.0), max(times) / min(times)), 3)
    return worst


def _group(rows: list[dict], reference: dict[str, float], exponents: Optional[dict]) -> dict[tuple, list[float]]:
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        if r["port_ready_s"] is not None:
            groups.setdefault((r["firewall"], r["members"]), []).append(at_reference_pace(r, reference, exponents))
    return groups


def at_reference_pace(row: dict, reference: dict[str, float], exponents: Optional[dict] = None) -> float:
    """A run's port_ready_s as it would have been at the calibration's reference pace (its median): a run
    made while the machine was busier (a slower pace probe) counts faster, by the strategy's measured
    exponent. The twin applies the same correction (labtwin.api.timing_basis)."""
    fw = row["firewall"]
    return row["port_ready_s"] / calibration.pace_scale(row.get("pace_s"), reference.get(fw), (exponents or {}).get(fw))


def pace_exponents(idle: list[dict], loaded: list[dict]) -> dict[str, float]:
    """Per firewall, how the apply follows the pace probe: log(time loaded / idle) / log(pace loaded / idle),
    the median over sizes (each side's median), within 0..2. A firewall whose probe barely moved keeps none
    (the twin then uses :data:`labtwin.calibration.PACE_EXPONENT`)."""
    out = {}
    for fw in sorted({r["firewall"] for r in loaded}):
        ratios = []
        for members in sorted({r["members"] for r in loaded if r["firewall"] == fw}):
            i = [r for r in idle if (r["firewall"], r["members"]) == (fw, members) and r.get("pace_s")]
            lo = [r for r in loaded if (r["firewall"], r["members"]) == (fw, members) and r.get("pace_s")]
            if not i or not lo:
                continue
            pace = statistics.median(r["pace_s"] for r in lo) / statistics.median(r["pace_s"] for r in i)
            took = statistics.median(r["port_ready_s"] for r in lo) / statistics.median(r["port_ready_s"] for r in i)
            if pace > 1.1 and took > 0:
                ratios.append(math.log(took) / math.log(pace))
        if ratios:
            out[fw] = round(min(2.0, max(0.0, statistics.median(ratios))), 3)
    return out


@contextlib.contextmanager
def one_core_busy():
    """Another process spinning on one core for as long as the block runs (ended whatever happens)."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def _shifted(progress, offset: int, total: int):
    return None if progress is None else (lambda done, _total: progress(offset + done, total))


def check_prediction(
    profile,
    firewalls,
    members: int,
    hosts: int,
    joins: int,
    repeats: int,
    seed: int,
    timing_repeats: int = 1,
    reference: Optional[dict] = None,
    exponents: Optional[dict] = None,
    control: str = "labtwin",
) -> list[dict]:
    """The model's prediction at a size not fitted vs the emulation's median of repeats (at the reference pace)."""
    out = []
    for firewall in firewalls:
        rows = measure([firewall], [members], hosts, joins, repeats, seed + 100, None, timing_repeats, control)
        times = [at_reference_pace(r, reference or {}, exponents) for r in rows]
        emulated = statistics.median(times)
        predicted = predict(firewall, members, hosts, joins, profile, seed=seed, writes=writes_of(control))
        out.append(
            {
                "firewall": firewall,
                "members": members,
                "emulation_s": round(emulated, 6),
                "emulation_min_s": round(min(times), 6),
                "emulation_max_s": round(max(times), 6),
                "model_s": round(predicted, 6),
                "error": round(abs(predicted - emulated) / emulated, 3),
            }
        )
    return out
