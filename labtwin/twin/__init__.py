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

from dataclasses import dataclass

import pandas as pd

from ..records import Probe, Run

PROBE_KEY = ["src", "dst", "protocol", "port"]


@dataclass
class TwinReport:
    scenario: str
    rows: pd.DataFrame  # kind, key, model, emulation, tolerance, agree

    @property
    def agree(self) -> bool:
        return bool(self.rows["agree"].all()) if len(self.rows) else False

    @property
    def disagreements(self) -> pd.DataFrame:
        return self.rows[~self.rows["agree"]]

    def summary(self) -> dict:
        return {
            "scenario": self.scenario,
            "agree": self.agree,
            "compared": int(len(self.rows)),
            "disagreements": self.disagreements.to_dict("records"),
        }

    def _repr_html_(self) -> str:
        verdict = "agree" if self.agree else f"{len(self.disagreements)} disagreements"
        return f"<b>twin {self.scenario}: {verdict}</b>" + self.rows.to_html(index=False)


def compare(model: Run, emulation: Run, tolerances=(), details=()) -> TwinReport:
    """Compare a model run and an emulation run of the same scenario (*details*: probe detail keys that must be equal)."""
    if model.backend != "model" or emulation.backend != "emulation":
        raise ValueError(f"compare(model, emulation) got backends {model.backend!r}, {emulation.backend!r}")
    rows = (compare_probes(model, emulation) + compare_details(model, emulation, details)
            + compare_metrics(model, emulation, tolerances))
    frame = pd.DataFrame(rows, columns=["kind", "key", "model", "emulation", "tolerance", "agree"])
    return TwinReport(model.scenario, frame)


def compare_probes(model: Run, emulation: Run) -> list[dict]:
    left = model.probes[PROBE_KEY + ["verdict"]]
    right = emulation.probes[PROBE_KEY + ["verdict"]]
    joined = left.merge(right, on=PROBE_KEY, how="outer", suffixes=("_model", "_emulation"))
    rows = []
    for rec in joined.itertuples(index=False):
        port = "" if pd.isna(rec.port) else f":{int(rec.port)}"
        m, e = _none_if_nan(rec.verdict_model), _none_if_nan(rec.verdict_emulation)
        rows.append({
            "kind": "probe", "key": f"{rec.src}->{rec.dst} {rec.protocol}{port}",
            "model": m, "emulation": e, "tolerance": "equal", "agree": m is not None and m == e,
        })
    return rows


def compare_details(model: Run, emulation: Run, details) -> list[dict]:
    """One row per joined probe and listed detail key: equal values agree; missing on either side does not."""
    if not details:
        return []
    sides = [{_probe_key(p): p.detail for p in run.records if isinstance(p, Probe)} for run in (model, emulation)]
    rows = []
    for key in sorted(sides[0].keys() | sides[1].keys(), key=str):
        for name in details:
            m, e = (side.get(key, {}).get(name) for side in sides)
            rows.append({"kind": f"probe.{name}", "key": _probe_label(*key), "model": m, "emulation": e,
                         "tolerance": "equal", "agree": m is not None and e is not None and m == e})
    return rows


def _probe_key(p: Probe) -> tuple:
    return (p.src, p.dst, p.protocol, p.port)


def _probe_label(src, dst, protocol, port) -> str:
    return f"{src}->{dst} {protocol}" + ("" if port is None else f":{int(port)}")


def compare_metrics(model: Run, emulation: Run, tolerances) -> list[dict]:
    rows = []
    for tol in tolerances:
        m, e = model.summary.get(tol.metric), emulation.summary.get(tol.metric)
        ok = m is not None and e is not None and tol.agrees(float(m), float(e))
        rows.append({
            "kind": "metric", "key": tol.metric, "model": m, "emulation": e,
            "tolerance": f"±max({tol.absolute}, {tol.relative:.0%})", "agree": ok,
        })
    return rows


def _none_if_nan(value):
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else value
