"""A realisation plan, as plain data (no effects, no root needed): the types every scenario's planner fills.

A plan lists network namespaces, veths, OVS bridges and ports, and per namespace its configuration
(sysctls, ``ip -batch`` lines, iptables/ipset text); :mod:`labtwin.emulation.realise` builds it and
ledgers every piece. Each scenario plans its own layout (e.g. reachability's Linux-bridge layout in
``labtwin/scenarios/reachability/emulation/plan.py``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Optional

from . import firewall, naming

_MAC = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")


class PlanError(ValueError):
    """The cloud asks for something this realisation does not build."""


@dataclass(frozen=True)
class Namespace:
    """A network namespace: ``key`` in the plan, ``node`` its root-visible holder name."""

    key: str
    role: str  # host | port | router
    subject: str  # the cloud object's name: for records only, never in argv
    node: str


@dataclass(frozen=True)
class Veth:
    """A veth pair created straight into two namespaces (``root`` for OVS ends)."""

    a: str
    a_dev: str
    b: str
    b_dev: str


@dataclass(frozen=True)
class OvsBridge:
    name: str
    owner: str  # the host namespace it belongs to
    datapath_type: str = "netdev"


@dataclass(frozen=True)
class OvsPort:
    bridge: str
    dev: str
    tag: Optional[int] = None
    trunks: tuple[int, ...] = ()  # a trunk limited to these VLANs (empty: all)
    native_untagged: bool = False  # with a tag: a trunk whose untagged frames are VLAN *tag* (a flat network)


@dataclass(frozen=True)
class Endpoint:
    """Where a port lives: its namespace, device, MAC and addresses."""

    port: str
    ns: str
    dev: str
    mac: str
    ips: tuple


@dataclass
class NsConfig:
    """What to do inside one namespace, as runner input."""

    ns: str
    sysctls: list[str] = field(default_factory=list)
    ip_batch: list[str] = field(default_factory=list)
    creates: list[tuple[str, str]] = field(default_factory=list)  # (kind, name)
    rules: Optional[firewall.RuleSet] = None

    def bridge(self, name: str) -> None:
        self.ip_batch += [f"link add {name} type bridge", f"link set {name} up"]
        self.creates.append(("bridge", name))

    def vlan(self, parent: str, vid: int) -> str:
        name = naming.vlan_device(parent, vid)
        self.ip_batch += [f"link add link {parent} name {name} type vlan id {int(vid)}", f"link set {name} up"]
        self.creates.append(("link", name))
        return name

    def enslave(self, dev: str, bridge: str) -> None:
        self.ip_batch += [f"link set {dev} master {bridge}", f"link set {dev} up"]


@dataclass
class Plan:
    run_id: str
    namespaces: list[Namespace] = field(default_factory=list)
    veths: list[Veth] = field(default_factory=list)
    ovs_bridges: list[OvsBridge] = field(default_factory=list)
    ovs_ports: list[OvsPort] = field(default_factory=list)
    config: dict[str, NsConfig] = field(default_factory=dict)
    endpoints: dict[str, Endpoint] = field(default_factory=dict)

    def ns(self, key: str) -> Namespace:
        return next(n for n in self.namespaces if n.key == key)

    def plug(self, host: str, port_id, tap: str, bridge: str, hybrid: bool = False, tap_up: bool = True) -> None:
        """Put a port's *tap* (already in namespace *host*) on *bridge*, the way its agent plugs it.

        ``hybrid``: ML2/OVS's hybrid plug, which the iptables hybrid driver expects: the tap on its own
        Linux bridge ``qbr<id>``, joined to *bridge* (standing for ``br-int``) by the veth ``qvb<id>`` /
        ``qvo<id>``. Packets to the VM then enter ``qbr`` through ``qvb``, where the driver's per-port
        conntrack zone rule catches them, so both directions of a connection share the port's zone.
        Otherwise the tap goes straight on *bridge* (the Linux bridge agent's plug). ``tap_up=False``
        leaves the tap down (a port not yet wired).
        """
        cfg = self.config[host]
        if hybrid:
            qbr, qvb, qvo = (naming.prefixed(prefix, port_id) for prefix in ("qbr", "qvb", "qvo"))
            cfg.bridge(qbr)
            self.veths.append(Veth(host, qvb, host, qvo))
            cfg.enslave(qvb, qbr)
            cfg.enslave(qvo, bridge)
            bridge = qbr
        cfg.ip_batch.append(f"link set {tap} master {bridge}")
        if tap_up:
            cfg.ip_batch.append(f"link set {tap} up")

    def add_ns(self, key: str, role: str, subject: str) -> NsConfig:
        letter = {"host": "h", "port": "p", "router": "r"}[role]
        index = sum(n.role == role for n in self.namespaces)
        self.namespaces.append(Namespace(key, role, subject, naming.node_name(self.run_id, letter, index)))
        self.config[key] = NsConfig(key)
        return self.config[key]


def derived_mac(resource_id) -> str:
    """A MAC in Neutron's ``fa:16:3e`` base for a resource without one."""
    digest = hashlib.sha1(str(resource_id).encode()).hexdigest()
    return "fa:16:3e:" + ":".join(digest[i : i + 2] for i in (0, 2, 4))


def checked_mac(mac: str) -> str:
    """*mac* if it is a plain lowercase MAC (re-checked: it goes into ip-batch text)."""
    if not isinstance(mac, str) or not _MAC.match(mac):
        raise PlanError(f"not a MAC address: {mac!r}")
    return mac
