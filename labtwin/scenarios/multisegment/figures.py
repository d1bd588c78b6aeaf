"""Figures and tables for the ``multisegment`` scenario.

Everything here reads what a run recorded (its events and summary) and
returns a DataFrame or a matplotlib ``Figure``; nothing recomputes the model.

- :func:`allocation_frame` / :func:`allocation_figure`: cumulative allocations
  and failures (by reason) over time, one line per design, with the times the
  operator added segments;
- :func:`bridge_table`: the bridge (or local VLAN) each segment uses per host,
  collisions flagged, ready for ``style_collisions`` in a notebook;
- :func:`migration_timeline`: the rolling restart, one bar per host, with the
  ports each restart moved.
"""

from __future__ import annotations

from typing import Mapping

import matplotlib.pyplot as plt
import pandas as pd

from labtwin.figure_size import NOTEBOOK_WIDTH_IN
from labtwin.records import Run

DAY = 86400.0
REASON_STYLE = {
    "subnet_exhausted": ":",
    "host_connected_to_multiple_segments": "--",
    "host_not_connected_to_any_segment": "-.",
    "host_not_compatible_with_fixed_ips": (0, (1, 3)),
}


def design_label(run: Run) -> str:
    """Short label of the knobs that make the four designs: ``many/segment (ovs)``."""
    d = run.design
    return f"{d.get('segments_per_host')}/{d.get('bridge_naming')} ({d.get('agent')})"


def allocation_frame(run: Run) -> pd.DataFrame:
    """One row per allocation record (a port request, or a batch of ``count`` requests from its first to its
    last request, ``day`` to ``until_day``): the outcome (``ok`` or the failure reason) and cumulative counts
    after it (``ok``, ``failed``, and ``of_outcome`` within its own outcome)."""
    ev = run.events
    ev = ev[ev["kind"].isin(["allocation_ok", "allocation_failed"])].sort_values("t", kind="stable")
    details = list(ev["detail"])
    outcome = ["ok" if k == "allocation_ok" else d.get("reason", "failed") for k, d in zip(ev["kind"], details)]
    frame = pd.DataFrame(
        {
            "day": ev["t"].to_numpy() / DAY,
            "until_day": [d.get("until", t) / DAY for t, d in zip(ev["t"], details)],
            "outcome": outcome,
            "count": [d.get("count", 1) for d in details],
            "host": ev["host"].to_numpy(),
        }
    )
    ok = frame["outcome"] == "ok"
    frame["ok"] = frame["count"].where(ok, 0).cumsum()
    frame["failed"] = frame["count"].where(~ok, 0).cumsum()
    frame["of_outcome"] = frame.groupby("outcome")["count"].cumsum()
    frame.insert(0, "design", design_label(run))
    return frame


def _cumulative(rows: pd.DataFrame, column: str) -> tuple[list[float], list[float]]:
    """The curve of a cumulative count: each record rises from its first request's day (one more than
    before it) to its last's (all of its count); a batch is drawn as the straight line between."""
    days: list[float] = []
    values: list[float] = []
    for start, end, count, after in zip(rows["day"], rows["until_day"], rows["count"], rows[column]):
        days += [start, end]
        values += [after - count + 1, after]
    return days, values


def segment_additions(run: Run) -> pd.DataFrame:
    """When the operator added which segment (day, segment, rack, VLAN, CIDR)."""
    ev = run.events
    ev = ev[ev["kind"] == "segment_added"]
    return pd.DataFrame(
        {
            "day": ev["t"].to_numpy() / DAY,
            "segment": ev["subject"].to_numpy(),
            "rack": [d.get("rack") for d in ev["detail"]],
            "vlan": [d.get("vlan") for d in ev["detail"]],
            "cidr": [d.get("cidr") for d in ev["detail"]],
        }
    )


def allocation_figure(runs: Mapping[str, Run] | list[Run]):
    """Cumulative allocations (left) and failures by reason (right) over time, per design.

    Drawn for a live widget: shown unscaled in a notebook (:data:`~labtwin.figure_size.NOTEBOOK_WIDTH_IN`), no text
    under 7 pt (9.7 px), with fixed margins, as ``tight_layout`` took 0.12 s of its 0.13 s."""
    runs = list(runs.values()) if isinstance(runs, Mapping) else list(runs)
    fig, (ok_ax, fail_ax) = plt.subplots(1, 2, figsize=(NOTEBOOK_WIDTH_IN, 3.8), sharex=True)
    fig.subplots_adjust(left=0.08, right=0.99, bottom=0.13, top=0.91, wspace=0.22)
    for i, run in enumerate(runs):
        colour = f"C{i}"
        frame = allocation_frame(run)
        label = design_label(run)
        width = max(3.0 - 0.6 * i, 1.0)  # wider first: identical curves stay visible
        ok_ax.plot(*_cumulative(frame[frame["outcome"] == "ok"], "ok"), color=colour, linewidth=width, label=label)
        for reason, style in REASON_STYLE.items():
            hits = frame[frame["outcome"] == reason]
            if len(hits):
                fail_ax.plot(
                    *_cumulative(hits, "of_outcome"),
                    color=colour,
                    linestyle=style,
                    linewidth=width,
                    label=f"{label}: {reason}",
                )
        for day in segment_additions(run)["day"]:
            ok_ax.axvline(day, color=colour, alpha=0.35, linewidth=1)
    ok_ax.set_title("ports allocated (lines: segment added)", fontsize=10)
    fail_ax.set_title("requests refused, by Neutron error", fontsize=10)
    ok_ax.set(xlabel="day", ylabel="ports")
    fail_ax.set(xlabel="day", ylabel="requests")
    ok_ax.legend(fontsize=7)
    if fail_ax.lines:
        fail_ax.legend(fontsize=7)
    return fig


def bridge_table(run: Run) -> pd.DataFrame:
    """Per host and L2 device (Linux bridge, or OVS local VLAN on br-int): its segments, and
    whether that merges broadcast domains. ``length`` is the interface name's length."""
    rows = []
    leaks = {(c["host"], c["device"]) for c in run.summary.get("bridge_collisions", [])}
    for host, devices in run.summary.get("l2_domains", {}).items():
        for device, segs in devices.items():
            rows.append(
                {
                    "host": host,
                    "device": device,
                    "length": len(device.split(":")[0]),
                    "segments": ", ".join(segs),
                    "collision": (host, device) in leaks,
                }
            )
    return pd.DataFrame(rows, columns=["host", "device", "length", "segments", "collision"])


def style_collisions(table: pd.DataFrame):
    """The bridge table with collision rows highlighted (a pandas Styler, for notebooks)."""
    return table.style.apply(lambda row: ["background-color: #fde0dd" if row["collision"] else "" for _ in row], axis=1)


def migration_timeline(run: Run):
    """The rolling restart: per host, agent downtime (bar) and the ports it moved (label)."""
    ev = run.events
    ev = ev[ev["kind"] == "agent_restart"]
    starts = {h: t for h, t, d in zip(ev["host"], ev["t"], ev["detail"]) if d.get("phase") == "stop"}
    ends = {h: (t, d) for h, t, d in zip(ev["host"], ev["t"], ev["detail"]) if d.get("phase") == "start"}
    hosts = [h for h in starts if h in ends]
    fig, ax = plt.subplots(figsize=(10, 0.45 * max(len(hosts), 2) + 1.2))
    origin = min(starts.values(), default=0.0)
    for y, host in enumerate(hosts):
        end, detail = ends[host]
        affected = detail.get("ports_affected", 0)
        colour = "#e15759" if affected else "#59a14f"
        ax.broken_barh([(starts[host] - origin, end - starts[host])], (y - 0.35, 0.7), color=colour)
        ax.text(end - origin, y, f" {affected}/{detail.get('ports', 0)} ports moved", va="center", fontsize=8)
    ax.set_yticks(range(len(hosts)), hosts)
    ax.invert_yaxis()
    ax.set(xlabel="seconds since the migration started", title="rolling agent restart (red: ports moved)")
    fig.tight_layout()
    return fig


#: summary key -> short column label (tables must fit a slide).
SUMMARY_COLUMNS = {
    "allocations_ok": "allocated",
    "segments_needed": "segments",
    "segments_per_host_max": "per host",
    "bridge_collision_count": "collisions",
    "longest_interface_name_len": "longest name",
    "names_fit": "fits 15",
    "ports_affected": "ports moved",
}
REFUSED_COLUMNS = {
    "subnet_exhausted": "refused: exhausted",
    "host_connected_to_multiple_segments": "refused: 409 multi",
    "host_not_connected_to_any_segment": "refused: 409 none",
    "host_not_compatible_with_fixed_ips": "refused: fixed_ips",
}


def summary_table(runs: Mapping[str, Run]) -> pd.DataFrame:
    """The headline numbers of several runs side by side, one row per label of *runs*.

    Columns are :data:`SUMMARY_COLUMNS` (short labels of summary keys) with one
    ``refused: ...`` column per Neutron error that happened in any run
    (:data:`REFUSED_COLUMNS`), so a table of healthy runs stays narrow.
    """
    rows = {}
    for label, run in runs.items():
        s = run.summary
        row = {"allocated": s["allocations_ok"]}
        row.update({REFUSED_COLUMNS.get(reason, reason): n for reason, n in s["allocations_failed"].items()})
        row.update({column: s[key] for key, column in SUMMARY_COLUMNS.items() if key in s and key != "allocations_ok"})
        rows[label] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    idle = [c for c in table if c.startswith("refused: ") and not table[c].any()]
    return table.drop(columns=idle)
