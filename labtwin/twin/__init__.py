"""The twin check: does the model agree with the emulation on the same scenario?

Comparing is a join, because both backends write the same records:

- probes are joined on (src, dst, protocol, port); every verdict must be equal,
  and a probe present on one side only is a disagreement; so must each probe
  ``detail`` key the scenario lists in ``probe_details`` (e.g. a packet path);
- each :class:`~labtwin.scenarios.Tolerance` of the scenario compares one
  summary metric, within its stated relative/absolute tolerance.

A :class:`TwinReport` holds one row per comparison and says where they do not
agree; it never reads one backend to produce the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..records import Probe, Run

PROBE_KEY = ["src", "dst", "protocol", "port"]


@dataclass
class TwinReport:
    scenario: str
    rows: pd.DataFrame  # kind, key, model, emulation, tolerance, agree
    #: How many emulations the timing comparison took (more than 1: a timing miss was measured again).
    timing_attempts: int = 1
    #: Knobs the model took from the emulation: what its real system drew at random (``Scenario.drawn``).
    drawn: dict = field(default_factory=dict)

    @property
    def agree(self) -> bool:
        """True when every compared row agrees (rows marked not compared, agree None, do not count)."""
        compared = self.rows["agree"].dropna()
        return bool(compared.astype(bool).all()) if len(compared) else False

    @property
    def disagreements(self) -> pd.DataFrame:
        return self.rows[self.rows["agree"].map(lambda v: v is False or v is np.False_)]

    @property
    def not_compared(self) -> pd.DataFrame:
        return self.rows[self.rows["agree"].isna()]

    def summary(self) -> dict:
        return {
            "scenario": self.scenario,
            "agree": self.agree,
            "compared": int(len(self.rows)),
            "timing_attempts": self.timing_attempts,
            "drawn": dict(self.drawn),
            "disagreements": self.disagreements.to_dict("records"),
        }

    def _repr_html_(self) -> str:
        verdict = "agree" if self.agree else f"{len(self.disagreements)} disagreements"
        return f"<b>twin {self.scenario}: {verdict}</b>" + self.rows.to_html(index=False)


def compare(
    model: Run, emulation: Run, tolerances=(), details=(), timing_not_compared: str = "", pace: float = 1.0
) -> TwinReport:
    """Compare a model run and an emulation run of the same scenario (*details*: probe detail keys that must be equal).

    *timing_not_compared*, when given, is why wall-clock metrics (``Tolerance.timing``) are not compared
    (e.g. no calibration of this machine): their rows show both values, that reason, and ``agree`` None.
    Otherwise the model's times are scaled by *pace* (the machine's speed at calibration over its speed
    during the emulation, measured with the same fixed probe) before the tolerance applies; the row says so.
    """
    if model.backend != "model" or emulation.backend != "emulation":
        raise ValueError(f"compare(model, emulation) got backends {model.backend!r}, {emulation.backend!r}")
    rows = (
        compare_probes(model, emulation)
        + compare_details(model, emulation, details)
        + compare_metrics(model, emulation, tolerances, timing_not_compared, pace)
    )
    frame = pd.DataFrame(rows, columns=["kind", "key", "model", "emulation", "tolerance", "agree"])
    return TwinReport(model.scenario, frame)


def compare_probes(model: Run, emulation: Run) -> list[dict]:
    """One row per probe, joined on source, destination and flow: equal verdicts agree. A probe either side
    marks ``not_compared`` (its detail says why: a behaviour the model does not predict) is shown with
    that reason and ``agree`` None."""
    left, right = (_probes_with_reason(run) for run in (model, emulation))
    joined = left.merge(right, on=PROBE_KEY, how="outer", suffixes=("_model", "_emulation"))
    rows = []
    for rec in joined.itertuples(index=False):
        port = "" if pd.isna(rec.port) else f":{int(rec.port)}"
        m, e = _none_if_nan(rec.verdict_model), _none_if_nan(rec.verdict_emulation)
        why = _none_if_nan(rec.not_compared_model) or _none_if_nan(rec.not_compared_emulation)
        rows.append(
            {
                "kind": "probe",
                "key": f"{rec.src}->{rec.dst} {rec.protocol}{port}",
                "model": m,
                "emulation": e,
                "tolerance": f"not compared: {why}" if why else "equal",
                "agree": None if why else m is not None and m == e,
            }
        )
    return rows


def _probes_with_reason(run: Run) -> pd.DataFrame:
    probes = run.probes
    reasons = [d.get("not_compared") if isinstance(d, dict) else None for d in probes["detail"]]
    return probes[PROBE_KEY + ["verdict"]].assign(not_compared=reasons)


def compare_details(model: Run, emulation: Run, details) -> list[dict]:
    """One row per joined probe and listed detail key: equal values agree (None too: "never arrives" is a
    value); a key missing on either side does not."""
    if not details:
        return []
    sides = [{_probe_key(p): p.detail for p in run.records if isinstance(p, Probe)} for run in (model, emulation)]
    rows = []
    for key in sorted(sides[0].keys() | sides[1].keys(), key=str):
        for name in details:
            m, e = (side.get(key, {}).get(name, _MISSING) for side in sides)
            rows.append(
                {
                    "kind": f"probe.{name}",
                    "key": probe_label(*key),
                    "model": None if m is _MISSING else m,
                    "emulation": None if e is _MISSING else e,
                    "tolerance": "equal",
                    "agree": m is not _MISSING and e is not _MISSING and m == e,
                }
            )
    return rows


_MISSING = object()


def _probe_key(p: Probe) -> tuple:
    return (p.src, p.dst, p.protocol, p.port)


def probe_label(src, dst, protocol, port) -> str:
    """The twin's name for a probe (a report row's ``key``): ``web-1->app-1 icmp``, ``external->web-1 tcp:22``;
    a missing port may be None or NaN (a DataFrame's)."""
    return f"{src}->{dst} {protocol}" + ("" if port is None or pd.isna(port) else f":{int(port)}")


def compare_metrics(
    model: Run, emulation: Run, tolerances, timing_not_compared: str = "", pace: float = 1.0
) -> list[dict]:
    rows = []
    for tol in tolerances:
        if tol.metric not in model.summary and tol.metric not in emulation.summary:
            continue  # a metric of another design (sg-fanout's OVN counts beside an agent's firewall)
        m, e = model.summary.get(tol.metric), emulation.summary.get(tol.metric)
        row = {"kind": "metric", "key": tol.metric, "model": m, "emulation": e, "tolerance": tol.describe()}
        if tol.timing and timing_not_compared:
            rows.append({**row, "tolerance": f"not compared: {timing_not_compared}", "agree": None})
            continue
        if m is None and e is None:  # e.g. a time to ready in a run without joins: nothing to compare
            rows.append({**row, "tolerance": "not compared: neither side has a value", "agree": None})
            continue
        scale = pace if tol.timing else 1.0
        if scale != 1.0:
            row["tolerance"] += f" of model × {scale:.2f} (this machine's pace now against at calibration)"
        rows.append({**row, "agree": m is not None and e is not None and tol.agrees(float(m) * scale, float(e))})
    return rows


def _none_if_nan(value):
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else value
