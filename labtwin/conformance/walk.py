"""A documented packet walk beside the ``dvr`` model's path for the same class.

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
    from labtwin.scenarios.dvr.model.wire import SENT_TTL

    cls = expect["class"]
    if cls not in CLASSES:
        return [f"the dvr model has no class {cls!r} (it studies {', '.join(CLASSES)})"], []
    design = {**knobs}
    if expect.get("firewall") in FIREWALL_KNOB:
        design["firewall_driver"] = FIREWALL_KNOB[expect["firewall"]]
    lacks = missing(cloud, DvrDesign.of(design))
    if lacks:
        return [f"the dvr scenario cannot study this cloud: it needs {'; '.join(lacks)}"], []
    found = [p for p in class_paths(cloud, DvrDesign.of(design)) if p.traffic_class == cls and p.hops]
    if not found:
        return [f"the dvr model finds no {cls} path in this cloud"], []
    p = found[0]
    out: list[str] = []
    for key, got in (("router_mode", p.mode), ("via_network_node", p.via_network_node), ("nat", p.nat)):
        if key in expect and expect[key] != got:
            out.append(f"{key}: documented {expect[key]!r}, labtwin {got!r}")
    steps_differ, not_checked = _steps(cloud, expect.get("steps") or [], p.hops)
    out += steps_differ
    out += _legs(cloud, expect.get("legs") or [], p)
    if "ttl_decrements" in expect and (p.ttl is None or SENT_TTL - p.ttl != expect["ttl_decrements"]):
        out.append(f"ttl: documented {expect['ttl_decrements']} routers, labtwin's TTL at arrival is {p.ttl}")
    if "reply" in expect:
        not_checked.append("reply (documented in prose)")
    return out, not_checked


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


def _legs(cloud: Cloud, legs: list[dict], path) -> list[str]:
    wires = list(path.wires)
    if len(wires) != len(legs):
        return [f"legs: documented {len(legs)} between hosts, labtwin {len(wires)}: {_said(wires)}"]
    out = []
    roles = _mac_roles(cloud, path.router)
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
