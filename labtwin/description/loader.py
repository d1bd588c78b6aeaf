"""Load topology files into :class:`Cloud` objects, or say exactly what is wrong.

The file is parsed once into a YAML node tree (libyaml when available), which
keeps line numbers; values are built from that tree, checked for shape by the
schema classes and for consistency by :mod:`.checks`, and defaults are filled
by :mod:`.resolve`. Any problem becomes a :class:`Problem` located at the
deepest node its field path reaches; all problems of a file are reported
together in one :class:`CloudError`.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Union

import yaml
import yaml.reader
from pydantic import ValidationError

from .checks import check_cloud
from .errors import CloudError, Loc, Problem
from .resolve import resolve_cloud
from .schema import Cloud

try:  # libyaml's parser is ~10x faster on big clouds
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - libyaml missing
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment, unused-ignore]


class _Loader(_BaseLoader):
    """libyaml parser with a memo on implicit tag resolution.

    Resolution runs in Python once per scalar; a topology repeats the same keys
    (``name``, ``network_id`` ...) thousands of times, so a memo halves it.
    """

    _memo: dict = {}

    def resolve(self, kind, value, implicit):
        if kind is not yaml.ScalarNode:
            return super().resolve(kind, value, implicit)
        key = (value, implicit)
        tag = self._memo.get(key)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if len(self._memo) < 100_000:
                self._memo[key] = tag
        return tag


def load_cloud(path: Union[str, Path]) -> Cloud:
    """Load and validate one topology file; raise :class:`CloudError` if invalid."""
    return parse_cloud(_read(path), str(path))


def _read(path: Union[str, Path]) -> str:
    """The file's text, or a :class:`CloudError` saying why it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CloudError([Problem(str(path), 0, (), f"cannot read: {exc}")]) from None


def parse_cloud(text: str, path: str = "<string>") -> Cloud:
    """Validate a topology given as YAML text; *path* names it in problems."""
    # Building ~10^5 small objects triggers the cyclic GC over and over (3x the
    # load time of a 20,000-port cloud); nothing here makes cycles, so pause it.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _parse_cloud(text, path)
    finally:
        if was_enabled:
            gc.enable()


def _parse_cloud(text: str, path: str) -> Cloud:
    cloud, locate = _declared_cloud(text, path)
    cloud, found = resolve_cloud(cloud)
    if found:
        raise CloudError([locate(loc, msg) for loc, msg in found])
    return cloud


@dataclass(frozen=True)
class Declared:
    """A file as written (shape checked, defaults not filled) beside labtwin's answer to it.

    *problems* are labtwin's refusals: the consistency checks' (an address used twice, a group on a
    port without port security ...) and, when those pass, the ones filling the defaults met (an
    exhausted pool ...); *resolved* is what :func:`load_cloud` gives, or None when a consistency check
    failed (then defaults are not filled). :mod:`labtwin.oracle` asks Neutron the same questions."""

    path: str
    cloud: Cloud
    resolved: Optional[Cloud]
    problems: tuple[Problem, ...]


def load_declared(path: Union[str, Path]) -> Declared:
    """Load *path* as written; raise :class:`CloudError` only for problems of shape (YAML, unknown fields,
    bad values: what no API request could even carry), keeping labtwin's other refusals as answers."""
    cloud, locate, duplicates = _shaped_cloud(_read(path), str(path))
    if duplicates:
        raise CloudError(duplicates)
    refused = [locate(loc, msg) for loc, msg in check_cloud(cloud)]
    if refused:
        return Declared(str(path), cloud, None, tuple(refused))
    resolved, found = resolve_cloud(cloud)
    return Declared(str(path), cloud, resolved, tuple(locate(loc, msg) for loc, msg in found))


def _declared_cloud(text: str, path: str) -> tuple[Cloud, "_Locator"]:
    cloud, locate, duplicates = _shaped_cloud(text, path)
    problems = duplicates + [locate(loc, msg) for loc, msg in check_cloud(cloud)]
    if problems:
        raise CloudError(problems)
    return cloud, locate


def _shaped_cloud(text: str, path: str) -> tuple[Cloud, "_Locator", list[Problem]]:
    """The cloud as its schema reads it (or a :class:`CloudError`), its locator, and the duplicate keys."""
    node, data, duplicates = _parse_yaml(text, path)
    locate = _Locator(path, node)
    problems = [Problem(path, line, loc, msg) for loc, line, msg in duplicates]
    if not isinstance(data, dict):
        problems.append(locate((), f"a topology is a mapping of sections, not {type(data).__name__}"))
        raise CloudError(problems)
    return _validated(data, locate, problems), locate, problems


def _validated(data: dict, locate: Callable[[Loc, str], Problem], problems: list[Problem]) -> Cloud:
    """*data* as the schema reads it, or a :class:`CloudError` with *problems* and every schema error."""
    try:
        return Cloud.model_validate(data)
    except ValidationError as exc:
        problems = problems + [locate(_clean_loc(e["loc"]), _message(dict(e))) for e in exc.errors()]
        raise CloudError(list(dict.fromkeys(problems))) from None  # unions report once


def cloud_of(data: dict, path: str, line_of: Callable[[Loc], int] = lambda loc: 0) -> Cloud:
    """A topology already parsed into Python values (as ``labtwin import`` builds one), checked and resolved as
    :func:`load_cloud` checks and resolves a file; *line_of* places a field path in the text it stands for."""

    def locate(loc: Loc, message: str) -> Problem:
        return Problem(path, line_of(loc), loc, message)

    was_enabled = gc.isenabled()
    gc.disable()  # as parse_cloud: nothing here makes cycles
    try:
        cloud = _validated(data, locate, [])
        problems = [locate(loc, msg) for loc, msg in check_cloud(cloud)]
        if problems:
            raise CloudError(problems)
        cloud, found = resolve_cloud(cloud)
        if found:
            raise CloudError([locate(loc, msg) for loc, msg in found])
        return cloud
    finally:
        if was_enabled:
            gc.enable()


def _parse_yaml(text: str, path: str):
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        duplicates: list = []
        data = _Builder(loader, duplicates).build(node, ()) if node is not None else None
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
    return node, data, duplicates


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
                return (
                    value
                    if not isinstance(value, yaml.ScalarNode) or value.start_mark.line == key.start_mark.line
                    else key
                )
        return None
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        return node.value[part]
    return None


class _Builder:
    """Python values from a YAML node tree, in one pass that also finds duplicate keys.

    Faster than PyYAML's constructor for the common tags (str, int, bool, null,
    float), which it converts directly; anything else goes to the safe
    constructor. Each node is built once, so aliases cannot blow the walk up.
    """

    _SIMPLE: dict[str, Callable[[str], Any]] = {
        "tag:yaml.org,2002:str": str,
        "tag:yaml.org,2002:null": lambda v: None,
    }

    def __init__(self, loader, duplicates: list):
        self.loader, self.duplicates = loader, duplicates
        self.built: dict[int, tuple] = {}

    def build(self, node, loc: Loc):
        done = self.built.get(id(node))
        if done is not None:
            return done[0]
        if isinstance(node, yaml.ScalarNode):
            simple = self._SIMPLE.get(node.tag)
            value = simple(node.value) if simple else self.loader.construct_object(node, deep=True)
        elif isinstance(node, yaml.SequenceNode):
            value = [self.build(item, loc + (i,)) for i, item in enumerate(node.value)]
        elif node.tag != "tag:yaml.org,2002:map":  # e.g. !!set, !!omap: rare, let PyYAML do it
            value = self.loader.construct_object(node, deep=True)
        else:
            value = {}
            for key_node, value_node in node.value:
                key = self.build(key_node, loc)
                if not isinstance(key, (str, int, float, bool, type(None))):
                    key = str(key)
                if key in value:
                    self.duplicates.append(
                        (loc + (key,), key_node.start_mark.line + 1, "key given twice in this mapping")
                    )
                value[key] = self.build(value_node, loc + (key,))
        self.built[id(node)] = (value,)
        return value
