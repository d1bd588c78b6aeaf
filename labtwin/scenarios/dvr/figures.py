"""Figures for the ``dvr`` scenario: path diagrams, the network-node load curve, the failover.

All functions take what the model (or an emulation run) produced -- a
:class:`~labtwin.records.Run`, its ``summary["paths"]`` entries, the
DataFrame of :func:`labtwin.sweep.compare` over ``flows`` -- and return a matplotlib
``Figure``; nothing here computes a path.

A path diagram is a networkx graph of the hops drawn in swim lanes: one lane
per host (the network node's lane shaded red), one for the fabric and one for
the outside world; hops are coloured by where they live (VM tap, OVS bridge,
qrouter-, snat-, fip-, qdhcp- namespace, OpenFlow stage).
"""

from __future__ import annotations

import textwrap
from typing import Iterable, Optional

import matplotlib.pyplot as plt
import networkx as nx
import pandas as pd
from matplotlib.patches import Patch

from labtwin.figure_size import NOTEBOOK_WIDTH_IN
from labtwin.records import Run

COLOURS = {
    "vm": "#59a14f",
    "bridge": "#bab0ac",
    "qrouter": "#4e79a7",
    "snat": "#e15759",
    "fip": "#b07aa1",
    "qdhcp": "#edc948",
    "openflow": "#76b7b2",
    "fabric": "#333333",
    "external": "#9c755f",
}
NN_SHADE = "#fde0dd"


def hop_kind(hop: str) -> str:
    """What a hop is: vm, bridge, qrouter, snat, fip, qdhcp, openflow, fabric or external.

    >>> [hop_kind(h) for h in ("fabric", "c1:tapab", "c1:br-int", "n1:snat-x:qg-1", "c1:br-int:table77")]
    ['fabric', 'vm', 'bridge', 'snat', 'openflow']
    """
    if hop in ("fabric", "external"):
        return hop
    parts = hop.split(":")
    if len(parts) == 2:
        return "vm" if parts[1].startswith("tap") else "bridge"
    if parts[1].startswith("br-"):
        return "openflow"
    return parts[1].split("-", 1)[0] if parts[1].split("-", 1)[0] in COLOURS else "bridge"


#: A label's longest line: Neutron's device names (14 characters) cut after their kind and a few id characters,
#: so that labels two hops apart in one row stay clear of each other at 7 pt in an 8-inch panel.
LABEL_CHARS = 9


def hop_label(hop: str) -> str:
    """A short label, one line: the device, cut after :data:`LABEL_CHARS` (its namespace is the marker's colour).

    >>> hop_label("c1:qrouter-0a59:qr-ecebe2ea-aa"), hop_label("c1:br-int")
    ('qr-ecebe…', 'br-int')
    """
    if hop in ("fabric", "external"):
        return hop
    device = hop.split(":")[-1]
    return device if len(device) <= LABEL_CHARS else device[: LABEL_CHARS - 1] + "…"


def path_graph(entry: dict) -> nx.DiGraph:
    """The hops of one ``summary["paths"]`` entry as a directed chain (nodes keep their position)."""
    graph = nx.DiGraph(traffic_class=entry["class"])
    previous = None
    for i, hop in enumerate(entry["hops"]):
        node = (i, hop)
        graph.add_node(node, hop=hop, host=hop.split(":", 1)[0], kind=hop_kind(hop), label=hop_label(hop))
        if previous is not None:
            graph.add_edge(previous, node)
        previous = node
    return graph


def _lanes(graph: nx.DiGraph) -> list[str]:
    """Lanes in the order the packet first meets them, so the picture reads top-down."""
    return list(dict.fromkeys(d["host"] for _, d in sorted(graph.nodes(data=True))))


def draw_path(entry: dict, ax, network_node: Optional[str] = None) -> None:
    """Draw one class's path on *ax* in host lanes; the title says crossing, NAT and reachability."""
    graph = path_graph(entry)
    ax.set_axis_off()
    title = f"{entry['class']}: {entry.get('src', '')} → {entry.get('dst', '')}"
    if not graph:
        ax.set_title(f"{title}\n(no fitting ports)", fontsize=9)
        return
    lanes = _lanes(graph)
    y = {lane: -i for i, lane in enumerate(lanes)}
    pos = {node: (node[0], y[d["host"]]) for node, d in graph.nodes(data=True)}
    width = len(entry["hops"])
    for lane in lanes:
        shade = NN_SHADE if lane == network_node else "#f4f4f4"
        ax.axhspan(y[lane] - 0.42, y[lane] + 0.42, color=shade, zorder=0)
        ax.text(-0.8, y[lane], lane, ha="right", va="center", fontsize=8, weight="bold")
    colours = [COLOURS[d["kind"]] for _, d in graph.nodes(data=True)]
    nx.draw_networkx_edges(graph, pos, ax=ax, arrows=True, arrowsize=10, edge_color="#555555", node_size=NODE_SIZE)
    nx.draw_networkx_nodes(
        graph, pos, ax=ax, node_color=colours, node_size=NODE_SIZE, edgecolors="black", linewidths=0.5
    )
    for node, d in graph.nodes(data=True):
        if d["kind"] in ("fabric", "external"):
            continue
        _label_below(ax, pos[node], d["label"], second_row=node[0] % 2 == 1)
    ax.set_xlim(-4.5, width)
    ax.set_ylim(-len(lanes) + 0.15, 0.8)
    reach = {True: "reachable", False: "UNREACHABLE", None: "n/a"}[entry.get("reachable")]
    crossing = "via network node" if entry.get("via_network_node") else "stays on compute nodes"
    ax.set_title(
        f"{title}\n{crossing} · NAT {entry.get('nat', 'none')} · {reach}",
        fontsize=9,
        color="#b2182b" if entry.get("via_network_node") else "black",
    )


#: Hop markers (points squared), and the font of their labels: 7 pt is 9.7 px at matplotlib's 100 dpi, which a
#: figure 8 inches wide keeps in a notebook (the output area is wider than 800 px, so it is not scaled down).
NODE_SIZE = 220
LABEL_PT = 7


def _label_below(ax, at: tuple[float, float], label: str, second_row: bool) -> None:
    """A hop's label under its marker, offset in points (not data units) so that it clears the marker whatever the
    panel's scale; every other hop's label a row lower, so neighbours' labels do not run into each other."""
    radius = (NODE_SIZE**0.5) / 2
    drop = radius + 2 + (LABEL_PT + 2 if second_row else 0)
    ax.annotate(label, at, xytext=(0, -drop), textcoords="offset points", ha="center", va="top", fontsize=LABEL_PT)


def path_figure(run: Run, classes: Optional[Iterable[str]] = None, columns: int = 1):
    """One path diagram per traffic class for one design (a run of the dvr scenario), one column by default (its
    labels legible at a notebook's width)."""
    entries = [e for e in run.summary["paths"] if classes is None or e["class"] in set(classes)]
    rows = -(-len(entries) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(8 * columns, 2.8 * rows), squeeze=False)
    for ax, entry in zip(axes.flat, entries):
        draw_path(entry, ax, run.summary.get("network_node"))
    for ax in list(axes.flat)[len(entries) :]:
        ax.set_axis_off()
    knobs = ", ".join(f"{k}={v}" for k, v in run.design.items() if k in _PATH_KNOBS)
    knobs = "\n".join(textwrap.wrap(f"dvr paths ({run.backend}): {knobs}", 11 * columns * 8))  # fits the width
    fig.suptitle(
        f"{knobs}\nnetwork-node share of the matrix: {run.summary.get('network_node_share', float('nan')):.0%}",
        fontsize=11,
    )
    fig.legend(
        handles=[Patch(color=c, label=k) for k, c in COLOURS.items()],
        loc="lower center",
        ncol=len(COLOURS),
        fontsize=8,
        frameon=False,
    )
    fig.tight_layout(rect=(0, 0.03, 1, 0.95))
    return fig


_PATH_KNOBS = ("router", "ipv6_fast_exit", "distributed_snat", "distributed_dhcp", "vip_arp", "ovn_distributed_fip")


def class_across_designs(runs: dict[str, Run], traffic_class: str):
    """One class's path under several designs, stacked (labels are the dict's keys)."""
    fig, axes = plt.subplots(len(runs), 1, figsize=(8, 2.8 * len(runs)), squeeze=False)
    for ax, (label, run) in zip(axes.flat, runs.items()):
        entry = next(e for e in run.summary["paths"] if e["class"] == traffic_class)
        draw_path(entry, ax, run.summary.get("network_node"))
        ax.set_title(f"[{label}] " + ax.get_title(), fontsize=9)
    fig.tight_layout()
    return fig


def load_curve(df: pd.DataFrame):
    """Network-node queueing delay (mean and p95), loss and utilization vs flows, one line per design."""
    fig, axes = plt.subplots(1, 3, figsize=(NOTEBOOK_WIDTH_IN, 3.6))
    for label, part in df.groupby("design", sort=False):
        part = part.sort_values("flows")
        share = part["network_node_share"].iloc[0]
        queued = part[part["nn_delay_ms_mean"] > 0]  # a design with no network-node traffic has no delay to plot
        (line,) = axes[0].plot(
            queued["flows"], queued["nn_delay_ms_mean"], marker="o", label=f"{label} (share {share:.0%})"
        )
        axes[0].plot(queued["flows"], queued["nn_delay_ms_p95"], linestyle="--", color=line.get_color())
        axes[1].plot(part["flows"], 100 * part["nn_loss"], marker="o", color=line.get_color())
        axes[2].plot(part["flows"], 100 * part["nn_utilization"], marker="o", color=line.get_color())
    axes[0].set(yscale="log", title="delay, ms (— mean, -- p95)")
    axes[1].set(title="loss, %")
    axes[2].set(title="utilization, %", ylim=(0, 105))
    for ax in axes:
        ax.set_xlabel("flows in the traffic matrix")
        ax.title.set_fontsize(10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("At the network node, as load grows, per design", fontsize=11)
    fig.tight_layout()
    return fig


def failover_timeline(runs: dict[str, Run]):
    """Per design: the client's probes to the VIP over time (answered or not) and the failover's events."""
    fig, ax = plt.subplots(figsize=(NOTEBOOK_WIDTH_IN, 1.2 + 0.7 * len(runs)))
    marks = {
        "vrrp-master-failed": ("#b2182b", "master fails"),
        "vrrp-master-elected": ("#2166ac", "backup takes over + GARP"),
        "neighbour-updated": ("#1a9850", "router follows"),
        "neighbour-unchanged": ("#762a83", "permanent ARP unchanged"),
    }
    for row, (label, run) in enumerate(runs.items()):
        events = run.events
        probes = events[events.kind == "vip-probe"]
        ok = probes.detail.map(lambda d: d["answered"])
        ax.scatter(probes.t[ok], [row] * ok.sum(), marker="|", s=120, color="#1a9850")
        ax.scatter(probes.t[~ok], [row] * (~ok).sum(), marker="|", s=120, color="#d73027")
        for _, event in events[events.kind.isin(list(marks))].iterrows():
            ax.plot([event.t] * 2, [row - 0.35, row + 0.35], color=marks[event.kind][0], linewidth=2)
        recovery = run.summary.get("failover_recovery_s")
        ax.text(
            probes.t.max() + 0.2 if len(probes) else 0,
            row,
            "never" if recovery is None else f"{recovery:.1f} s",
            va="center",
            fontsize=9,
        )
    ax.set_yticks(range(len(runs)), list(runs))
    ax.set_xlabel("time, s (probes every 0.1 s: green answered, red not)")
    ax.legend(
        handles=[Patch(color=c, label=t) for c, t in marks.values()],
        fontsize=8,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.22),
        ncol=2,
        frameon=False,
    )
    ax.set_title("VIP after a VRRP failover: recovery per design")
    fig.tight_layout()
    return fig


def crossing_table(runs: dict[str, Run]) -> pd.DataFrame:
    """Per traffic class (rows) and design (columns, the dict's labels): where the class is routed.

    A cell is ``NN`` (the path crosses the network node) or ``local`` (it stays
    on compute nodes), short so that many designs fit a slide, with `` ✗`` when
    the class is unreachable (the VIP after a failover with static ARP); the
    last row is each design's network-node share of the traffic matrix. Ready
    for :func:`style_crossings`.
    """
    columns = {}
    for label, run in runs.items():
        several = len({e.get("router") for e in run.summary["paths"]}) > 1
        cells = {
            (f"{e['router']}: {e['class']}" if several else e["class"]): ("NN" if e["via_network_node"] else "local")
            + ("" if e.get("reachable", True) is not False else " ✗")
            for e in run.summary["paths"]
        }
        cells["network-node share"] = f"{run.summary['network_node_share']:.0%}"
        columns[label] = cells
    return pd.DataFrame(columns).rename_axis("class")


def observed_beside_model(model: Run, observed: Run) -> pd.DataFrame:
    """Per traffic class: where the model's path goes (``NN``/``local``, as :func:`crossing_table`), where the
    path observed in an emulation went, and how many of the twin's comparisons for that probe (verdict, hops,
    NAT, TTL, wires, reply) agree; then the twin's compared metrics (``gateway_failover_s``)."""
    from labtwin.api import compare_runs
    from labtwin.twin import probe_label as label

    rows = compare_runs("dvr", model, observed).rows
    probes = {label(p.src, p.dst, p.protocol, p.port): p.detail for p in observed.probes.itertuples()}
    table = []
    for entry in model.summary["paths"]:
        key = label(entry["src"], entry["dst"], entry["protocol"], entry["port"])
        seen = probes.get(key)
        if not entry["hops"] or seen is None:
            continue
        mine = rows[rows.key == key]
        table.append(
            {
                "class": entry["class"],
                "model": "NN" if entry["via_network_node"] else "local",
                "observed": "NN" if seen["via_network_node"] else "local",
                "agree": f"{int(mine.agree.eq(True).sum())}/{len(mine)}",
            }
        )
    for metric in rows[rows.kind == "metric"].itertuples():
        table.append({"class": metric.key, "model": metric.model, "observed": metric.emulation, "agree": metric.agree})
    return pd.DataFrame(table).set_index("class")


def style_crossings(table: pd.DataFrame):
    """The crossing table with network-node cells in red and unreachable ones struck through (a Styler)."""

    def cell(value: str) -> str:
        css = "background-color: #fde0dd" if str(value).startswith("NN") else ""
        return css + ("; text-decoration: line-through; color: #b2182b" if str(value).endswith("✗") else "")

    return table.style.map(cell)


def mac_role(mac: str) -> str:
    """What a MAC on the wire is, read from its value: Neutron's ``dvr_base_mac`` (fa:16:3f) marks a host's DVR
    MAC, ``base_mac`` (fa:16:3e) a port's."""
    if mac in ("external", "ff:ff:ff:ff:ff:ff"):
        return {"external": "outside router", "ff:ff:ff:ff:ff:ff": "broadcast"}[mac]
    return "DVR host MAC" if mac.startswith("fa:16:3f") else "port MAC"


def walk_table(run: Run, traffic_class: str, router: Optional[str] = None) -> pd.DataFrame:
    """The packet walk of one class, a row per wire crossed (request, then reply): between which hosts, what
    carries it (network type and segmentation id), the MACs on the wire and what they are; the TTL at arrival
    in the last row of each direction."""
    entry = next(
        e
        for e in run.summary["paths"]
        if e["class"] == traffic_class and (router is None or e.get("router") == router) and e["hops"]
    )
    rows = []
    for direction, wires, ttl in (
        ("request", entry["wires"], entry["ttl"]),
        ("reply", entry["reply_wires"], entry["reply_ttl"]),
    ):
        for i, w in enumerate(wires):
            rows.append(
                {
                    "direction": direction,
                    "from → to": f"{w['src_host']} → {w['dst_host']}",
                    "carried by": f"{w['network']}: {w['network_type']}"
                    + ("" if w["segmentation_id"] is None else f" {w['segmentation_id']}"),
                    "source MAC": f"{w['src_mac']} ({mac_role(w['src_mac'])})",
                    "destination MAC": f"{w['dst_mac']} ({mac_role(w['dst_mac'])})",
                    "TTL at arrival": ttl if i == len(wires) - 1 else "",
                }
            )
    return pd.DataFrame(rows)
