"""Names of everything the emulation creates, all within 15 characters.

Two kinds of names:

- **Root-namespace names** (Mininet host names, which mark the namespace
  holder processes; OVS bridges; root ends of veths to OVS) are shared by every
  run on the machine, so they are ``lt`` + the run id (4 base36 characters) +
  a kind letter + an index: ``ltk3x9h12``. Two runs side by side never collide,
  and no text from the topology reaches them.
- **Names inside a run's own namespaces** cannot collide with another run, so
  they follow Neutron's conventions where Neutron has one: ``brq`` + 11
  characters of the network id, ``tap``/``qbr``/``qvb`` + 11 characters of the
  port id, ``qr-``/``qg-`` for router devices, ``<if>.<vlan>`` subinterfaces.
  Ids are UUIDs, re-parsed here, so even an object built without validation
  cannot smuggle other text into a name.

>>> node_name("k3x9", "h", 12)
'ltk3x9h12'
>>> tap_name("ebc143af-0cf7-5b1f-9dea-dd6ca1c434b1")
'tapebc143af-0c'
>>> vlan_device("eth1", 101)
'eth1.101'
"""

from __future__ import annotations

import re
import secrets
import uuid

from labtwin.description.names import neutron_device, vlan_subinterface_name

MAX_LEN = 15
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_RUN_ID = re.compile(r"^[0-9a-z]{4}$")


class NameError_(ValueError):
    """A name would not be a valid interface name."""


def new_run_id() -> str:
    """A fresh 4-character base36 run id (1.7 million values)."""
    return "".join(secrets.choice(_BASE36) for _ in range(4))


def check_run_id(run_id: str) -> str:
    if not _RUN_ID.match(run_id):
        raise NameError_(f"run id must be 4 characters of [0-9a-z], got {run_id!r}")
    return run_id


def _fit(name: str) -> str:
    if not 0 < len(name) <= MAX_LEN:
        raise NameError_(f"{name!r} does not fit the {MAX_LEN}-character interface limit")
    return name


def node_name(run_id: str, kind: str, index: int) -> str:
    """A root-visible name: ``lt`` + run id + kind letter + index."""
    if not re.fullmatch(r"[a-z]", kind):
        raise NameError_(f"kind must be one lowercase letter, got {kind!r}")
    return _fit(f"lt{check_run_id(run_id)}{kind}{int(index)}")


def _id(resource_id) -> str:
    return str(uuid.UUID(str(resource_id)))


def prefixed(prefix: str, resource_id) -> str:
    """Neutron's ``prefix + id[:11]`` device names (``tap``, ``qbr``, ``qvb``, ``qr-``, ``brq``), the id
    re-parsed as a UUID first (:func:`labtwin.description.names.neutron_device` is the rule)."""
    return _fit(neutron_device(prefix, _id(resource_id)))


def tap_name(port_id) -> str:
    return prefixed("tap", port_id)


def bridge_name(network_id) -> str:
    """The Linux bridge agent's bridge for a network: ``brq`` + 11 characters of its id."""
    return prefixed("brq", network_id)


def vlan_device(parent: str, vlan: int) -> str:
    """``<parent>.<vlan>``, the parent hashed when too long, as Neutron does
    (:func:`labtwin.description.names.vlan_subinterface_name` is the rule)."""
    return _fit(vlan_subinterface_name(parent, int(vlan)))


def physnet_interface(index: int) -> str:
    """A host's interface onto the physnet fabric (``physical_interface_mappings``)."""
    return _fit(f"eth{int(index) + 1}")


def chain_name(direction: str, port_id) -> str:
    """The hybrid driver's per-port chain: ``neutron-openvswi-`` + i/o/s + 10 id characters.

    >>> chain_name("i", "ebc143af-0cf7-5b1f-9dea-dd6ca1c434b1")
    'neutron-openvswi-iebc143af-0'
    """
    if direction not in ("i", "o", "s"):
        raise NameError_(f"direction must be i, o or s, got {direction!r}")
    return f"neutron-openvswi-{direction}{_id(port_id)[:10]}"


def ipset_name(group_id, ethertype: str) -> str:
    """Neutron's ipset for a remote group: ``N`` + ethertype + id, cut to 29 characters."""
    if ethertype not in ("IPv4", "IPv6"):
        raise NameError_(f"ethertype must be IPv4 or IPv6, got {ethertype!r}")
    return ("N" + ethertype + _id(group_id))[:29]
