"""``labtwin import --anonymize``: a cloud that can be shown in a design review without showing whose it is.

Replaced consistently, everywhere they appear (the topology and the report):

- **names** of hosts, physnets, networks, segments, subnets, routers, security groups and ports, by their kind
  and a number in file order (``host-0001``, ``net-1``, ``port-00017``). A group called ``default`` keeps its
  name, which means something to Neutron (the group a port gets when it names none);
- **ids**, dropped: the loader derives new ones from the new names (uuid5), as it does for a hand-written file;
- **descriptions**, dropped (they often name things);
- **addresses**: each subnet gets a block of its own size from 10.0.0.0/8 (IPv4) or fd00::/8 (IPv6), in file
  order, overlapping none of the dump's subnets (so no address shown is one of the dump's), and every address
  in it (gateway, pools, fixed IPs, floating IPs, address pairs, a rule's prefix that falls inside it) keeps
  its offset in the block: sizes, gateways and which address is in which subnet stay.
  A rule's prefix outside every subnet gets a block of its size from 100.64.0.0/10 (or fd00:ffff::/32);
  ``0.0.0.0/0`` and ``::/0`` stay;
- **MAC addresses**, by ``fa:16:3e`` and a counter (SLAAC addresses follow, derived from them).

What is kept: the structure (which port is on which host, network, subnet and group, each group's rules),
VLAN and VXLAN ids, the agents' modes and the bridge and interface names of the mappings (``br-ex``).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Optional

#: kind (the topology's section) -> (prefix of the new names, digits of the number)
KINDS = {
    "hosts": ("host", 4),
    "physnets": ("physnet", 2),
    "networks": ("net", 2),
    "segments": ("seg", 3),
    "subnets": ("subnet", 3),
    "routers": ("router", 2),
    "security_groups": ("sg", 3),
    "ports": ("port", 5),
}
KEPT_NAMES = {"security_groups": {"default"}}
_WORD = re.compile(r"[A-Za-z0-9_.:-]+")
_IPV4 = re.compile(r"(?<![0-9.])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?:/[0-9]{1,2})?(?![0-9.])")


class Anonymizer:
    """The replacements of one import, built from its topology."""

    def __init__(self, topology: dict[str, Any]):
        self.names: dict[str, dict[str, str]] = {}
        for kind, (prefix, digits) in KINDS.items():
            objects = topology.get(kind, [])
            self.names[kind] = {
                o["name"]: o["name"] if o["name"] in KEPT_NAMES.get(kind, ()) else f"{prefix}-{i + 1:0{digits}d}"
                for i, o in enumerate(objects)
            }
        self.ids = [str(o["id"]) for kind in KINDS for o in topology.get(kind, []) if o.get("id")]
        self.blocks: list[tuple[ipaddress._BaseNetwork, ipaddress._BaseNetwork]] = []  # (original, new)
        self._next = {4: int(ipaddress.IPv4Address("10.0.0.0")), 6: int(ipaddress.IPv6Address("fd00::"))}
        self._outside = {4: int(ipaddress.IPv4Address("100.64.0.0")), 6: int(ipaddress.IPv6Address("fd00:ffff::"))}
        #: the dump's own subnets: no new block overlaps one, so no address shown is one of the dump's
        self.originals = [ipaddress.ip_network(subnet["cidr"]) for subnet in topology.get("subnets", [])]
        #: each subnet's (original, new) block: an address given with its subnet moves without a search
        self.subnet_blocks = {
            subnet["name"]: (original, self._block(original, self._next))
            for subnet, original in zip(topology.get("subnets", []), self.originals)
        }
        self.macs: dict[str, str] = {}

    # --- addresses ----------------------------------------------------------------------------------------
    def _block(self, original: ipaddress._BaseNetwork, counters: dict[int, int]) -> ipaddress._BaseNetwork:
        for known, new in self.blocks:
            if known == original:
                return new
        size = original.num_addresses
        start = -(-counters[original.version] // size) * size  # aligned to its own size
        new = ipaddress.ip_network((start, original.prefixlen))
        while any(new.overlaps(o) for o in self.originals if o.version == new.version):
            start += size
            new = ipaddress.ip_network((start, original.prefixlen))
        counters[original.version] = start + size
        self.blocks.append((original, new))
        return new

    def address(self, text: str, subnet: Optional[str] = None) -> str:
        """An address (``10.1.2.3``) or prefix (``10.1.2.0/24``, ``10.1.2.3/32``) at its offset in its new block
        (*subnet*: the subnet it is in, when known, else the first subnet holding it)."""
        if subnet in self.subnet_blocks and "/" not in text:
            original, new = self.subnet_blocks[subnet]
            return str(new.network_address + (int(ipaddress.ip_address(text)) - int(original.network_address)))
        if "/" in text:
            interface = ipaddress.ip_interface(text)
            if interface.network.prefixlen == 0:
                return text
            block = self._containing(interface.network)
            if block is None:
                return str(self._block(interface.network, self._outside))
            original, new = block
            moved = new.network_address + (int(interface.ip) - int(original.network_address))
            return f"{moved}/{interface.network.prefixlen}"
        ip = ipaddress.ip_address(text)
        block = self._containing(ipaddress.ip_network(ip))
        if block is None:
            return str(self._block(ipaddress.ip_network(ip), self._outside).network_address)
        original, new = block
        return str(new.network_address + (int(ip) - int(original.network_address)))

    def _containing(self, network: ipaddress._BaseNetwork) -> Optional[tuple]:
        for original, new in self.blocks:
            if network.version == original.version and network.subnet_of(original):
                return original, new
        return None

    def mac(self, mac: str) -> str:
        if mac not in self.macs:
            n = len(self.macs) + 1
            self.macs[mac] = "fa:16:3e:" + ":".join(f"{(n >> s) & 255:02x}" for s in (16, 8, 0))
        return self.macs[mac]

    # --- the topology ---------------------------------------------------------------------------------------
    def name(self, kind: str, name: Optional[str]) -> Optional[str]:
        return self.names[kind].get(name, name) if name is not None else None

    def topology(self, topology: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"name": "anonymized", "description": "imported, anonymized (labtwin import --anonymize)"}
        for kind, objects in topology.items():
            if kind in ("name", "description"):
                continue
            out[kind] = [self.object(kind, dict(o)) for o in objects]
        return out

    def object(self, kind: str, o: dict[str, Any]) -> dict[str, Any]:
        o.pop("id", None)
        o.pop("description", None)
        if kind in KINDS:
            o["name"] = self.name(kind, o["name"])
        for key, ref in (("network_id", "networks"), ("segment_id", "segments"), ("floating_network_id", "networks")):
            if key in o:
                o[key] = self.name(ref, o[key])
        if kind == "floatingips":
            o["port_id"] = self.name("ports", o["port_id"])
        if "physical_network" in o:
            o["physical_network"] = self.name("physnets", o["physical_network"])
        if "bridge_mappings" in o:
            o["bridge_mappings"] = {self.name("physnets", k): v for k, v in o["bridge_mappings"].items()}
        if "binding:host_id" in o:
            o["binding:host_id"] = self.name("hosts", o["binding:host_id"])
        if "security_groups" in o:
            o["security_groups"] = [self.name("security_groups", g) for g in o["security_groups"]]
        if "interfaces" in o:
            o["interfaces"] = [self.name("subnets", s) for s in o["interfaces"]]
        if "cidr" in o:
            o["cidr"] = self.address(o["cidr"])
        for key in ("gateway_ip", "floating_ip_address", "mac_address"):
            if o.get(key):
                o[key] = self.mac(o[key]) if key == "mac_address" else self.address(o[key])
        if "allocation_pools" in o:
            o["allocation_pools"] = [{k: self.address(v) for k, v in p.items()} for p in o["allocation_pools"]]
        if "fixed_ips" in o:
            o["fixed_ips"] = [self.fixed_ip(f) for f in o["fixed_ips"]]
        if "allowed_address_pairs" in o:
            o["allowed_address_pairs"] = [
                {"ip_address": self.address(p["ip_address"])}
                | ({"mac_address": self.mac(p["mac_address"])} if p.get("mac_address") else {})
                for p in o["allowed_address_pairs"]
            ]
        if o.get("external_gateway_info"):
            gateway = dict(o["external_gateway_info"])
            gateway["network_id"] = self.name("networks", gateway["network_id"])
            if "external_fixed_ips" in gateway:
                gateway["external_fixed_ips"] = [self.fixed_ip(f) for f in gateway["external_fixed_ips"]]
            o["external_gateway_info"] = gateway
        if "rules" in o:
            o["rules"] = [self.rule(dict(r)) for r in o["rules"]]
        return o

    def fixed_ip(self, fixed: dict[str, Any]) -> dict[str, Any]:
        out = {"subnet_id": self.name("subnets", fixed["subnet_id"])}
        if fixed.get("ip_address"):
            out["ip_address"] = self.address(fixed["ip_address"], fixed["subnet_id"])
        return out

    def rule(self, rule: dict[str, Any]) -> dict[str, Any]:
        if rule.get("remote_ip_prefix"):
            rule["remote_ip_prefix"] = self.address(rule["remote_ip_prefix"])
        if rule.get("remote_group_id"):
            rule["remote_group_id"] = self.name("security_groups", rule["remote_group_id"])
        return rule

    # --- the report -------------------------------------------------------------------------------------------
    def text(self, text: str) -> str:
        """*text* (the report) with every name, id and IPv4 address replaced as in the topology: each run of name
        characters is looked up once (a name shared by two kinds takes the later kind's replacement)."""
        table = {old: new for kind in self.names.values() for old, new in kind.items() if old != new}
        table.update((i, "<id>") for i in self.ids)

        def replace(found: re.Match) -> str:
            word = found.group(0)
            bare = word.rstrip(".:")  # a name ending a sentence or a label: "... compute-1:"
            if word in table:
                return table[word]
            return table[bare] + word[len(bare) :] if bare in table else word

        return _IPV4.sub(lambda m: self.address(m.group(0)), _WORD.sub(replace, text))


def anonymize(topology: dict[str, Any], report: str) -> tuple[dict[str, Any], str]:
    """The topology and the report text (written without its list of Neutron's names) with names, ids,
    descriptions, addresses and MACs replaced."""
    anonymizer = Anonymizer(topology)
    return anonymizer.topology(topology), anonymizer.text(report)


__all__ = ["Anonymizer", "anonymize"]
