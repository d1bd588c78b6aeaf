"""Load topology files into :class:`Cloud` objects, or say exactly what is wrong.

The file is parsed once into a YAML node tree (libyaml when available), which
keeps line numbers; values are built from that tree, checked for shape by the
schema classes and for consistency by :mod:`.checks`, and defaults are filled
by :mod:`.resolve`. Any problem becomes a :class:`Problem` located at the
deepest node its field path reaches; all problems of a file are reported
together in one :class:`CloudError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

import yaml
import yaml.reader
from pydantic import ValidationError

from .checks import check_cloud
from .errors import CloudError, Loc, Problem
from .resolve import resolve_cloud
from .schema import Cloud

try:  # libyaml's parser is ~10x faster on big clouds
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - libyaml missing
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]


def load_cloud(path: Union[str, Path]) -> Cloud:
    """Load and validate one topology file; raise :class:`CloudError` if invalid."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CloudError([Problem(str(path), 0, (), f"cannot read: {exc}")]) from None
    return parse_cloud(text, str(path))


def parse_cloud(text: str, path: str = "<string>") -> Cloud:
    """Validate a topology given as YAML text; *path* names it in problems."""
    node, data = _parse_yaml(text, path)
    locate = _Locator(path, node)
    problems = [Problem(path, line, loc, msg) for loc, line, msg in _duplicate_keys(node, (), set())]
    if not isinstance(data, dict):
        problems.append(locate((), f"a topology is a mapping of sections, not {type(data).__name__}"))
        raise CloudError(problems)
    try:
        cloud = Cloud.model_validate(data)
    except ValidationError as exc:
        problems.extend(locate(_clean_loc(e["loc"]), _message(e)) for e in exc.errors())
        raise CloudError(list(dict.fromkeys(problems))) from None  # unions report once
    problems.extend(locate(loc, msg) for loc, msg in check_cloud(cloud))
    if problems:
        raise CloudError(problems)
    cloud, found = resolve_cloud(cloud)
    if found:
        raise CloudError([locate(loc, msg) for loc, msg in found])
    return cloud


def _parse_yaml(text: str, path: str):
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise CloudError([Problem(path, line, (), f"YAML syntax: {exc.problem or exc.context}")]) from None
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        raise CloudError([Problem(path, line, (), f"character {exc.character!r} is not allowed in YAML")]) from None
    except yaml.YAMLError as exc:
        raise CloudError([Problem(path, 1, (), f"YAML: {exc}")]) from None
    finally:
        loader.dispose()
    return node, data


def _clean_loc(loc) -> Loc:
    # pydantic appends validator tags (e.g. 'function-after[...]') for unions; drop them
    return tuple(p for p in loc if isinstance(p, int) or not ("[" in p or p in {"str", "int"}))


def _message(error: dict) -> str:
    kind, msg = error["type"], error["msg"]
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "missing required field"
    if kind in ("ip_v4_network", "ip_v6_network"):
        return f"{error['input']!r} is not an IP network like 10.0.0.0/24 or 2001:db8::/64 (host bits must be zero)"
    if kind in ("ip_v4_address", "ip_v6_address"):
        return f"{error['input']!r} is not an IP address"
    if kind == "string_pattern_mismatch" and "A-Za-z0-9" in msg:
        return (
            f"{error['input']!r} is not a safe name: 1-15 characters of letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    msg = msg.removeprefix("Value error, ")
    if "input" in error and kind not in ("value_error",) and not isinstance(error["input"], (dict, list)):
        return f"{msg} (got {error['input']!r})"
    return msg


class _Locator:
    """Turns a field path into a :class:`Problem` at the deepest matching line."""

    def __init__(self, path: str, root):
        self.path, self.root = path, root

    def __call__(self, loc: Loc, message: str) -> Problem:
        return Problem(self.path, self.line_of(loc), loc, message)

    def line_of(self, loc: Loc) -> int:
        node = self.root
        if node is None:
            return 1
        line = node.start_mark.line + 1
        for part in loc:
            node = _child(node, part)
            if node is None:
                break
            line = node.start_mark.line + 1
        return line


def _child(node, part):
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == part:
                # an unknown key is best shown at the key itself
                return value if not isinstance(value, yaml.ScalarNode) or value.start_mark.line == key.start_mark.line else key
        return None
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        return node.value[part]
    return None


def _duplicate_keys(node, loc: Loc, visited: set):
    """YAML mappings with a key given twice (PyYAML would keep the last silently).

    Each node is visited once, so aliases cannot blow the walk up.
    """
    if node is None or id(node) in visited:
        return
    visited.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    yield loc + (key.value,), key.start_mark.line + 1, "key given twice in this mapping"
                seen.add(key.value)
                yield from _duplicate_keys(value, loc + (key.value,), visited)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicate_keys(item, loc + (i,), visited)
