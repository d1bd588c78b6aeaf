"""One check per kind of case: labtwin's answer beside the documented outcome (see :mod:`labtwin.conformance`).

Each returns ``(differences, not_checked)``: what labtwin answers differently, and the documented details
it does not model (named, so a reader sees what the pass covers).
"""

from __future__ import annotations

import ipaddress
from typing import Callable

from labtwin.description import Cloud, CloudError, load_cloud
from labtwin.description.errors import field_path
from labtwin.description.flows import Flow
from labtwin.description.loader import load_declared

from . import Case
from .walk import compare_walk

Outcome = tuple[list[str], list[str]]


def addresses(case: Case) -> Outcome:
    cloud, refused = _resolved(case)
    if cloud is None:
        return [f"labtwin refuses the cloud: {refused}"], []
    out: list[str] = []
    for name, expected in (case.expect.get("ports") or {}).items():
        got = [ipaddress.ip_address(str(ip)) for ip in cloud.port[name].ips]
        out += [f"{name}: {d}" for d in _address_differences(expected, got)]
    for name in case.expect.get("deferred") or ():
        if cloud.port[name].fixed_ips:
            out.append(f"{name}: expected a deferred allocation, got {[str(ip) for ip in cloud.port[name].ips]}")
    for name, expected in (case.expect.get("floatingips") or {}).items():
        fip = next((f.floating_ip_address for f in cloud.floatingips if f.port_id == name), None)
        got = [ipaddress.ip_address(str(fip))] if fip is not None else []
        out += [f"floating IP of {name}: {d}" for d in _address_differences([expected], got)]
    return out, []


def _address_differences(expected: list[str], got: list) -> list[str]:
    """Each expected address (exact, or ``pool:START-END``) matched to one of *got*; leftovers either side."""
    left = list(got)
    out = []
    for want in expected:
        match = next((ip for ip in left if _fits(want, ip)), None)
        if match is None:
            out.append(f"expected {want}, labtwin gives {[str(ip) for ip in got] or 'none'}")
        else:
            left.remove(match)
    out += [f"labtwin gives {ip} too, which Neutron does not" for ip in left]
    return out


def _fits(want: str, ip) -> bool:
    if want.startswith("pool:"):
        start, end = (ipaddress.ip_address(part) for part in want[5:].split("-"))
        return ip.version == start.version and start <= ip <= end
    return ip == ipaddress.ip_address(want)


def refusal(case: Case) -> Outcome:
    try:
        problems = list(load_declared(case.topology).problems)
    except CloudError as exc:  # refused for its shape, before any check
        problems = list(exc.problems)
    if not problems:
        return [f"labtwin accepts the cloud; Neutron refuses {case.expect['object']} ({case.expect['exception']})"], []
    obj, exception = case.expect["object"], case.expect["exception"]
    here = [p for p in problems if field_path(p.loc) == obj or field_path(p.loc).startswith((obj + ".", obj + "["))]
    if not here:
        said = "; ".join(f"{field_path(p.loc)}: {p.message}" for p in problems)
        return [f"labtwin refuses something else: {said} (expected {obj}: {exception})"], []
    if not any(exception in p.message for p in here):
        said = "; ".join(p.message for p in here)
        return [f"{obj}: labtwin's refusal does not name {exception}: {said}"], []
    return [], []


def security_groups(case: Case) -> Outcome:
    from labtwin.description.policy import evaluate

    cloud, refused = _resolved(case)
    if cloud is None:
        return [f"labtwin refuses the cloud: {refused}"], []
    out = []
    for name, want in (case.expect.get("ports") or {}).items():
        port = cloud.port[name]
        filtered = port.port_security_enabled and cloud.network[port.network_id].port_security_enabled
        groups = list(port.security_groups or ())
        if filtered != want["filtered"] or sorted(groups) != sorted(want["groups"]):
            out.append(
                f"{name}: expected filtered={want['filtered']} groups={want['groups']}, "
                f"labtwin: filtered={filtered} groups={groups}"
            )
    for group, count in (case.expect.get("rules") or {}).items():
        if group not in cloud.security_group:
            out.append(f"group {group}: Neutron has it, labtwin does not")
            continue
        got = len(cloud.security_group[group].rules)
        if got != count:
            out.append(f"group {group}: expected {count} rules after Neutron's defaults, labtwin has {got}")
    for v in case.expect.get("verdicts") or ():
        flow = Flow(v["protocol"], v.get("port"))
        src_ip = ipaddress.ip_address(v["src_ip"]) if v.get("src_ip") else None
        version = int(v["ethertype"][-1]) if v.get("ethertype") else None
        verdict = evaluate(cloud, cloud.port[v["src"]], cloud.port[v["dst"]], flow, version, src_ip)
        if verdict.allowed != v["allowed"]:
            label = f"{v['src']}{'@' + v['src_ip'] if v.get('src_ip') else ''} -> {v['dst']} {flow}"
            out.append(f"{label}: expected allowed={v['allowed']}, labtwin: {verdict.allowed} ({verdict.reason})")
    return out, []


def path(case: Case) -> Outcome:
    try:
        cloud = load_cloud(case.topology)
    except CloudError as exc:
        return [f"labtwin refuses the cloud: {exc}"], []
    return compare_walk(cloud, case.expect, case.knobs)


def _resolved(case: Case) -> tuple[Cloud | None, str]:
    declared = load_declared(case.topology)
    if declared.problems or declared.resolved is None:
        return None, "; ".join(str(p) for p in declared.problems)
    return declared.resolved, ""


BY_KIND: dict[str, Callable[[Case], Outcome]] = {
    "addresses": addresses,
    "refusal": refusal,
    "security_groups": security_groups,
    "path": path,
}
