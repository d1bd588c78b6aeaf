"""What an import could not say: the catalogue of Neutron fields and objects labtwin does not express, and the
report (``import-report.md``) that lists them per object, beside what was assumed and renamed."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from .dump import Item

#: Ports Neutron's server or agents create (labtwin's loader derives these), by device_owner.
DERIVED_PORTS = {
    "network:dhcp": "DHCP port",
    "network:router_interface": "router interface",
    "network:router_interface_distributed": "router interface",
    "network:ha_router_replicated_interface": "router interface",
    "network:router_gateway": "router gateway",
    "network:router_centralized_snat": "DVR SNAT port",
    "network:floatingip_agent_gateway": "DVR floating-IP agent gateway",
    "network:router_ha_interface": "HA router's VRRP port",
    "network:floatingip": "floating IP's port",
    "network:distributed": "OVN metadata port",
}

#: Per kind: fields whose non-empty value labtwin cannot express, and what it is called.
NOT_EXPRESSIBLE = {
    "network": {"qos_policy_id": "QoS policy", "dns_domain": "DNS domain"},
    "subnet": {"host_routes": "host routes", "service_types": "service types", "dns_nameservers": "DNS servers"},
    "port": {
        "qos_policy_id": "QoS policy",
        "trunk_details": "trunk",
        "extra_dhcp_opts": "extra DHCP options",
        "binding:profile": "binding profile",
    },
    "router": {"routes": "extra routes", "flavor_id": "router flavor"},
    "floatingip": {"port_forwardings": "port forwardings", "qos_policy_id": "QoS policy"},
    "security_group_rule": {"remote_address_group_id": "address group"},
}
#: Agents whose work labtwin does not model.
UNMODELLED_AGENTS = ("BGP dynamic routing agent", "Metering agent", "Loadbalancerv2 agent", "MacVTap agent")


@dataclass
class Report:
    """What the import could not express, per object, and what it assumed: the ``import-report.md``."""

    dropped: list[tuple[str, str, str]] = field(default_factory=list)  # (object, where, what)
    derived: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # port kind -> count
    assumed: list[str] = field(default_factory=list)
    renamed: dict[str, dict[str, str]] = field(default_factory=dict)  # kind -> safe -> original

    def drop(self, item: Item, name: str, what: str) -> None:
        self.dropped.append((f"{item.kind} {name}", item.where, what))

    def markdown(self, source: str, counts: dict[str, int], renamed: bool = True) -> str:
        """The report; *renamed*: with the list of Neutron's names that were mapped (not in an anonymized one)."""
        lines = [f"# Import report: {source}", "", "## Imported", ""]
        lines += [f"- {kind}: {n}" for kind, n in counts.items()]
        lines += ["", "## Not expressible in labtwin (not imported, per object)", ""]
        # anonymized: objects by where they are in the dump only (one not imported has no new name)
        lines += [
            f"- {obj if renamed else obj.split(' ')[0]} ({where}): {what}" for obj, where, what in self.dropped
        ] or ["- nothing"]
        lines += ["", "## Created by Neutron or its agents (not imported: labtwin's loader derives them)", ""]
        lines += [f"- {kind}: {n}" for kind, n in sorted(self.derived.items())] or ["- none"]
        lines += ["", "## Assumed", ""]
        lines += [f"- {a}" for a in self.assumed] or ["- nothing"]
        if renamed:
            lines += ["", "## Names mapped to labtwin's (at most 15 letters, digits, - or _)", ""]
            pairs = [(kind, safe, orig) for kind, names in self.renamed.items() for safe, orig in names.items()]
            lines += [f"- {kind} {orig!r} -> {safe}" for kind, safe, orig in pairs] or ["- none"]
        else:
            lines += ["", "## Anonymized", "", "- names, ids, descriptions, addresses and MAC addresses replaced"]
        return "\n".join(lines) + "\n"


__all__ = ["DERIVED_PORTS", "NOT_EXPRESSIBLE", "UNMODELLED_AGENTS", "Report"]
