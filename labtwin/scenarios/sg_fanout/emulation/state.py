"""Read sg-fanout's kernel state and say what a join changed (pure parsers, tested on samples).

What is counted, and why (the twin compares these with the model's counts):

- a port **filter** is the port's i/o/s chains (hybrid iptables) or its own
  flows (OVS: the flows matching its ofport, ``reg5`` or MAC). It was
  **written** when the kernel holds rules of it that were (re)created during
  the apply: under iptables-nft every rule has a handle that is never reused,
  so a rebuilt chain shows new handles even when its text is identical; under
  OVS a re-added flow restarts its ``duration``. It **changed** when its
  rules' text differs (``iptables-save`` / ``dump-flows`` text);
- a **group object** (the ipset, the conjunction dimension-1 flows, the
  subtable) per host is written when its content changes (as the model counts
  ``group_writes``: Neutron writes a set or the dimension-1 flows only by diff).

So ``filters_written`` (kernel: new handles / restarted flows) maps to the
model's ``filters_written`` -- Neutron's ``update_port_filter`` rewrites all
M+1 filters under ipset/ovs even though M of them come out identical -- and
``objects_changed`` (kernel: text differs) maps to the model's ``objects_changed``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

_HANDLE = re.compile(r"# handle (\d+)\s*$")
_CHAIN = re.compile(r"^\s*chain (\S+) \{")


def parse_iptables_save(text: str) -> dict[str, tuple[str, ...]]:
    """Chain -> its rules (the text after ``-A <chain> ``), in order.

    >>> parse_iptables_save("*filter\\n:x - [0:0]\\n-A x -j DROP\\nCOMMIT\\n")
    {'x': ('-j DROP',)}
    """
    chains: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith(":"):
            chains.setdefault(line[1:].split()[0], [])
        elif line.startswith("-A "):
            _, chain, *rest = line.split(" ", 2)
            chains.setdefault(chain, []).append(rest[0] if rest else "")
    return {c: tuple(r) for c, r in chains.items()}


def parse_nft_handles(text: str) -> dict[str, tuple[int, ...]]:
    """Chain -> handles of its rules, from ``nft -a list table ip filter``."""
    chains: dict[str, list[int]] = {}
    current = None
    for line in text.splitlines():
        head = _CHAIN.match(line)
        if head:
            current = chains.setdefault(head.group(1), [])
            continue
        handle = _HANDLE.search(line)
        if current is not None and handle and not line.strip().startswith(("table", "chain")):
            current.append(int(handle.group(1)))
        if line.strip() == "}":
            current = None
    return {c: tuple(h) for c, h in chains.items()}


def parse_ipset_save(text: str) -> dict[str, frozenset]:
    """Set name -> its entries, from ``ipset save`` (a /32 is written without the suffix)."""
    sets: dict[str, set] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "create":
            sets.setdefault(parts[1], set())
        elif len(parts) >= 3 and parts[0] == "add":
            sets.setdefault(parts[1], set()).add(parts[2].removesuffix("/32"))
    return {name: frozenset(entries) for name, entries in sets.items()}


@dataclass(frozen=True)
class Flow:
    table: int
    match: str  # priority and match fields, as OVS prints them (canonical)
    actions: str
    duration: float
    cookie: str


def parse_dump_flows(text: str) -> list[Flow]:
    """``ovs-ofctl dump-flows`` lines as :class:`Flow` s (stats dropped, match kept verbatim)."""
    flows = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("cookie=") or " actions=" not in line:
            continue
        head, actions = line.split(" actions=", 1)
        fields = [f.strip() for f in head.split(", ")]
        stats = dict(f.split("=", 1) for f in fields[:-1] if "=" in f)
        match = fields[-1]
        if "=" in match and match.split("=", 1)[0] in (
            "cookie",
            "duration",
            "table",
            "n_packets",
            "n_bytes",
            "idle_age",
            "hard_age",
            "reset_counts",
        ):
            stats.update([match.split("=", 1)])
            match = ""
        flows.append(
            Flow(
                int(stats.get("table", 0)),
                match,
                actions,
                float(stats["duration"].rstrip("s")),
                stats.get("cookie", "0x0"),
            )
        )
    return flows


@dataclass
class Change:
    """What one host's apply did to one kind of object, counted from the kernel."""

    written: set = field(default_factory=set)
    changed: set = field(default_factory=set)
    removed: set = field(default_factory=set)
    rules_written: int = 0
    #: rules deleted and inserted again with the same text (Neutron's diff reordering; counted by content only)
    rules_reinserted: int = 0

    def merge(self, other: "Change") -> "Change":
        return Change(
            self.written | other.written,
            self.changed | other.changed,
            self.removed | other.removed,
            self.rules_written + other.rules_written,
            self.rules_reinserted + other.rules_reinserted,
        )


def iptables_change(
    owner: dict[str, str], rules_before, rules_after, handles_before, handles_after, by: str = "handle"
) -> Change:
    """Port filters (chains grouped by *owner*: chain -> port) written / changed / removed.

    *by*: what makes a rule written. ``handle``: it has a handle it did not have before (the kernel received
    it, even with the same text: labtwin's agent rebuilds chains). ``content``: its text is new to its chain
    (Neutron's agent: IptablesManager's diff also deletes and re-inserts rules whose text stays, when the
    member order it generates from a set differs between two computations; those are counted in
    ``rules_reinserted``, not as written).

    >>> owner = {"i1": "a", "i2": "b"}
    >>> c = iptables_change(owner, {"i1": ("x",), "i2": ("y",)}, {"i1": ("x",), "i2": ("z",)},
    ...                     {"i1": (4,), "i2": (5,)}, {"i1": (9,), "i2": (10,)})
    >>> sorted(c.written), sorted(c.changed), c.rules_written
    (['a', 'b'], ['b'], 2)
    >>> c = iptables_change(owner, {"i1": ("x",), "i2": ("y",)}, {"i1": ("x",), "i2": ("z",)},
    ...                     {"i1": (4,), "i2": (5,)}, {"i1": (9,), "i2": (10,)}, by="content")
    >>> sorted(c.written), c.rules_written, c.rules_reinserted
    (['b'], 1, 1)
    """
    if by not in ("handle", "content"):
        raise ValueError(f"by must be handle or content, not {by!r}")
    out = Change()
    ports = sorted(set(owner.values()))
    for port in ports:
        chains = [c for c, p in owner.items() if p == port]
        old_h = {h for c in chains for h in handles_before.get(c, ())}
        new_h = [h for c in chains for h in handles_after.get(c, ())]
        fresh = [h for h in new_h if h not in old_h]
        before = [rules_before.get(c) for c in chains]
        after = [rules_after.get(c) for c in chains]
        if all(a is None for a in after) and any(b is not None for b in before):
            out.removed.add(port)
            out.changed.add(port)
            continue
        new_text = sum(_new_rules(b or (), a or ()) for b, a in zip(before, after))
        written = len(fresh) if by == "handle" else new_text
        if written:
            out.written.add(port)
            out.rules_written += written
        if by == "content":
            out.rules_reinserted += len(fresh) - new_text
        if before != after:
            out.changed.add(port)
    return out


def _new_rules(before, after) -> int:
    """Rules of *after* whose text *before* does not have (as many times)."""
    left = Counter(before)
    count = 0
    for rule in after:
        if left[rule]:
            left[rule] -= 1
        else:
            count += 1
    return count


def set_change(name: str, before: dict, after: dict) -> Change:
    """The host's ipset *name*: written (= changed) when its entries differ; rules = entries added/removed."""
    old, new = before.get(name), after.get(name)
    if old == new:
        return Change()
    diff = len((old or frozenset()) ^ (new or frozenset())) if old is not None and new is not None else len(new or old)
    return Change({name}, {name}, set() if new is not None else {name}, diff)


def flows_change(owner_of, before: list[Flow], after: list[Flow], apply_s: float, slack: float = 0.002) -> Change:
    """OVS objects (``owner_of(flow) -> object name or None``) written / changed / removed.

    A flow was (re)written during the apply when its duration after is below
    the apply's wall time (+ *slack* for the 1 ms print resolution); the caller
    waits long enough before applying that untouched flows are older.
    """
    out = Change()
    group = lambda flows: _by_owner(owner_of, flows)  # noqa: E731
    old, new = group(before), group(after)
    for obj in sorted(set(old) | set(new)):
        o, n = old.get(obj, []), new.get(obj, [])
        fresh = [f for f in n if f.duration <= apply_s + slack]
        if not n:
            out.removed.add(obj)
            out.changed.add(obj)
            continue
        if fresh:
            out.written.add(obj)
            out.rules_written += len(fresh)
        if sorted((f.table, f.match, f.actions) for f in o) != sorted((f.table, f.match, f.actions) for f in n):
            out.changed.add(obj)
    return out


def group_flows_change(is_group, before: list[Flow], after: list[Flow]) -> Change:
    """The host's group flows (dimension-1 or subtable): written when their content differs (written by diff)."""
    old = {(f.table, f.match, f.actions) for f in before if is_group(f)}
    new = {(f.table, f.match, f.actions) for f in after if is_group(f)}
    if old == new:
        return Change()
    return Change({"group"}, {"group"}, set() if new else {"group"}, len(old ^ new))


def _by_owner(owner_of, flows) -> dict:
    out: dict = {}
    for f in flows:
        obj = owner_of(f)
        if obj is not None:
            out.setdefault(obj, []).append(f)
    return out


def ovs_owner(ports_by_ofport: dict[int, str], ports_by_mac: dict[str, str], group: str):
    """The flow -> object function for one bridge: a port's filter, the group object, or None (frame)."""
    reg5 = re.compile(r"(?:reg5=0x([0-9a-f]+)|reg5=(\d+)\b)")
    in_port = re.compile(r"\bin_port=(\d+)\b")
    dl_dst = re.compile(r"\bdl_dst=([0-9a-f:]{17})")

    def owner_of(flow: Flow):
        if "nw_src=" in flow.match and ("conjunction(" in flow.actions or flow.table == 83):
            return group
        m = reg5.search(flow.match)
        if m:
            return ports_by_ofport.get(int(m.group(1), 16) if m.group(1) else int(m.group(2)))
        m = in_port.search(flow.match)
        if m:  # classification: table 0 (labtwin's agent) or 60 (Neutron's OVS firewall)
            return ports_by_ofport.get(int(m.group(1)))
        m = dl_dst.search(flow.match)
        if m:
            return ports_by_mac.get(m.group(1))
        return None

    return owner_of


def mentions_address(text: str, ip: str) -> bool:
    """Does a dump (iptables-save, ipset save, dump-flows) still name *ip* (whole address, /32 or not)?

    >>> mentions_address("add NIPv4x 10.64.0.29\\n", "10.64.0.2")
    False
    >>> mentions_address("-s 10.64.0.2/32 -j RETURN", "10.64.0.2")
    True
    """
    return re.search(rf"(?<![\d.]){re.escape(ip)}(?!\d)", text) is not None


def parse_ofports(text: str) -> dict[str, int]:
    """Interface name -> ofport from ``ovs-vsctl --format=csv --columns=name,ofport list Interface``.

    >>> parse_ofports('name,ofport\\nltabct3,3\\n"ltabcx0",1\\n')
    {'ltabct3': 3, 'ltabcx0': 1}
    """
    out = {}
    for line in text.splitlines()[1:]:
        name, _, port = line.partition(",")
        name = name.strip().strip('"')
        if port.strip().lstrip("-").isdigit():
            out[name] = int(port)
    return out
