"""A documented packet walk beside the ``dvr`` model's path for the same class; a walk no Neutron router routes
(``router_mode: none``, the provider networks' own) beside the path search's (:mod:`labtwin.scenarios.dvr.model.
search`) for the case's ``src`` and ``dst``.

The page's numbered steps name a host, where (the root namespace or a ``qrouter``/``snat``/``fip``
namespace) and a device; they must appear in the model's hops in order (a step may name the same hop as
the one before: "security group bridge instance port" and "security group rules" are both ``qbr``).
labtwin's hops are bridges and addressed devices, so OVS patch ports and physical interfaces are not
hops: those steps are listed as not checked. Legs are compared wire by wire (network type,
segmentation id, and MACs where the case states them), and the TTL by the routers that decrement it.
"""

from __future__ import annotations

from typing import Optional

from labtwin.description import Cloud

#: Steps that name what labtwin's hops do not carry, and why.
NOT_HOPS = {
    "patch-tun": "OVS patch ports (a hop is the bridge, not its patch port)",
    "eth": "physical interfaces (the fabric is one hop between hosts)",
}
#: The dvr model's firewall_driver knob for a case's firewall (OVN has its own: no knob).
FIREWALL_KNOB = {"iptables_hybrid": "iptables_hybrid", "openvswitch": "openvswitch"}


def compare_walk(cloud: Cloud, expect: dict, knobs: dict) -> tuple[list[str], list[str]]:
    from labtwin.scenarios.dvr import missing
    from labtwin.scenarios.dvr.knobs import DvrDesign
    from labtwin.scenarios.dvr.model.paths import CLASSES, class_paths

    cls = expect["class"]
    if expect.get("router_mode") == "none":
        return _compare_search(cloud, expect, _design(knobs, expect))
    if cls not in CLASSES:
        return [f"the dvr model has no class {cls!r} (it studies {', '.join(CLASSES)})"], []
    design = _design(knobs, expect)
    lacks = missing(cloud, DvrDesign.of(design))
    if lacks:
        return [f"the dvr scenario cannot study this cloud: it needs {'; '.join(lacks)}"], []
    found = [p for p in class_paths(cloud, DvrDesign.of(design)) if p.traffic_class == cls and p.hops]
    if not found:
        return [f"the dvr model finds no {cls} path in this cloud"], []
    p = found[0]
    said = {"router_mode": p.mode, "via_network_node": p.via_network_node, "nat": p.nat}
    return _compare(cloud, expect, said, p.hops, p.wires, p.ttl, p.router)


def _compare_search(cloud: Cloud, expect: dict, design: dict) -> tuple[list[str], list[str]]:
    """A walk no Neutron router routes (``router_mode: none``): the path search's answer
    (:mod:`labtwin.scenarios.dvr.model.search`) for the case's ``src`` and ``dst`` ports."""
    from labtwin.scenarios.dvr.knobs import DvrDesign
    from labtwin.scenarios.dvr.model.paths import crosses
    from labtwin.scenarios.dvr.model.search import search

    ends = [str(expect.get(key)) for key in ("src", "dst")]
    if not all(end in cloud.port for end in ends):
        return [f"a walk with router_mode none names its src and dst ports; got {ends}"], []
    found = search(cloud, cloud.port[ends[0]], cloud.port[ends[1]], DvrDesign.of(design))
    if not found.reachable:
        return [f"the path search finds no way from {ends[0]} to {ends[1]}: {found.note}"], []
    said = {"router_mode": "none", "via_network_node": crosses(cloud, found.hops), "nat": "none"}
    return _compare(cloud, expect, said, found.hops, found.wires, found.ttl, None)


def _compare(cloud: Cloud, expect: dict, said: dict, hops, wires, ttl, router) -> tuple[list[str], list[str]]:
    """The documented walk against labtwin's: the facts *said*, the steps in the hops, the legs on the wires,
    the routers that decrement the TTL."""
    from labtwin.scenarios.dvr.model.wire import SENT_TTL

    out = [
        f"{key}: documented {expect[key]!r}, labtwin {got!r}"
        for key, got in said.items()
        if key in expect and expect[key] != got
    ]
    steps_differ, not_checked = _steps(cloud, expect.get("steps") or [], hops)
    out += steps_differ
    out += _legs(cloud, expect.get("legs") or [], wires, router)
    if "ttl_decrements" in expect and (ttl is None or SENT_TTL - ttl != expect["ttl_decrements"]):
        out.append(f"ttl: documented {expect['ttl_decrements']} routers, labtwin's TTL at arrival is {ttl}")
    if "reply" in expect:
        not_checked.append("reply (documented in prose)")
    return out, not_checked


def _design(knobs: dict, expect: dict) -> dict:
    """The dvr design a case asks for: its knobs, and the firewall driver its page uses."""
    design = {**knobs}
    if expect.get("firewall") in FIREWALL_KNOB:
        design["firewall_driver"] = FIREWALL_KNOB[expect["firewall"]]
    return design


def _steps(cloud: Cloud, steps: list[dict], hops: tuple[str, ...]) -> tuple[list[str], list[str]]:
    at, out, skipped = 0, [], []
    for step in steps:
        if step["device"] in NOT_HOPS:
            skipped.append(f"step {step.get('n')}: {NOT_HOPS[step['device']]}")
            continue
        found = next((i for i in range(at, len(hops)) if _is(step, hops[i], cloud)), None)
        if found is None:
            where = f"{step['host']} {step['where']} {step['device']}"
            out.append(f"step {step.get('n')} ({step.get('doc', '')}): no {where} after hop {at} of {list(hops)}")
            continue
        at = found
    return out, skipped


def _is(step: dict, hop: str, cloud: Cloud) -> bool:
    parts = hop.split(":")
    if parts[0] != step["host"]:
        return False
    device = step["device"]
    if step["where"] == "root":
        if len(parts) != 2:
            return False
        if device == "br-provider":  # the bridge the host maps a physnet to
            return parts[1] in cloud.host[step["host"]].bridge_mappings.values()
        return parts[1] == device if device.startswith("br-") else parts[1].startswith(device)
    return len(parts) == 3 and parts[1].startswith(step["where"] + "-") and parts[2].startswith(device)


def _legs(cloud: Cloud, legs: list[dict], wires, router: Optional[str]) -> list[str]:
    wires = list(wires)
    if len(wires) != len(legs):
        return [f"legs: documented {len(legs)} between hosts, labtwin {len(wires)}: {_said(wires)}"]
    out = []
    roles = _mac_roles(cloud, router)
    for i, (leg, wire) in enumerate(zip(legs, wires)):
        got = {
            "from": wire.src_host,
            "to": wire.dst_host,
            "network_type": wire.network_type,
            "segmentation_id": wire.segmentation_id,
            "src_mac": roles.get(wire.src_mac, wire.src_mac),
            "dst_mac": roles.get(wire.dst_mac, wire.dst_mac),
        }
        for key, want in leg.items():
            if key in got and got[key] != want:
                out.append(f"leg {i + 1} {key}: documented {want!r}, labtwin {got[key]!r}")
    return out


def _said(wires) -> str:
    return ", ".join(f"{w.src_host}->{w.dst_host} {w.network_type} {w.segmentation_id}" for w in wires)


def _mac_roles(cloud: Cloud, router_name: Optional[str]) -> dict[str, str]:
    """The names a case gives MACs: a port's name, ``dvr host MAC (<host>)``, ``snat sg- port``,
    ``router qr- port``, ``router qg- port``, ``fg- port (<host>)``."""
    from labtwin.scenarios.dvr import neutron_names as names

    roles = {p.mac_address: p.name for p in cloud.ports if p.mac_address}
    roles.update({names.dvr_mac(h.name): f"dvr host MAC ({h.name})" for h in cloud.hosts})
    router = cloud.router.get(router_name) if router_name else None
    if router is not None:
        for subnet in router.interfaces:
            roles[names.mac_of(names.router_port_id(router.name, "sg", subnet))] = "snat sg- port"
            roles[names.mac_of(names.router_port_id(router.name, "qr", subnet))] = "router qr- port"
        roles[names.mac_of(names.router_port_id(router.name, "qg"))] = "router qg- port"
        if router.external_gateway_info is not None:
            ext = router.external_gateway_info.network_id
            for h in cloud.hosts:
                roles[names.mac_of(names.fip_gateway_port_id(h.name, ext))] = f"fg- port ({h.name})"
    return roles
