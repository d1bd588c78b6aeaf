"""The packet walk as the captures saw it: the wire of each fabric crossing, the TTL at arrival, the reply.

The model reads these off its paths (:mod:`labtwin.scenarios.dvr.model.wire`); here they come from the
frames themselves: the 802.1Q tag and MACs of each crossing on the fabric (:func:`.observe.crossings`),
the TTL the destination's capture point saw, and the path the reply took. A tag names the network that
carried the frame (the emulation's one tag per network, :func:`.layout.fabric_tags`); an untagged frame on
the fabric is on the external network. The outside world's MAC is written ``external``, as the model
writes it.
"""

from __future__ import annotations

from typing import Optional

from ..neutron_names import mac_of
from ..spec import EXTERNAL, carrier, hop_host
from . import layout as L
from . import observe
from .plan import FABRIC, DvrPlan


def observed_walk(dp: DvrPlan, hops: list[str], mine: list, reachable: bool, broadcast: bool) -> dict:
    """``wires``, ``ttl``, ``reply`` and ``reply_ttl`` of one probe, in the model's terms."""
    # a broadcast's hops are already its answer's path read backwards (observe.path)
    reply = (hops[::-1] if broadcast else observe.reply_path(mine)) if reachable else []
    return {
        "wires": _wires(dp, hops, observe.crossings(mine, FABRIC)),
        "ttl": _arrival_ttl(mine, hops, request=True) if reachable else None,
        "reply": reply,
        "reply_ttl": _arrival_ttl(mine, reply, request=False) if reachable else None,
    }


def _arrival_ttl(mine: list, hops: list[str], request: bool) -> Optional[int]:
    """The TTL where the packet was last seen along *hops*: its destination, or the last capture before an
    OpenFlow stage that has no device (table 77 answers DHCP in br-int)."""
    for label in reversed(hops):
        rows = sorted((s for lab, s in mine if lab == label and s.request == request), key=lambda s: s.t)
        if rows:
            return rows[0].ttl
    return None


def _wires(dp: DvrPlan, hops: list[str], frames: list[observe.Sighting]) -> list[dict]:
    """One wire per crossing frame; its hosts from the hops either side of the matching ``fabric`` hop."""
    cloud, lay = dp.layout.cloud, dp.layout
    by_tag = {tag: network for network, tag in L.fabric_tags(cloud).items()}
    ends = [(hop_host(hops[i - 1]), hop_host(hops[i + 1])) for i, hop in enumerate(hops) if hop == FABRIC]
    outside = mac_of("external")
    out = []
    for i, frame in enumerate(frames):
        src, dst = ends[i] if i < len(ends) else ("?", "?")
        network = lay.ext.name if frame.vlan is None else by_tag.get(frame.vlan, f"tag {frame.vlan}")
        kind, segmentation_id = carrier(cloud, network, src, lay.mode) if network in cloud.network else ("?", None)
        out.append(
            {
                "src_host": src,
                "dst_host": dst,
                "network": network,
                "network_type": kind,
                "segmentation_id": segmentation_id,
                "src_mac": EXTERNAL if frame.src_mac == outside else frame.src_mac,
                "dst_mac": EXTERNAL if frame.dst_mac == outside else frame.dst_mac,
            }
        )
    return out
