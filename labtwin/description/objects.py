"""What every object of the cloud description is made of: frozen pydantic models, names, derived ids.

Shared by :mod:`labtwin.description.schema` and :mod:`labtwin.description.security_groups`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import uuid
from typing import ClassVar, Optional, Union

from pydantic import BaseModel, ConfigDict, model_validator

from .names import Name

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
#: An address with a prefix length, host bits allowed (``10.0.0.5/24``): a rule's remote_ip_prefix as given.
IPPrefix = Union[ipaddress.IPv4Interface, ipaddress.IPv6Interface]

#: Namespace for ids derived from names (uuid5), so the same file always
#: yields the same ids.
ID_NAMESPACE = uuid.UUID("6f1c3a52-5a0e-4c36-9a8e-3c1b7e0d2b10")


def derived_id(kind: str, name: str) -> str:
    """The id an object gets when the file gives none: uuid5 of kind and name (RFC 4122, section 4.3),
    computed on the bytes (``str(uuid.uuid5(...))`` builds two UUID objects; a model makes one id per port).

    >>> derived_id("port", "vm-1") == str(uuid.uuid5(ID_NAMESPACE, "port/vm-1"))
    True
    """
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + f"{kind}/{name}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_NAMESPACE_BYTES = ID_NAMESPACE.bytes


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _Named(_Frozen):
    """An object with a unique name and an id (UUID)."""

    name: Name
    id: Optional[uuid.UUID] = None
    description: str = ""

    kind: ClassVar[str] = "object"

    @model_validator(mode="after")
    def _fill_id(self):
        if self.id is None:
            object.__setattr__(self, "id", uuid.UUID(derived_id(self.kind, self.name)))
        return self
