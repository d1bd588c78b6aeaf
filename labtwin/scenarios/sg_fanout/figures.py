"""Figures for the ``sg-fanout`` scenario: growth with group size, and time to ready.

Both take the DataFrame of :func:`labtwin.scenarios.sg_fanout.model.sweep` (one row per
run: ``firewall``, ``members``, ``hosts``, ``rules_written``, ``port_ready_s``,
...) and return a matplotlib ``Figure``; nothing here runs the model.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, NullLocator

from labtwin import api
from labtwin.figure_size import NOTEBOOK_WIDTH_IN

ORDER = ("iptables", "ipset", "ovs", "subtable")
COLOURS = {"iptables": "#e15759", "ipset": "#f28e2b", "ovs": "#4e79a7", "subtable": "#59a14f"}
#: The PTG's "up to 5 minutes" coincides with Nova's vif_plugging_timeout (300 s,
#: fatal by default): past it, the instance goes to ERROR.
FIVE_MINUTES = 300.0


def log_slope(x, y) -> float:
    """Least-squares slope of log(y) against log(x): 2 quadratic, 1 linear, 0 flat.

    >>> round(log_slope([10, 100, 1000], [1, 100, 10000]), 3)
    2.0
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = (x > 0) & (y > 0)
    return float(np.polyfit(np.log(x[keep]), np.log(y[keep]), 1)[0])


def _firewalls(df: pd.DataFrame) -> list[str]:
    present = list(dict.fromkeys(df["firewall"]))
    return [f for f in ORDER if f in present] + [f for f in present if f not in ORDER]


def growth_figure(df: pd.DataFrame, hosts: int | None = None):
    """Log-log growth of rules written and of time to ready with group size, one line per strategy.

    Uses the rows with the fewest hosts unless *hosts* is given; the legend
    gives each line's fitted log-log slope (over 100+ members when there are
    such rows, where fixed costs no longer dominate).
    """
    hosts = int(df["hosts"].min()) if hosts is None else hosts
    rows = df[df["hosts"] == hosts].sort_values("members")
    fig, axes = plt.subplots(1, 2, figsize=(NOTEBOOK_WIDTH_IN, 4.2))
    for ax, column, label in (
        (axes[0], "rules_written", "rules / flows / entries written"),
        (axes[1], "port_ready_s", "port ready (s, median over joins)"),
    ):
        for fw in _firewalls(rows):
            part = rows[rows["firewall"] == fw]
            fit = part[part["members"] >= 100] if (part["members"] >= 100).sum() >= 2 else part
            slope = log_slope(fit["members"], fit[column])
            ax.loglog(part["members"], part[column], "o-", color=COLOURS.get(fw), label=f"{fw} (slope {slope:.2f})")
        ax.set_xlabel("existing members of the group")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    axes[1].axhline(FIVE_MINUTES, color="grey", ls="--", lw=1)
    axes[1].annotate(
        "5 min (PTG; Nova vif_plugging_timeout)",
        (rows["members"].min(), FIVE_MINUTES),
        textcoords="offset points",
        xytext=(2, 4),
        fontsize=8,
        color="grey",
    )
    fig.suptitle(f"One join into a group that references itself ({hosts} host{'s' if hosts != 1 else ''})")
    fig.tight_layout()
    return fig


def ready_figure(df: pd.DataFrame):
    """Time from the API call until the new port is usable, against group size; one panel per host count."""
    host_counts = sorted(int(h) for h in df["hosts"].unique())
    fig, axes = plt.subplots(
        1, len(host_counts), figsize=(min(4.2 * len(host_counts), NOTEBOOK_WIDTH_IN), 4), sharey=True, squeeze=False
    )
    for ax, hosts in zip(axes[0], host_counts):
        rows = df[df["hosts"] == hosts].sort_values("members")
        for fw in _firewalls(rows):
            part = rows[rows["firewall"] == fw]
            ax.plot(part["members"], part["port_ready_s"], "o-", color=COLOURS.get(fw), label=fw)
            if "port_ready_p95_s" in part and len(part):
                ax.fill_between(
                    part["members"], part["port_ready_s"], part["port_ready_p95_s"], color=COLOURS.get(fw), alpha=0.15
                )
        ax.axhline(FIVE_MINUTES, color="grey", ls="--", lw=1)
        ax.set_yscale("log")
        ax.set_title(f"{hosts} host{'s' if hosts != 1 else ''}")
        ax.set_xlabel("existing members")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("port ready (s): API call -> reachable by every member")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Time to ready per firewall strategy (dashed: 5 minutes)")
    fig.tight_layout()
    return fig


#: Operations that write one port's filter each (count = ports), and the ones
#: that write one per-host group object each (ipset, OVS dimension-1 flows, subtable).
FILTER_OPS = ("filter_rewrite", "filter_prepare", "filter_remove")
GROUP_OPS = ("ipset_write", "conj_ip_flows", "group_table_write")


def writes_per_host(run) -> pd.DataFrame:
    """Port filters and group objects each host wrote: one row per host, hosts without work included.

    The two columns add up to the summary's ``updates_total``.
    """
    ops = run.operations
    hosts = list(run.summary["busy_s"])
    filters = ops[ops["op"].isin(FILTER_OPS)].groupby("host")["count"].sum()
    groups = ops[ops["op"].isin(GROUP_OPS)].groupby("host").size()
    return pd.DataFrame(
        {
            "host": hosts,
            "filters": [int(filters.get(h, 0)) for h in hosts],
            "group_objects": [int(groups.get(h, 0)) for h in hosts],
        }
    )


def join_figure(run, curve: pd.DataFrame | None = None):
    """One run at a glance: what each host wrote (left), and time to ready against group size (right).

    *run* is one ``sg-fanout`` run; *curve* is an optional
    :func:`labtwin.scenarios.sg_fanout.model.sweep` of the same strategy, hosts and
    placement over other group sizes, drawn as a line through the run's dot.
    Made for the notebook's sliders: fixed axes, so that moving a slider moves
    the bars and the dot, not the scales.
    """
    s = run.summary
    colour = COLOURS.get(s["firewall"], "grey")
    fig, (left, right) = plt.subplots(1, 2, figsize=(NOTEBOOK_WIDTH_IN, 3.8))  # unscaled: no text under 9 px
    _writes_bars(left, writes_per_host(run), colour)
    left.set_title(
        f"{s['updates_total']:,} updates: {s['filters_written'] + s['filters_removed']:,} port filters "
        f"+ {s['group_writes']:,} group objects;\n{s['rules_written']:,} rules/flows/entries",
        fontsize=9,
    )
    _ready_line(right, curve, s, colour)
    fig.suptitle(
        f"{s['firewall']}: {s['members']} members on {s['hosts_with_members']} of {s['hosts']} "
        f"host{'s' if s['hosts'] != 1 else ''}, {s['joins']} join{'s' if s['joins'] != 1 else ''} "
        f"(profile {s['profile']})"
    )
    # fixed margins: tight_layout would cost more than the model run at 1,000 members
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.2, top=0.8, wspace=0.3)
    return fig


def _writes_bars(ax, writes: pd.DataFrame, colour: str) -> None:
    """Stacked per-host counts drawn as two filled step outlines (two artists, not one per bar: fast at 100 hosts)."""
    edges = np.arange(len(writes) + 1) - 0.5
    total = writes["filters"] + writes["group_objects"]
    ax.stairs(
        total, edges, fill=True, color="black", alpha=0.6, label="group objects written (ipset / conj flows / subtable)"
    )
    ax.stairs(writes["filters"], edges, fill=True, color=colour, label="port filters written")
    ticks = np.arange(len(writes))[:: max(1, len(writes) // 10)]
    ax.set_xticks(ticks, writes["host"].iloc[ticks], rotation=30, ha="right", fontsize=7)
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylim(0, max(1, int(total.max())) * 1.25)
    ax.set_ylabel("objects written on the host")
    ax.legend(fontsize=7, loc="upper right")


def _ready_line(ax, curve, summary: dict, colour: str) -> None:
    ready = summary["port_ready_s"]
    if curve is not None and len(curve):
        # the run is a point of the line too (the caller need not simulate its size twice)
        here = pd.DataFrame({"members": [summary["members"]], "port_ready_s": [ready]})
        rows = pd.concat([curve[["members", "port_ready_s"]], here]).dropna().sort_values("members")
        ax.plot(rows["members"], rows["port_ready_s"], "-", color=colour, alpha=0.6)
    if ready is not None:
        ax.plot([summary["members"]], [ready], "o", color=colour, ms=9)
        ax.annotate(
            f"{ready:,.1f} s", (summary["members"], ready), textcoords="offset points", xytext=(6, -12), fontsize=9
        )
    ax.axhline(FIVE_MINUTES, color="grey", ls="--", lw=1)
    ax.annotate("5 min", (10, FIVE_MINUTES), textcoords="offset points", xytext=(2, 3), fontsize=8, color="grey")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(8, 1250)
    ax.set_ylim(1, max(1e4, (ready or 0) * 2))
    # plain "10 100 1000" labels, no minor ticks: mathtext labels and the minor
    # ticks are a good part of the drawing time, and the sliders redraw often
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_locator(NullLocator())
    ax.set_title("port ready (API call -> reachable by every member)\nagainst group size", fontsize=9)
    ax.set_xlabel("existing members of the group")
    ax.set_ylabel("port ready (s, median over joins)")
    ax.grid(True, alpha=0.3)


# --- model vs emulation ---------------------------------------------------------------
def ready_per_join(run) -> list[float]:
    """Each join's time to ready (s), in join order, from the run's ``port_ready`` events (either backend)."""
    ev = run.events
    ready = ev[ev["kind"] == "port_ready"]
    return [d.get("latency_s") for d in ready["detail"] if d.get("latency_s") is not None]


def twin_table(pairs: dict) -> pd.DataFrame:
    """One row per strategy from ``{firewall: (model run, emulation run)}``: counts and time to ready side by side.

    ``pace`` is how much slower the machine ran the emulation than its calibration (1 where timing is not
    compared, see :func:`labtwin.api.timing_basis`); ``ready_error`` is |model x pace - emulation| /
    emulation on ``port_ready_s`` (the medians over joins), as the twin compares it.
    """
    rows = []
    for fw in [f for f in ORDER if f in pairs] + [f for f in pairs if f not in ORDER]:
        reason, pace = api.timing_basis(*pairs[fw])
        model, emulated = (run.summary for run in pairs[fw])
        row = {
            "firewall": fw,
            "members": emulated["members"],
            "hosts": emulated["hosts"],
            "joins": emulated["joins"],
            "leaves": emulated["leaves"],
        }
        for key in ("updates_total", "objects_changed", "rules_written", "port_ready_s"):
            row[f"{key}_model"], row[f"{key}_emulation"] = model[key], emulated[key]
        row["pace"] = pace
        row["ready_error"] = abs(model["port_ready_s"] * pace - emulated["port_ready_s"]) / emulated["port_ready_s"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("firewall")


def twin_figure(pairs: dict, band: tuple[float, float] | None = None):
    """Model vs emulation per strategy: update counts (left), time to ready per join (right).

    *pairs* is ``{firewall: (model run, emulation run)}`` on the same design
    and seed. *band* ``(ratio, ratio_slower)`` shades the twin's tolerance on
    ``port_ready_s`` around the model's median times the machine's pace: from
    it divided by *ratio* to it times *ratio_slower* (the Tolerance's fields).
    """
    table = twin_table(pairs)
    fig, (left, right) = plt.subplots(1, 2, figsize=(NOTEBOOK_WIDTH_IN, 4.6))
    _count_bars(left, table)
    _ready_dots(right, pairs, table, band)
    members, hosts, joins, leaves = (int(table[k].iloc[0]) for k in ("members", "hosts", "joins", "leaves"))
    fig.suptitle(
        f"Model vs emulation: {members} members on {hosts} hosts, {joins} joins then "
        f"{leaves} leave{'s' if leaves != 1 else ''} (same design and seed)",
        fontsize=11,
    )
    fig.tight_layout()
    return fig


def _count_bars(ax, table: pd.DataFrame) -> None:
    """updates_total and objects_changed, model (solid) beside emulation (hatched), counts written on top."""
    x = np.arange(len(table))
    for j, (key, label) in enumerate((("updates_total", "updates"), ("objects_changed", "changed"))):
        for k, side in enumerate(("model", "emulation")):
            values = table[f"{key}_{side}"]
            pos = x + (2 * j + k - 1.5) * 0.2
            bars = ax.bar(
                pos,
                values,
                0.19,
                color=[COLOURS.get(f, "grey") for f in table.index],
                alpha=1.0 if j == 0 else 0.45,
                hatch="//" if side == "emulation" else None,
                edgecolor="white" if side == "emulation" else None,
                label=f"{label}: {side}" if x.size else None,
            )
            ax.bar_label(bars, fontsize=7, padding=2, rotation=90)  # upright, side by side they ran together
    ax.set_xticks(x, table.index)
    ax.set_yscale("log")
    ax.set_ylim(1, table[["updates_total_model", "updates_total_emulation"]].to_numpy().max() * 8)
    ax.set_ylabel("objects written / changed (log)")
    ax.set_title("counts: model | emulation\n(hatched, from kernel diffs)", fontsize=9)
    ax.legend(fontsize=7, loc="upper right", ncol=2)


def _ready_dots(ax, pairs: dict, table: pd.DataFrame, band) -> None:
    """Each join's time to ready (ms): emulation dots, model dots, the model's median with the tolerance band."""
    for i, fw in enumerate(table.index):
        model, emulated = pairs[fw]
        colour = COLOURS.get(fw, "grey")
        measured = np.array(ready_per_join(emulated)) * 1e3
        predicted = np.array(ready_per_join(model)) * 1e3
        ax.plot(
            np.full(len(measured), i + 0.12),
            measured,
            "o",
            color=colour,
            mfc="none",
            label="emulation, each join" if i == 0 else None,
        )
        ax.plot(
            np.full(len(predicted), i - 0.12),
            predicted,
            "_",
            color=colour,
            ms=14,
            mew=2,
            label="model (measured profile), each join" if i == 0 else None,
        )
        centre = table.loc[fw, "port_ready_s_model"] * table.loc[fw, "pace"] * 1e3
        if band is not None:
            ax.fill_between(
                [i - 0.3, i + 0.3],
                centre / band[0],
                centre * band[1],
                color=colour,
                alpha=0.12,
                label="twin tolerance around the model x pace" if i == 0 else None,
            )
        ax.annotate(
            f"{table.loc[fw, 'ready_error']:.0%}",
            (i, max(measured.max(initial=0), centre)),
            textcoords="offset points",
            xytext=(0, 8),
            ha="center",
            fontsize=8,
        )
    ax.set_xticks(np.arange(len(table)), table.index)
    ax.set_xlim(-0.5, len(table) - 0.5)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("port ready (ms)")
    ax.set_title("API call -> every member reachable, per join\n% = error of the median", fontsize=9)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")


def calibration_figure(report: dict):
    """The calibration's fit: emulation points and the calibrated model per strategy, and the unfitted check.

    *report* is what ``labtwin calibrate sg-fanout`` returns (``points``:
    firewall, members, port_ready_s, model_s per run; ``check``: the
    prediction at a size not fitted, emulation median vs model).
    """
    points = pd.DataFrame(report["points"])
    check = pd.DataFrame(report.get("check", []))
    firewalls = _firewalls(points)
    fig, axes = plt.subplots(
        1, len(firewalls), figsize=(min(2.9 * len(firewalls), NOTEBOOK_WIDTH_IN), 3.6), sharey=True, squeeze=False
    )
    for ax, fw in zip(axes[0], firewalls):
        mine = points[points["firewall"] == fw].sort_values("members")
        colour = COLOURS.get(fw, "grey")
        ax.plot(mine["members"], mine["port_ready_s"] * 1e3, "o", color=colour, mfc="none", label="emulation (fitted)")
        line = mine.groupby("members")["model_s"].first()
        ax.plot(line.index, line.to_numpy() * 1e3, "-", color=colour, label="model, measured profile")
        for _, row in check[check["firewall"] == fw].iterrows() if len(check) else ():
            ax.plot([row["members"]], [row["emulation_s"] * 1e3], "s", color="black", label="emulation (not fitted)")
            ax.plot([row["members"]], [row["model_s"] * 1e3], "x", color="black", ms=9, label="model prediction")
            ax.annotate(
                f"{row['error']:.0%}",
                (row["members"], row["emulation_s"] * 1e3),
                textcoords="offset points",
                xytext=(6, 6),
                fontsize=8,
            )
        ax.set_title(fw, fontsize=10)
        ax.set_xlabel("existing members")
        ax.grid(True, alpha=0.3)
    # once every panel is drawn: set in the loop, the shared limit froze at the first panel's data and cut off
    # the slower strategies' points (ovs's, above 40 ms)
    axes[0][0].set_ylim(bottom=0)
    axes[0][0].set_ylabel("port ready (ms, median over joins)")
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.suptitle("Calibration: fixed + per-rule costs fitted to the emulation; the square was not fitted")
    fig.tight_layout()
    return fig
