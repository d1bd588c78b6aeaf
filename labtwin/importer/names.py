"""Safe names for imported objects: a Neutron name as it is where labtwin allows it, else mapped.

labtwin's names are at most 15 characters of letters, digits, ``-`` and ``_``, starting with a letter or digit
(:mod:`labtwin.description.names`: they become interface and namespace names). Neutron allows any 255
characters, and empty names. A name that does not fit is mapped (other characters to ``-``, a host's domain
dropped, cut to fit, made unique with part of the object's id) and the original is kept in the object's
description; an unnamed object is named after its kind and id.

>>> names = SafeNames("net")
>>> names.name("tenant-a", "6f1c..."), names.name("", "9a2b3c4d-0000"), names.name("my network (prod)", "1234abcd")
('tenant-a', 'net-9a2b3c4d', 'my-network-prod')
>>> names.name("my network (prod)", "5678ef90")  # taken: the id's first characters make it unique
'my-networ-5678e'
"""

from __future__ import annotations

import re

from labtwin.description.names import DEVICE_NAME_MAX_LEN, is_safe_name


class SafeNames:
    """Names of one kind (labtwin's names are unique per kind), handed out in order."""

    def __init__(self, prefix: str, drop_domain: bool = False):
        self.prefix, self.drop_domain = prefix, drop_domain
        self.taken: set[str] = set()
        self.original: dict[str, str] = {}  # safe name -> Neutron's, where they differ

    def name(self, neutron_name: str | None, object_id: str) -> str:
        """The safe name of an object called *neutron_name* (may be empty) with id *object_id*."""
        wanted = neutron_name or ""
        base = wanted.split(".")[0] if self.drop_domain and wanted else wanted
        base = re.sub(r"[^A-Za-z0-9_-]+", "-", base).strip("-_")
        short_id = re.sub(r"[^A-Za-z0-9]", "", object_id)
        if not base:
            base = f"{self.prefix}-{short_id[:8]}"
        name = base[:DEVICE_NAME_MAX_LEN].rstrip("-_")
        if name in self.taken:
            room = DEVICE_NAME_MAX_LEN - 6
            name = f"{name[:room].rstrip('-_')}-{short_id[:5]}"
        counter = 1
        while name in self.taken or not is_safe_name(name):
            tail = f"-{counter}"
            name = f"{base[: DEVICE_NAME_MAX_LEN - len(tail)].rstrip('-_')}{tail}"
            counter += 1
        self.taken.add(name)
        if name != wanted:
            self.original[name] = wanted
        return name


__all__ = ["SafeNames"]
