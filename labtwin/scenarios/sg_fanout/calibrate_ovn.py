"""``labtwin calibrate sg-fanout --set control=ovn``: fit ML2/OVN's time to ready on this machine.

Each run emulates the group under real OVN (:mod:`.emulation.ovn_workload`: Neutron's own ML2/OVN
driver, OVN 23.03, a chassis per host) at one size. Each join (timed ``timing_repeats`` times, as the
twin times it, and its fastest attempt kept) gives three numbers: the time to ready (the poller's first
allowed reply both ways), how long that attempt's ``PUT /ports/<id>`` took (timed by Neutron's server),
and the OpenFlow flows written on the busiest chassis (its ``ovn_diff``).

The fit (:func:`fit`) is the model's (:func:`.model.ovn.ready_s`): ``ovn_update_port_s`` is the median
API call; ``ovn_propagate_s`` and ``ovn_flow_s`` a non-negative least-squares line of the rest (ready
minus the API call) on the flows, or, when every join wrote as many flows (one or two members per
chassis always do here: 8), the median rest and no per-flow cost. A size not used for fitting checks
the prediction.

The agents' calibration (:mod:`.calibrate`) scales times by the machine's pace; this one does not (no
pace probe of OVN's own kind of work exists yet): its twins compare the raw times.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Optional

import numpy as np

from labtwin import calibration
from labtwin.emulation.machine import fingerprint, machine_key
from labtwin.records import Event, Operation, Recorder, Run

from . import emulation
from .calibrate import base_profile, calibration_name, nnls
from .model import ovn
from .spec import SgFanoutDesign, generated_layout

#: A calibration made with another method version is not used for timing.
METHOD_VERSION = 1
#: A calibration of ML2/OVN committed as a documented example, made on the machine the committed OVN traces
#: ran on (traces/sg-fanout/ovn*): what their tests time against. Twins use this machine's own.
OVN_MEASURED_PROFILE = Path(__file__).with_name("ovn-measured.json")


def predict(members: int, hosts: int, joins: int, profile) -> float:
    """The model's time to ready (median over joins) for a generated layout under *profile*'s OVN costs."""
    layout = generated_layout(members, hosts, "spread", joins, 0)
    ready = ovn.run_layout(layout, Recorder(), profile)["ready_s"]
    if not ready:
        raise ValueError(f"profile {profile.name} has no OVN costs")
    return statistics.median(ready)


def join_points(run: Run) -> list[dict]:
    """Per join of an OVN emulation: time to ready (the fastest attempt), that attempt's API call, and the
    flows written on the busiest chassis (by the first)."""
    flows = {
        r.subject: max(r.detail["openflows_by_chassis"].values(), default=0)
        for r in run.records
        if isinstance(r, Operation) and r.op == "ovn_diff"
    }
    points = []
    for r in run.records:
        if isinstance(r, Event) and r.kind == "port_ready" and r.detail.get("latency_s") is not None:
            points.append(
                {
                    "members": run.summary["members"],
                    "join": r.subject,
                    "api_s": r.detail["api_s"],  # the fastest attempt's API call (the one whose ready is kept)
                    "ready_s": round(r.detail["latency_s"], 6),
                    "flows_max": flows[r.subject],
                }
            )
    return points


def measure(sizes: list[int], hosts: int, joins: int, repeats: int, seed: int, progress=None) -> list[dict]:
    """Emulation runs at each size, *repeats* times: every join's point (see :func:`join_points`)."""
    points, total, done = [], len(sizes) * repeats, 0
    for members in sizes:
        for r in range(repeats):
            design = SgFanoutDesign.of(
                {"firewall": "ovn", "members": members, "hosts": hosts, "joins": joins, "leaves": 0}
            )
            points += join_points(emulation.emulate(None, design, seed + r, verdicts=False))
            done += 1
            if progress is not None:
                progress(done, total)
    return points


def fit(points: list[dict]) -> tuple[dict, dict]:
    """The OVN costs from *points*, and how well they fit (see the module docstring)."""
    if not points:
        raise ValueError("no join became ready in the calibration runs: nothing to fit")
    api = statistics.median(p["api_s"] for p in points)
    x = np.array([[1.0, float(p["flows_max"])] for p in points])
    y = np.array([max(p["ready_s"] - p["api_s"], 0.0) for p in points])
    if len({p["flows_max"] for p in points}) > 1:
        fixed, per_flow = nnls(x, y)
    else:  # every join wrote as many flows: a per-flow cost cannot be told from the fixed part, so it is 0
        fixed, per_flow = float(np.median(y)), 0.0
    costs = {"ovn_update_port_s": float(api), "ovn_propagate_s": float(fixed), "ovn_flow_s": float(per_flow)}
    predicted = api + x @ np.array([fixed, per_flow])
    ready = np.array([p["ready_s"] for p in points])
    report = {
        "ovn": {
            "parameters": {k: float(f"{v:.6g}") for k, v in costs.items()},
            "rms_relative_residual": float(f"{np.sqrt(np.mean(((ready - predicted) / ready) ** 2)):.3g}"),
            "points": len(points),
        }
    }
    return costs, report


def calibrate(
    out=None,
    seed: int = 1,
    members: str = "5,10,20,40",
    hosts: str = "2",
    joins: str = "2",
    repeats: str = "2",
    check: Optional[str] = "30",
    progress=None,
) -> dict:
    """Emulate under real OVN at *members* sizes, fit, save a calibration of this machine's ML2/OVN."""
    started = time.perf_counter()
    sizes = [int(s) for s in str(members).split(",")]
    h, j, rep = int(hosts), int(joins), int(repeats)
    facts = fingerprint()
    target = Path(out) if out is not None else calibration.path_for(calibration_name("ovn"), machine_key(facts))
    points = measure(sizes, h, j, rep, seed, progress)
    costs, report = fit(points)
    profile = base_profile("measured-ovn", **costs)
    checked = []
    if check:
        at = measure([int(check)], h, j, 1, seed)
        measured = statistics.median(p["ready_s"] for p in at)
        model = predict(int(check), h, j, profile)
        checked = [
            {"firewall": "ovn", "members": int(check), "emulation_s": round(measured, 6), "model_s": round(model, 6)}
        ]
        checked[0]["error"] = round(model / measured - 1, 3)
    method = {"version": METHOD_VERSION, "control": "ovn", "hosts": h, "joins": j, "repeats": rep}
    result = calibration.Calibration(
        calibration_name("ovn"), facts, profile.to_dict(), fit=report, method=method, points=points, check=checked
    )
    path = calibration.save(result, target)
    return {
        "calibration": str(path),
        "machine": facts,
        "method": method,
        "fit": report,
        "points": points,
        "check": checked,
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
