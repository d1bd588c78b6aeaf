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
