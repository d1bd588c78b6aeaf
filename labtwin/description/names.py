"""Names that are safe everywhere they may travel.

Every name in a cloud description may end up in a Linux interface name, a
namespace name, a file name or an argv element. Restricting the character set
and length once, at the boundary, means nothing downstream has to quote or
re-check: a valid name is alphanumeric, ``-`` or ``_``, starts with an
alphanumeric and fits the kernel's interface-name limit (15 characters,
``IFNAMSIZ`` 16 minus the NUL; Neutron's ``DEVICE_NAME_MAX_LEN``).

>>> is_safe_name("compute-1")
True
>>> is_safe_name("a;rm -rf /")
False
>>> is_safe_name("x" * 16)
False
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated

from pydantic import StringConstraints

DEVICE_NAME_MAX_LEN = 15
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,14}$"
_NAME_RE = re.compile(NAME_PATTERN)

#: A validated object name (host, network, port, ...): see the module docstring.
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]


def is_safe_name(text: str) -> bool:
    """True when *text* may be used as a name (and so as an interface name)."""
    return bool(_NAME_RE.match(text))


# --- Neutron's device names (shared by every model and emulation: one rule set) --------------------------

#: Neutron's devices carry 11 characters of a resource id after their prefix (``tap``, ``brq``, ``qr-``).
RESOURCE_ID_LENGTH = 11
INTERFACE_HASH_LEN = 6
MAX_VLAN_POSTFIX_LEN = 5  # room for ".4094"


def neutron_device(prefix: str, resource_id: str) -> str:
    """``prefix`` + the first 11 characters of a resource id, as Neutron names ``tap``/``brq``/``qr-`` devices.

    >>> neutron_device("tap", "ebc143af-0cf7-5b1f-9dea-dd6ca1c434b1")
    'tapebc143af-0c'
    """
    return prefix + str(resource_id)[:RESOURCE_ID_LENGTH]


def get_interface_name(name: str, prefix: str = "", max_len: int = DEVICE_NAME_MAX_LEN) -> str:
    """neutron-lib's ``utils.net.get_interface_name`` (the same rule, written out until neutron-lib is a
    dependency): prefix+name, or a truncated name + 6 hex characters of its sha1.

    >>> get_interface_name("enp175s0f1np1", max_len=10)
    'enp195a366'
    """
    if len(prefix + name) <= max_len:
        return prefix + name
    keep = max_len - len(prefix) - INTERFACE_HASH_LEN
    digest = hashlib.sha1(name.encode()).hexdigest()[:INTERFACE_HASH_LEN]
    return f"{prefix}{name[:keep]}{digest}"


def vlan_subinterface_name(phys_if: str, vlan: int) -> str:
    """``<phys_if>.<vlan>``, the interface part hashed when the whole passes 15 characters (the Linux
    bridge agent's ``get_subinterface_name``).

    >>> vlan_subinterface_name("bond0", 2001)
    'bond0.2001'
    >>> len(vlan_subinterface_name("enp175s0f1np1", 2001))
    15
    """
    postfix = f".{int(vlan)}"
    if len(phys_if) + len(postfix) > DEVICE_NAME_MAX_LEN:
        phys_if = get_interface_name(phys_if, max_len=DEVICE_NAME_MAX_LEN - MAX_VLAN_POSTFIX_LEN)
    return phys_if + postfix
