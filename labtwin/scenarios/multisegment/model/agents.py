"""What the L2 agents build on a host for a routed network's segments.

Linux bridge agent (neutron-facts.md 1.3): one bridge per *key*, named
``"brq" + key[:11]`` (14 characters); the key is the network id (Neutron
before the PoC, ``bridge_naming = network``) or the segment id (the PTG's fix,
``bridge_naming = segment``). Each segment's VLAN enters its bridge through a
subinterface ``<phys_if>.<vlan>``, whose physical part is hashed when the name
would pass 15 characters. Two segments of one network on one host with network
naming land in *one* bridge: both subinterfaces are enslaved to it and the two
broadcast domains silently merge (inferred in the facts; a "collision").

OVS agent (1.4): ``br-int`` plus the pre-created physical bridges of
``bridge_mappings``, joined by ``int-<br>``/``phy-<br>`` patch ports. Each
network present gets a host-local VLAN (lvid, lowest free of 1..4094). Before
2023.1 ``LocalVlanManager`` is keyed by network only: the second segment's ports
get the first segment's lvid (``port_bound`` finds the network provisioned;
``add`` would raise ``MappingAlreadyExists``), so both segments share one
local VLAN on br-int (a collision). ``bridge_naming = segment`` stands for the
2023.1 manager keyed by (network, segment).

ML2/OVN (``agent = ovn``): no L2 agent; each chassis's ovn-controller. Neutron's
OVN driver gives a network one logical switch (``neutron-<network id>``) and
each of its segments a ``localnet`` port (``ovn_client.create_provnet_port``).
Once a port of the network is on the chassis (the datapath is local), OVN 23.03
patches br-int to the provider bridge for *every* localnet port whose physnet
the chassis maps (``controller/patch.c``), takes in each one's VLAN
(``controller/physical.c``) and floods a broadcast or unknown unicast out of all
of them but the one it came from (the flood group, same file): one L2 domain
per network per chassis holding all those segments, whatever segments its ports
are on. Unicast to a port on another chassis leaves by one localnet port only,
the first the chassis met (``controller/binding.c``, ``update_ld_localnet_port``:
the others are "skipped"), which the model takes from ``ovn_localnet``.

Simplification: the description's ``bridge_mappings`` value is read as the
physical interface (``interface_mappings``) by the Linux bridge agent and as
the OVS bridge by the OVS agent and ovn-controller.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Collection, Optional

from labtwin.description.names import get_interface_name, neutron_device, vlan_subinterface_name

from .ipam import SegmentInfo

BRIDGE_NAME_PREFIX = "brq"
MAX_LVID = 4094

# Costs of agent work (seconds). Not sourced: orders of magnitude for ip/brctl/ovs-vsctl calls.
BRIDGE_CREATE_S = 0.05
VLAN_SUBINTERFACE_S = 0.05
LOCAL_VLAN_S = 0.02


def bridge_key(segment: SegmentInfo, naming: str) -> str:
    """The id an agent keys a segment's L2 state by: network id or segment id."""
    if naming not in ("network", "segment"):
        raise ValueError(f"bridge_naming is network or segment, not {naming!r}")
    return segment.network_id if naming == "network" else segment.id


@functools.lru_cache(maxsize=4096)  # asked once per port plugged; a segment's name never changes
def bridge_name(segment: SegmentInfo, naming: str) -> str:
    """The Linux bridge a segment's ports plug into: ``brq`` + 11 characters of the key."""
    return neutron_device(BRIDGE_NAME_PREFIX, bridge_key(segment, naming))


def tap_name(port_id: str) -> str:
    return neutron_device("tap", port_id)


@dataclass(frozen=True)
class Op:
    """Agent work to record: operation name, subject, seconds, details."""

    op: str
    subject: str
    duration: float
    detail: dict = field(default_factory=dict)


class L2Agent:
    """State one host's L2 agent keeps for the routed network's segments.

    ``plug`` wires one named port and ``plug_many`` a batch of ports on one segment (the model's batched
    arrivals: counted, not named); each returns the work it did beyond plugging the taps (one per port, not
    recorded). ``domains`` maps each L2 device (bridge or local VLAN) to the segments sharing it
    (``domain_changes`` counts the changes, so a caller looks for new collisions only after one);
    ``rekey`` switches naming (the migration) and returns the work and how many ports changed device.

    ``names`` holds every interface name the agent created, with one tap per segment for a batch (the
    first port's): every tap is ``tap`` + 11 characters, so the batch's others add no new length.
    """

    kind = "agent"

    def __init__(self, host: str, mappings: dict[str, str], naming: str):
        self.host, self.mappings, self.naming = host, dict(mappings), naming
        self.ports: dict[str, tuple[str, SegmentInfo]] = {}  # port id -> (port name, segment)
        self.batched: Counter[str] = Counter()  # segment name -> ports plugged in batches
        self.segment_order: dict[str, SegmentInfo] = {}  # the segments of its ports, by first port
        self.names: set[str] = set()  # every interface name created on the host
        self.domains: dict[str, list[str]] = {}  # device -> segment names, in arrival order
        self.domain_changes = 0

    @property
    def port_count(self) -> int:
        return len(self.ports) + sum(self.batched.values())

    def plug(self, port_id: str, port_name: str, segment: SegmentInfo) -> list[Op]:
        """Wire a port: what the agent builds for its segment (nothing once built), then its tap."""
        self.ports[port_id] = (port_name, segment)
        self.segment_order.setdefault(segment.name, segment)
        ops = self._ensure(segment)
        self.names.add(tap_name(port_id))
        return ops

    def plug_many(self, segment: SegmentInfo, count: int, first_port_id: str) -> list[Op]:
        """Wire *count* ports on *segment* at once (the first one's id names its tap)."""
        self.batched[segment.name] += count
        new = segment.name not in self.segment_order
        self.segment_order.setdefault(segment.name, segment)
        ops = self._ensure(segment)
        if new:
            self.names.add(tap_name(first_port_id))
        return ops

    def device_of(self, segment: SegmentInfo) -> str:
        raise NotImplementedError

    def _ensure(self, segment: SegmentInfo) -> list[Op]:
        raise NotImplementedError

    def collisions(self) -> list[dict]:
        """Devices carrying more than one segment: merged broadcast domains."""
        return [
            {"host": self.host, "device": device, "segments": list(segs), "agent": self.kind}
            for device, segs in self.domains.items()
            if len(segs) > 1
        ]

    def bridge_names(self) -> list[str]:
        raise NotImplementedError

    def segment_added(self, segment: SegmentInfo) -> None:
        """The operator added *segment* to a network: agents build on the next port, so nothing by default."""

    def rekey(self, naming: str) -> tuple[list[Op], int]:
        """Rebuild under *naming*; return the work and how many ports changed device.

        The segments are rebuilt in the order their first port came, which is what rebuilding port by port
        does (a segment's later ports find it built)."""
        before = {name: self.device_of(seg) for name, seg in self.segment_order.items()}
        self._reset(naming)
        ops: list[Op] = []
        for seg in self.segment_order.values():
            ops.extend(self._ensure(seg))
        moved = {name for name, seg in self.segment_order.items() if self.device_of(seg) != before[name]}
        return ops, sum(seg.name in moved for _, seg in self.ports.values()) + sum(self.batched[n] for n in moved)

    def _reset(self, naming: str) -> None:
        self.naming, self.domains = naming, {}
        self.domain_changes += 1


class LinuxBridgeAgent(L2Agent):
    kind = "linuxbridge"

    def device_of(self, segment: SegmentInfo) -> str:
        return bridge_name(segment, self.naming)

    def _ensure(self, segment: SegmentInfo) -> list[Op]:
        bridge, ops = self.device_of(segment), []
        segs = self.domains.setdefault(bridge, [])
        if not segs:
            ops.append(Op("bridge_create", bridge, BRIDGE_CREATE_S, {"key": self.naming}))
            self.names.add(bridge)
        if segment.name not in segs:
            segs.append(segment.name)
            self.domain_changes += 1
            if segment.vlan is None:  # flat: the physnet interface itself joins the bridge, nothing is created
                return ops
            subif = vlan_subinterface_name(self.mappings[segment.physnet], segment.vlan)
            self.names.add(subif)
            ops.append(Op("vlan_subinterface", subif, VLAN_SUBINTERFACE_S, {"bridge": bridge, "segment": segment.name}))
        return ops

    def bridge_names(self) -> list[str]:
        return sorted(self.domains)

    def _reset(self, naming: str) -> None:
        # the old brq bridges are deleted once their ports moved (names stay in the history)
        super()._reset(naming)


class OvsAgent(L2Agent):
    kind = "ovs"

    def __init__(self, host: str, mappings: dict[str, str], naming: str):
        super().__init__(host, mappings, naming)
        self.lvids: dict[str, int] = {}  # key -> lvid
        self.names.add("br-int")
        for bridge in self.mappings.values():
            self.names.update({bridge, get_interface_name(bridge, "int-"), get_interface_name(bridge, "phy-")})

    def key(self, segment: SegmentInfo) -> str:
        return segment.network_id if self.naming == "network" else f"{segment.network_id}/{segment.id}"

    def device_of(self, segment: SegmentInfo) -> str:
        return f"br-int:lvid{self.lvids[self.key(segment)]}"

    def _ensure(self, segment: SegmentInfo) -> list[Op]:
        key, ops = self.key(segment), []
        if key not in self.lvids:
            lvid = min(set(range(1, MAX_LVID + 1)) - set(self.lvids.values()))
            self.lvids[key] = lvid
            ops.append(
                Op(
                    "local_vlan",
                    f"lvid{lvid}",
                    LOCAL_VLAN_S,
                    {"key": key, "segment": segment.name, "vlan": segment.vlan},
                )
            )
        segs = self.domains.setdefault(self.device_of(segment), [])
        if segment.name not in segs:
            if segs:  # pre-2023 LocalVlanManager: the network already has its one lvid
                ops.append(
                    Op(
                        "mapping_already_exists",
                        f"lvid{self.lvids[key]}",
                        0.0,
                        {"segment": segment.name, "owner": segs[0]},
                    )
                )
            segs.append(segment.name)
            self.domain_changes += 1
        return ops

    def bridge_names(self) -> list[str]:
        return ["br-int", *sorted(self.mappings.values())]

    def local_vlans(self) -> dict[str, int]:
        return {seg: int(device.split("lvid")[1]) for device, segs in self.domains.items() for seg in segs}

    def _reset(self, naming: str) -> None:
        """Re-key keeping each old lvid for the segment that owned it (fewest ports move)."""
        owners = {segs[0]: int(dev.split("lvid")[1]) for dev, segs in self.domains.items()}
        segments = self.segment_order
        super()._reset(naming)
        self.lvids = {}
        for name, lvid in owners.items():
            if name in segments:
                self.lvids[self.key(segments[name])] = lvid


class OvnController(L2Agent):
    """A chassis's ovn-controller (see the module docstring): one domain per network whose port it holds,
    ``neutron-<network id>``, joining every segment of the network on its physnets (*segments*: the network's
    segments now, so one the operator adds later joins too) and its ports' own."""

    kind = "ovn"

    def __init__(
        self,
        host: str,
        mappings: dict[str, str],
        naming: str,
        segments: Callable[[], Collection[SegmentInfo]],
        localnet: Optional[dict[str, str]] = None,
    ):
        super().__init__(host, mappings, naming)
        self.segments, self.localnet = segments, dict(localnet or {})
        self.names.update({"br-int", *self.mappings.values()})
        self.own: dict[str, dict[str, None]] = {}  # network id -> its ports' segments here, in arrival order
        self._patched: dict[tuple[str, int], list[str]] = {}

    def device_of(self, segment: SegmentInfo) -> str:
        return f"neutron-{segment.network_id}"

    def patched(self, network_id: str) -> list[str]:
        """The segments of the network whose localnet port the chassis patches: those on physnets it maps."""
        segments = self.segments()
        key = (network_id, len(segments))  # segments are only added: their count says whether this is current
        if key not in self._patched:
            self._patched[key] = [s.name for s in segments if s.network_id == network_id and s.physnet in self.mappings]
        return list(self._patched[key])

    def ports_network(self, port_name: str) -> str:
        """The network of the plugged port named *port_name*."""
        return next(seg.network_id for name, seg in self.ports.values() if name == port_name)

    def bound(self, network_id: str) -> Optional[str]:
        """The segment whose localnet port carries unicast to other chassis: ``ovn_localnet``'s for this host,
        else the first patched one (the model's guess: OVN's own order is the SB's hash order)."""
        patched = self.patched(network_id)
        chosen = self.localnet.get(self.host)
        return chosen if chosen in patched else (patched[0] if patched else None)

    def _ensure(self, segment: SegmentInfo) -> list[Op]:
        self.own.setdefault(segment.network_id, {})[segment.name] = None
        self.refresh(segment.network_id)
        return []  # nothing per segment: Neutron wrote the localnet ports; ovn-controller patches them

    def segment_added(self, segment: SegmentInfo) -> None:
        self.refresh(segment.network_id)  # Neutron writes its localnet port; a chassis mapping its physnet patches it

    def refresh(self, network_id: str) -> None:
        """Recompute the network's domain (a port plugged, or a segment added to the network)."""
        own = self.own.get(network_id)
        if own:
            domain = list(dict.fromkeys([*self.patched(network_id), *own]))
            if self.domains.get(f"neutron-{network_id}") != domain:
                self.domains[f"neutron-{network_id}"] = domain
                self.domain_changes += 1

    def _reset(self, naming: str) -> None:
        super()._reset(naming)
        self.own = {}

    def bridge_names(self) -> list[str]:
        return ["br-int", *sorted(self.mappings.values())]


def make_agent(
    kind: str,
    host: str,
    mappings: dict[str, str],
    naming: str,
    segments: Callable[[], Collection[SegmentInfo]] = tuple,
    localnet: Optional[dict[str, str]] = None,
) -> L2Agent:
    """The host's L2 agent of *kind*; ``ovn`` also needs the network's *segments* and the drawn *localnet*."""
    if kind == "linuxbridge":
        return LinuxBridgeAgent(host, mappings, naming)
    if kind == "ovs":
        return OvsAgent(host, mappings, naming)
    if kind == "ovn":
        return OvnController(host, mappings, naming, segments, localnet)
    raise ValueError(f"agent is linuxbridge, ovs or ovn, not {kind!r}")


def longest_name(names) -> Optional[str]:
    """The longest interface name (ties broken alphabetically, for determinism)."""
    return max(sorted(names), key=len, default=None)
