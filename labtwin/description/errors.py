"""Problems found in a cloud description, each located by file, line and field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

Loc = tuple[Union[str, int], ...]


def field_path(loc: Loc) -> str:
    """``('ports', 3, 'fixed_ips', 0, 'ip_address')`` -> ``ports[3].fixed_ips[0].ip_address``.

    >>> field_path(('ports', 3, 'fixed_ips', 0, 'ip_address'))
    'ports[3].fixed_ips[0].ip_address'
    >>> field_path(())
    '(document)'
    """
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(document)"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file: where it is and what is wrong."""

    path: str
    line: int
    loc: Loc
    message: str

    def __str__(self) -> str:
        message = " ".join(self.message.split())  # one problem, one line
        return f"{self.path}:{self.line}: {field_path(self.loc)}: {message}"


class CloudError(ValueError):
    """A description that cannot be loaded; carries every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems, key=lambda p: (p.path, p.line, field_path(p.loc)))
        super().__init__("\n".join(str(p) for p in self.problems))
