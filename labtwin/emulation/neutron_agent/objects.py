"""labtwin's description as the plain dicts a Neutron agent worker's server takes (no Neutron import).

Groups and ports keep the ids labtwin derives from their names (``derived_id``); a
rule's remote group becomes that group's id, its protocol is what Neutron stores
(``any`` is none), prefixes are text.
"""

from __future__ import annotations

from typing import Callable, Iterable, Optional

from labtwin.description.schema import Port, SecurityGroupRule, derived_id


def group_id(name: str) -> str:
    return derived_id("security-group", name)


def group_dict(name: str, rules: Iterable[SecurityGroupRule], id_of: Callable[[str], str] = group_id) -> dict:
    """``{"id", "name", "rules": [...]}`` for group *name* (rule ids derived from the group and position)."""
    return {
        "id": id_of(name),
        "name": name,
        "rules": [
            rule_dict(rule, derived_id("security-group-rule", f"{name}/{i}"), id_of) for i, rule in enumerate(rules)
        ],
    }


def rule_dict(rule: SecurityGroupRule, rule_id: str, id_of: Callable[[str], str] = group_id) -> dict:
    return {
        "id": rule_id,
        "direction": rule.direction,
        "ethertype": rule.ethertype,
        "protocol": None if rule.protocol == "any" else rule.protocol,
        "port_range_min": rule.port_range_min,
        "port_range_max": rule.port_range_max,
        "remote_ip_prefix": None if rule.remote_ip_prefix is None else str(rule.remote_ip_prefix),
        "remote_group_id": id_of(rule.remote_group_id) if rule.remote_group_id else None,
    }


def port_dict(port: Port, mac: str, groups: Optional[Iterable[str]] = None) -> dict:
    """A port as the server holds it: its fixed IPs, groups (by id), port security and address pairs."""
    return {
        "id": str(port.id),
        "mac": mac,
        "ips": [str(ip) for ip in port.ips],
        "host": port.host or "",
        "security_groups": [group_id(g) for g in (port.security_groups if groups is None else groups) or ()],
        "port_security": port.port_security_enabled,
        "allowed_address_pairs": [
            {"ip_address": str(pair.ip_address), "mac_address": pair.mac_address or mac}
            for pair in port.allowed_address_pairs
        ],
    }
