"""Figures for the ``sg-fanout`` scenario: growth with group size, and time to ready.

Both take the DataFrame of :func:`labtwin.model.sg_fanout.sweep` (one row per
run: ``firewall``, ``members``, ``hosts``, ``rules_written``, ``port_ready_s``,
...) and return a matplotlib ``Figure``; nothing here runs the model.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

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
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, column, label in ((axes[0], "rules_written", "rules / flows / entries written"),
                              (axes[1], "port_ready_s", "port ready (s, median over joins)")):
        for fw in _firewalls(rows):
            part = rows[rows["firewall"] == fw]
            fit = part[part["members"] >= 100] if (part["members"] >= 100).sum() >= 2 else part
            slope = log_slope(fit["members"], fit[column])
            ax.loglog(part["members"], part[column], "o-", color=COLOURS.get(fw), label=f"{fw} (slope {slope:.2f})")
        ax.set_xlabel("existing members of the self-referencing group")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    axes[1].axhline(FIVE_MINUTES, color="grey", ls="--", lw=1)
    axes[1].annotate("5 min (PTG; Nova vif_plugging_timeout)", (rows["members"].min(), FIVE_MINUTES),
                     textcoords="offset points", xytext=(2, 4), fontsize=8, color="grey")
    fig.suptitle(f"One join into a group that references itself ({hosts} host{'s' if hosts != 1 else ''})")
    fig.tight_layout()
    return fig


def ready_figure(df: pd.DataFrame):
    """Time from the API call until the new port is usable, against group size; one panel per host count."""
    host_counts = sorted(int(h) for h in df["hosts"].unique())
    fig, axes = plt.subplots(1, len(host_counts), figsize=(4.2 * len(host_counts), 4), sharey=True, squeeze=False)
    for ax, hosts in zip(axes[0], host_counts):
        rows = df[df["hosts"] == hosts].sort_values("members")
        for fw in _firewalls(rows):
            part = rows[rows["firewall"] == fw]
            ax.plot(part["members"], part["port_ready_s"], "o-", color=COLOURS.get(fw), label=fw)
            if "port_ready_p95_s" in part and len(part):
                ax.fill_between(part["members"], part["port_ready_s"], part["port_ready_p95_s"],
                                color=COLOURS.get(fw), alpha=0.15)
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
