"""Readable views of a cloud: text summary, HTML table, networkx graph, picture."""

from __future__ import annotations

import html
import re
from collections import Counter

import networkx as nx

from .schema import Cloud


def summary_rows(cloud: Cloud) -> list[tuple[str, str]]:
    """(section, line) pairs shared by the text and HTML views."""
    rows = [("cloud", f"{cloud.name}: {cloud.description}".rstrip(": "))]
    driver = "ML2/OVN" + (", OVN metadata" if cloud.ovn_metadata_enabled else "")
    if cloud.mechanism_driver != "ovn":
        driver = f"ML2/OVS, {cloud.dhcp_agents_per_network} DHCP agent(s) per network"
    rows.append(("cloud", f"mechanism driver {cloud.mechanism_driver} ({driver})"))
    ports_per_host = Counter(p.host for p in cloud.ports if p.host)
    for host in cloud.hosts:
        maps = ", ".join(f"{k}->{v}" for k, v in host.bridge_mappings.items()) or "no bridge_mappings"
        rows.append(("hosts", f"{host.name} ({host.role}, {host.rack}): {ports_per_host[host.name]} ports; {maps}"))
    for net in cloud.networks:
        segs = [s for s in cloud.segments if s.network_id == net.name]
        subs = [s for s in cloud.subnets if s.network_id == net.name]
        kind = "routed" if any(s.segment_id for s in subs) else "external" if net.external else "tenant"
        rows.append(("networks", f"{net.name} ({kind}): {len(segs)} segments, {len(subs)} subnets"))
    for seg in cloud.segments:
        where = f"{seg.physical_network}/" if seg.physical_network else ""
        rows.append(
            ("segments", f"{seg.name}: {seg.network_type} {where}{seg.segmentation_id or '-'} on {seg.network_id}")
        )
    for sub in cloud.subnets:
        on = f" on segment {sub.segment_id}" if sub.segment_id else ""
        rows.append(("subnets", f"{sub.name}: {sub.cidr} gw {sub.gateway_ip or 'none'}, pool {sub.pool_size}{on}"))
    for router in cloud.routers:
        gw = router.external_gateway_info.network_id if router.external_gateway_info else "none"
        mode = "distributed" if router.distributed else "legacy"
        rows.append(
            (
                "routers",
                f"{router.name} ({mode}{', ha' if router.ha else ''}): gateway {gw}; "
                f"interfaces {', '.join(router.interfaces) or 'none'}",
            )
        )
    for group in cloud.security_groups:
        refs = f", references {', '.join(sorted(group.remote_groups))}" if group.remote_groups else ""
        rows.append(
            (
                "security groups",
                f"{group.name}: {len(group.rules)} rules, {len(cloud.group_members[group.name])} members{refs}",
            )
        )
    rows.append(("ports", f"{len(cloud.ports)} ports, {len(cloud.floatingips)} floating IPs"))
    for port in cloud.network_ports:  # Neutron's own: DHCP, a DVR router's SNAT, each DVR host's fg-, OVN metadata
        owner = f"router {port.router}" if port.router else f"host {port.host}"
        if port.device_owner == "network:distributed":
            owner = f"network {port.network_id} (metadata)"
        if port.device_owner == "network:dhcp":
            owner = f"network {port.network_id} ({f'segment {port.segment}, ' if port.segment else ''}{owner})"
        addresses = ", ".join(f"{f.ip_address or 'EUI-64'} on {f.subnet_id}" for f in port.fixed_ips)
        rows.append(
            ("ports Neutron makes", f"{port.device_owner.split(':')[1]} of {owner}: {addresses or 'no address'}")
        )
    rows += [("names (labtwin's, Neutron's)", line) for line in original_names(cloud)]
    return rows


#: How ``labtwin import`` keeps a name it had to map, in the object's description.
_ORIGINAL = re.compile(r"\(Neutron (?:name|host): ('(?:[^'\\]|\\.)*'|\"[^\"]*\")\)")


def original_names(cloud: Cloud) -> list[str]:
    """``web-server-1 ('web server #1')`` for each object whose name ``labtwin import`` mapped."""
    kinds = ("hosts", "networks", "segments", "subnets", "routers", "security_groups", "ports")
    return [
        f"{obj.name} ({found.group(1)})"
        for kind in kinds
        for obj in getattr(cloud, kind)
        if (found := _ORIGINAL.search(obj.description))
    ]


def summary_text(cloud: Cloud) -> str:
    """What ``labtwin show`` prints."""
    lines, section = [], None
    for name, line in summary_rows(cloud):
        if name != section:
            lines.append(f"{name}:" if name != "cloud" else line)
            section = name
            if name == "cloud":
                continue
        lines.append(f"  {line}")
    return "\n".join(lines)


#: Above this many graph nodes a notebook shows the table only (drawing would be slow and unreadable).
PICTURE_MAX_NODES = 300


def cloud_html(cloud: Cloud, picture: bool = True) -> str:
    """The summary as an HTML table beside a drawing (how a Cloud renders in a notebook)."""
    body = "".join(
        f"<tr><th style='text-align:left'>{html.escape(section)}</th>"
        f"<td style='text-align:left'>{html.escape(line)}</td></tr>"
        for section, line in summary_rows(cloud)
    )
    table = f"<table>{body}</table>"
    if (
        not picture
        or len(cloud.hosts) + len(cloud.networks) + len(cloud.routers) + len(cloud.ports) > PICTURE_MAX_NODES
    ):
        return table
    return f"<div style='display:flex;gap:1em;align-items:flex-start'>{table}<div>{cloud_png_tag(cloud)}</div></div>"


def cloud_png_tag(cloud: Cloud) -> str:
    """An ``<img>`` with the drawing inlined as base64 PNG (works offline and in slides)."""
    import base64
    import io

    buffer = io.BytesIO()
    figure = draw_cloud(cloud)
    figure.set_size_inches(6, 4)
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")  # 8 pt labels: 10 px, as issue 18 asks
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"<img alt='{html.escape(cloud.name)} topology' src='data:image/png;base64,{data}'/>"


def cloud_graph(cloud: Cloud) -> nx.Graph:
    """Hosts, networks, routers and ports as a graph (node attribute ``kind``).

    Ports connect to their network and their host; routers to the networks of
    their interfaces and gateway; hosts to the physnets they map; networks to
    the physnets of their segments.
    """
    g = nx.Graph()
    for host in cloud.hosts:
        g.add_node(f"host:{host.name}", kind="host", label=host.name)
        for physnet in host.bridge_mappings:
            g.add_node(f"physnet:{physnet}", kind="physnet", label=physnet)
            g.add_edge(f"host:{host.name}", f"physnet:{physnet}")
    for net in cloud.networks:
        g.add_node(f"network:{net.name}", kind="network", label=net.name)
    for seg in cloud.segments:
        if seg.physical_network:
            g.add_node(f"physnet:{seg.physical_network}", kind="physnet", label=seg.physical_network)
            g.add_edge(f"network:{seg.network_id}", f"physnet:{seg.physical_network}")
    for router in cloud.routers:
        g.add_node(f"router:{router.name}", kind="router", label=router.name)
        for subnet in router.interfaces:
            g.add_edge(f"router:{router.name}", f"network:{cloud.subnet[subnet].network_id}")
        if router.external_gateway_info:
            g.add_edge(f"router:{router.name}", f"network:{router.external_gateway_info.network_id}")
    for port in cloud.ports:
        g.add_node(f"port:{port.name}", kind="port", label=port.name)
        g.add_edge(f"port:{port.name}", f"network:{port.network_id}")
        if port.host:
            g.add_edge(f"port:{port.name}", f"host:{port.host}")
    return g


_COLOURS = {"host": "#4c72b0", "physnet": "#8172b2", "network": "#55a868", "router": "#c44e52", "port": "#dd8452"}


def draw_cloud(cloud: Cloud, ax=None, labels: bool | None = None):
    """Draw :func:`cloud_graph` with matplotlib; returns the Figure."""
    from matplotlib.figure import Figure

    if ax is None:
        fig = Figure(figsize=(9, 6))  # no pyplot: no global figure state, any backend
        ax = fig.subplots()
    else:
        fig = ax.figure
    g = cloud_graph(cloud)
    pos = nx.spring_layout(g, seed=1)  # fixed seed: the same cloud draws the same way
    kinds = nx.get_node_attributes(g, "kind")
    show_labels = labels if labels is not None else g.number_of_nodes() <= 60
    for kind, colour in _COLOURS.items():
        nodes = [n for n, k in kinds.items() if k == kind]
        nx.draw_networkx_nodes(
            g, pos, nodelist=nodes, node_color=colour, node_size=60 if kind == "port" else 300, ax=ax, label=kind
        )
    nx.draw_networkx_edges(g, pos, ax=ax, alpha=0.4)
    if show_labels:
        nx.draw_networkx_labels(g, pos, labels=nx.get_node_attributes(g, "label"), font_size=8, ax=ax)
    ax.set_title(f"{cloud.name}: {len(cloud.hosts)} hosts, {len(cloud.networks)} networks, {len(cloud.ports)} ports")
    ax.legend(loc="best", fontsize=8)
    ax.set_axis_off()
    return fig
