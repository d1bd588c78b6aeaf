"""The dvr routers as labtwin's own emulation builds them beside Neutron 29's own L3 agents: what differs (issue 15).

Two real bring-ups of one topology on this machine, ``control=labtwin`` (:mod:`.emulation.labtwin_agent`) and
``control=neutron`` (:mod:`.emulation.neutron_l3`: Neutron's ``L3NATAgentWithStateReport`` per host and agent
mode), each read back from the kernel namespace by namespace: devices (``ip -o link``), addresses (``ip -o
addr``), routes of every table (``ip -4``/``ip -6 route show table all``), policy rules (``ip -4``/``ip -6
rule``) and the ``-A`` rules of every IPv4 iptables table (``iptables-save``). Both runs plan the same namespace keys
(``qrouter:<host>``, ``snat``, ``fip:<host>``), so namespaces are matched by role and host; Neutron's private
prefix (``lt<rid>l<n>qrouter-``, :func:`~.emulation.neutron_l3.agent_prefix`) and labtwin's holder names never
enter the comparison. Devices are named from the topology's port ids on both sides, so they match by name.

What is compared is the state after bring-up, without probes; which differences change a probe's path is the
twin's question (the live tests, ``tests/scenarios/dvr/test_neutron_l3*.py``): this is the state behind it.
Normalisations, stated: the ``local`` routing table is left out (the kernel derives it from the addresses,
compared themselves) and so are IPv6 link-local addresses (the kernel derives them from the MACs, compared
themselves).

The two runs take ~21 s here on topologies/dvr.yaml (quiet machine: labtwin's bring-up 2.0 s and teardown
2.8 s, Neutron's four agents' 13.8 s and their teardown), so a comparison is cached under *cache*, keyed by the
topology's bytes and the code that made it (:func:`code_version`): a second
notebook run on the same code reuses it, a code change makes it anew. Where this machine cannot emulate (no root,
no Open vSwitch), and nothing is cached, the comparison says so and shows no table.
"""

from __future__ import annotations

import fcntl
import hashlib
import html
import json
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any, Union

import pandas as pd

from labtwin.description import load_cloud

#: What is read in each namespace, per aspect: each address family's routes and policy rules apart (an IPv4 and
#: an IPv6 default route are two facts, not one).
READS = {
    "devices": ("ip", "-o", "link", "show"),
    "addresses": ("ip", "-o", "addr", "show"),
    "routes": ("ip", "-4", "route", "show", "table", "all"),
    "rules": ("ip", "-4", "rule", "show"),
    "routes6": ("ip", "-6", "route", "show", "table", "all"),
    "rules6": ("ip", "-6", "rule", "show"),
    "iptables": ("iptables-save",),
}
ASPECTS = tuple(READS)
ONLY_LABTWIN, ONLY_NEUTRON, DIFFER = "only labtwin", "only Neutron", "both, differ"
#: The machine-wide lock live tests hold (tests/conftest.py): a notebook's runs never overlap a live test's
#: before/after snapshots.
LIVE_LOCK = Path("/run/labtwin/live-tests.lock")
#: Devices whose MAC neither build sets (``ip link add ... type veth``: the kernel picks one at random).
RANDOM_MACS = ("rfp-", "fpr-")
#: iptables tables listed chain by chain; the others (filter, mangle, raw: Neutron's address-scope marks,
#: metadata mark, filter-top jumps, none of which labtwin writes) one item per table.
BY_CHAIN = ("nat",)
#: ``ip route`` types that come before the destination.
_ROUTE_TYPES = {"unicast", "local", "broadcast", "multicast", "throw", "unreachable", "prohibit", "blackhole", "nat"}

#: One namespace's state: aspect -> item -> its facts.
State = dict[str, dict[str, frozenset[str]]]


# -- parsing what the kernel said (pure) --------------------------------------------------------------------
def parse_devices(lines: list[str]) -> dict[str, frozenset[str]]:
    """``ip -o link show`` -> device name -> {``mtu``, ``mac``, up or down}; the veth peer suffix dropped, and the
    MAC of the rfp-/fpr- pair (the kernel's random one on both sides: neither sets it).

    >>> line = "5: qr-1@if6: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc noqueue state UP mode DEFAULT "
    >>> sorted(parse_devices([line + "group default qlen 1000\\\\    link/ether fa:16:3e:00:00:01 brd ff:ff"])["qr-1"])
    ['mac fa:16:3e:00:00:01', 'mtu 1450', 'up']
    """
    out = {}
    for line in lines:
        _, name, rest = line.split(":", 2) if line.count(":") >= 2 else (line, line, "")
        words = rest.replace("\\", " ").split()
        facts = {f"mtu {words[words.index('mtu') + 1]}"} if "mtu" in words else set()
        dev = name.strip().split("@")[0]
        if "link/ether" in words and not dev.startswith(RANDOM_MACS):
            facts.add(f"mac {words[words.index('link/ether') + 1]}")
        flags = words[0].strip("<>").split(",") if words else []
        facts.add("up" if "UP" in flags else "down")
        out[dev] = frozenset(facts)
    return out


def parse_addresses(lines: list[str]) -> dict[str, frozenset[str]]:
    """``ip -o addr show`` -> device -> {``inet a.b.c.d/nn``, ...}; IPv6 link-local (``fe80::``) left out.

    >>> parse_addresses(["1: lo    inet 127.0.0.1/8 scope host lo\\\\       valid_lft forever",
    ...                  "2: qr-1    inet6 fe80::1/64 scope link \\\\       valid_lft forever"])
    {'lo': frozenset({'inet 127.0.0.1/8'})}
    """
    out: dict[str, set[str]] = {}
    for line in lines:
        words = line.split()
        family, address = words[2], words[3]
        if family == "inet6" and address.lower().startswith("fe80:"):
            continue
        out.setdefault(words[1].split("@")[0], set()).add(f"{family} {address}")
    return {dev: frozenset(facts) for dev, facts in out.items()}


def parse_routes(lines: list[str]) -> dict[str, frozenset[str]]:
    """``ip -4 route show table all`` -> ``table <t> <destination>`` -> the routes there (``table <t>`` taken out
    of each); the ``local`` table left out (derived from the addresses).

    >>> parse_routes(["default via 10.10.0.5 dev qr-1 table 16 proto static",
    ...               "local 10.10.0.1 dev qr-1 table local proto kernel scope host src 10.10.0.1"])
    {'table 16 default': frozenset({'default via 10.10.0.5 dev qr-1 proto static'})}
    """
    out: dict[str, set[str]] = {}
    for line in lines:
        words = line.split()
        table = "main"
        if "table" in words:
            i = words.index("table")
            table = words[i + 1]
            del words[i : i + 2]
        if table == "local":
            continue
        dst = " ".join(words[:2]) if words[0] in _ROUTE_TYPES else words[0]
        out.setdefault(f"table {table} {dst}", set()).add(" ".join(words))
    return {key: frozenset(routes) for key, routes in out.items()}


def parse_rules(lines: list[str]) -> dict[str, frozenset[str]]:
    """``ip -4 rule show`` -> selector -> {``<priority>: <action>``}: a rule keeps its selector across the two
    builds, its priority and table may differ.

    >>> parse_rules(["0:\\tfrom all lookup local", "57481:\\tfrom 10.10.0.5 lookup 16"])["from 10.10.0.5"]
    frozenset({'57481: lookup 16'})
    """
    out: dict[str, set[str]] = {}
    for line in lines:
        priority, rest = line.split(":", 1)
        words = rest.split()
        cut = next((i for i, w in enumerate(words) if w in ("lookup", "goto", "nop", "unreachable", "blackhole")), None)
        cut = len(words) if cut is None else cut
        out.setdefault(" ".join(words[:cut]), set()).add(f"{priority.strip()}: {' '.join(words[cut:])}")
    return {key: frozenset(rules) for key, rules in out.items()}


def parse_iptables(lines: list[str]) -> dict[str, frozenset[str]]:
    """``iptables-save`` -> ``<table> <chain>`` -> its ``-A`` rules for the nat table, ``<table>`` -> its ``-A``
    rules for the others (a chain or table with no rule is not listed).

    >>> sorted(parse_iptables(["*nat", ":PREROUTING ACCEPT [0:0]", "-A PREROUTING -j neutron-l3-agent-PREROUTING",
    ...                        "*raw", "-A OUTPUT -j neutron-l3-agent-OUTPUT"]))
    ['nat PREROUTING', 'raw']
    """
    out: dict[str, set[str]] = {}
    table = ""
    for line in lines:
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith("-A "):
            out.setdefault(f"{table} {line.split()[1]}" if table in BY_CHAIN else table, set()).add(line)
    return {key: frozenset(rules) for key, rules in out.items()}


PARSERS = {
    "devices": parse_devices,
    "addresses": parse_addresses,
    "routes": parse_routes,
    "rules": parse_rules,
    "routes6": parse_routes,
    "rules6": parse_rules,
    "iptables": parse_iptables,
}


def state_of(raw: dict[str, list[str]]) -> State:
    """One namespace's read-back (aspect -> lines) parsed, aspect by aspect."""
    return {aspect: PARSERS[aspect](raw[aspect]) for aspect in ASPECTS}


# -- comparing (pure) -----------------------------------------------------------------------------------------
def role(key: str, network_node: str) -> tuple[str, str]:
    """A plan namespace key as (host, Neutron's namespace kind): ``qrouter:compute-1`` -> (compute-1, qrouter-).

    >>> role("snat", "network-1"), role("fip:compute-2", "network-1")
    (('network-1', 'snat-'), ('compute-2', 'fip-'))
    """
    kind, _, host = key.partition(":")
    return host or network_node, f"{kind}-"


def differences(labtwin: dict[str, State], neutron: dict[str, State], network_node: str) -> pd.DataFrame:
    """One row per difference between the two builds, namespace by namespace (keyed by role): a namespace only one
    built (with how much it holds), an item only one has, or an item both have with different facts (each side's
    own facts shown). Columns: host, namespace, aspect, item, status, labtwin, Neutron."""
    rows = []
    for key in sorted({*labtwin, *neutron}, key=lambda k: (role(k, network_node), k)):
        host, kind = role(key, network_node)
        mine, theirs = labtwin.get(key), neutron.get(key)
        if mine is None or theirs is None:
            built = mine if theirs is None else theirs
            assert built is not None
            held = ", ".join(f"{len(built[a])} {a}" for a in ASPECTS)
            status = ONLY_LABTWIN if theirs is None else ONLY_NEUTRON
            rows.append(
                (host, kind, "namespace", kind, status, held if theirs is None else "", held if mine is None else "")
            )
            continue
        for aspect in ASPECTS:
            left, right = mine[aspect], theirs[aspect]
            for item in sorted({*left, *right}):
                a, b = left.get(item), right.get(item)
                if a == b:
                    continue
                status = ONLY_NEUTRON if a is None else ONLY_LABTWIN if b is None else DIFFER
                a_only = sorted(a - (b or frozenset())) if a is not None else []
                b_only = sorted(b - (a or frozenset())) if b is not None else []
                rows.append((host, kind, aspect, item, status, "\n".join(a_only), "\n".join(b_only)))
    return pd.DataFrame(rows, columns=["host", "namespace", "aspect", "item", "status", "labtwin", "Neutron"])


def condensed(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`differences` with each difference seen alike on several hosts written once, its hosts joined."""
    keys = ["namespace", "aspect", "item", "status", "labtwin", "Neutron"]
    order = {k: i for i, k in enumerate(dict.fromkeys(zip(*(table[k] for k in keys))))}
    out = table.groupby(keys, sort=False, as_index=False).agg(host=("host", ", ".join))
    out = out.assign(first=[order[k] for k in zip(*(out[k] for k in keys))]).sort_values("first")
    return out[["host", *keys]].reset_index(drop=True)


def agreement(labtwin: dict[str, State], neutron: dict[str, State], table: pd.DataFrame) -> pd.DataFrame:
    """Per aspect: items both builds hold alike (in namespaces both built), and the differences by status."""
    same = {aspect: 0 for aspect in ("namespace", *ASPECTS)}
    for key in set(labtwin) & set(neutron):
        same["namespace"] += 1
        for aspect in ASPECTS:
            left, right = labtwin[key][aspect], neutron[key][aspect]
            same[aspect] += sum(left[item] == right.get(item) for item in left)
    counts = table.groupby(["aspect", "status"]).size().unstack(fill_value=0)
    out = pd.DataFrame({"alike": pd.Series(same)}).join(counts, how="left").fillna(0).astype(int)
    for status in (ONLY_LABTWIN, ONLY_NEUTRON, DIFFER):
        if status not in out:
            out[status] = 0
    return out[["alike", ONLY_LABTWIN, ONLY_NEUTRON, DIFFER]]


# -- the two bring-ups (root + Open vSwitch) ------------------------------------------------------------------
def read_namespace(real, key: str) -> dict[str, list[str]]:
    """What the kernel holds in plan namespace *key*, per aspect: the raw lines of :data:`READS`."""
    from labtwin.emulation.runner import Step

    out = {}
    for aspect, argv in READS.items():
        done = real.runner.run(Step(real.exec_argv(key, list(argv)), what=f"read {aspect} of {key}"))
        out[aspect] = [line.rstrip() for line in done.stdout.splitlines() if line.strip()]
    return out


def _router_keys(dp) -> list[str]:
    """The plan's L3 namespaces: ``qrouter:<host>``, ``snat``, ``fip:<host>`` (not qdhcp-, VMs, the outside)."""
    return [n.key for n in dp.plan.namespaces if n.key == "snat" or n.key.startswith(("qrouter:", "fip:"))]


def bring_up(cloud, control: str) -> tuple[dict[str, dict[str, list[str]]], float]:
    """Build *cloud*'s router under *control* (``labtwin`` or ``neutron``), read every L3 namespace back, tear
    down: (plan key -> aspect -> lines, bring-up seconds). The same steps as :func:`.emulation.emulate` up to its
    probes."""
    from labtwin.emulation.naming import new_run_id
    from labtwin.emulation.realise import Realisation

    from .emulation import _flows
    from .knobs import DvrDesign

    design = DvrDesign.of({"control": control})
    t0 = time.perf_counter()
    if control == "neutron":
        from .emulation.neutron_l3 import plan_neutron
        from .emulation.neutron_l3_run import build_routers

        dp, agents = plan_neutron(cloud, design, new_run_id())
    else:
        from .emulation.labtwin_agent.routing import plan_dvr

        dp, agents = plan_dvr(cloud, design, new_run_id()), []
    with Realisation(dp.plan) as real:
        _flows(dp, real)  # the bridges' flows and the IPv6 policy rules (``ip -6 rule`` is not sayable in a batch)
        if agents:
            build_routers(real, dp, agents)
        took = time.perf_counter() - t0
        return {key: read_namespace(real, key) for key in _router_keys(dp)}, took


# -- the notebook's answer --------------------------------------------------------------------------------------
@dataclass
class ControlComparison:
    """labtwin's build beside Neutron's, on *topology*: the differences (:func:`differences`), the per-aspect
    counts (:func:`agreement`), or why there is none (:attr:`unavailable`). Renders itself in a notebook."""

    topology: str
    why_topology: str = ""
    unavailable: str = ""
    raw: dict[str, Any] = field(default_factory=dict)
    cached: bool = False

    def states(self, control: str) -> dict[str, State]:
        return {key: state_of(lines) for key, lines in self.raw[control].items()}

    @property
    def network_node(self) -> str:
        return str(self.raw["network_node"])

    @property
    def table(self) -> pd.DataFrame:
        return differences(self.states("labtwin"), self.states("neutron"), self.network_node)

    @property
    def counts(self) -> pd.DataFrame:
        return agreement(self.states("labtwin"), self.states("neutron"), self.table)

    def _repr_html_(self) -> str:
        head = f"<p><b>Topology</b>: <code>{html.escape(self.topology)}</code>"
        head += f" ({html.escape(self.why_topology)})</p>" if self.why_topology else "</p>"
        if self.unavailable:
            return head + f"<p><b>Not compared</b>: {html.escape(self.unavailable)}. No table is shown.</p>"
        seconds = self.raw["seconds"]
        head += (
            f"<p>Bring-up: labtwin {seconds['labtwin']:.1f} s, Neutron's agents {seconds['neutron']:.1f} s"
            + (" (cached: this code and topology were compared before)" if self.cached else "")
            + ".</p>"
        )
        return head + _html(self.counts.reset_index(names="aspect")) + _html(condensed(self.table))


def _html(frame: pd.DataFrame) -> str:
    """*frame* as an HTML table that wraps inside a notebook's 848-px output area (inline styles: a stored
    notebook's output keeps them): short columns on one line, the rest wrapped anywhere, lines kept."""
    base = "text-align:left;vertical-align:top;font-size:11px;padding:1px 4px"
    short = {"namespace", "aspect", "status", "alike", ONLY_LABTWIN, ONLY_NEUTRON, DIFFER}

    def style(column) -> str:
        wrap = "white-space:nowrap" if column in short else "white-space:pre-wrap;overflow-wrap:anywhere"
        return f"style='{base};{wrap}'"

    styles = [style(c) for c in frame.columns]
    rows = ["<tr>" + "".join(f"<th {st}>{html.escape(str(c))}</th>" for c, st in zip(frame.columns, styles)) + "</tr>"]
    for values in frame.itertuples(index=False):
        rows.append("<tr>" + "".join(f"<td {st}>{html.escape(str(v))}</td>" for v, st in zip(values, styles)) + "</tr>")
    return f"<table style='table-layout:auto;width:100%;max-width:848px'>{''.join(rows)}</table>"


#: The packages whose code decides what a bring-up builds (relative to ``labtwin/``).
BUILDERS = ("description", "emulation", "scenarios/dvr")


def code_version() -> str:
    """A digest of the code that made a comparison: every source file of :data:`BUILDERS` and Neutron's version."""
    digest = hashlib.sha256(version("neutron").encode())
    root = Path(__file__).resolve().parents[2]
    for path in sorted(p for folder in BUILDERS for p in (root / folder).rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


#: The smallest DVR cloud both control planes build (the live DVR test's: one network node, two compute nodes).
FALLBACK = "tests/scenarios/dvr/neutron-l3-dvr.yaml"
#: Where comparisons are kept: the repository's ``out/`` (git-ignored).
CACHE = "out/dvr-controls"


def compare_controls(topology, fallback: str = FALLBACK, cache: Union[str, Path] = CACHE) -> ControlComparison:
    """labtwin's own routers beside Neutron's L3 agents' on *topology*, or on *fallback* when either control plane
    refuses *topology* (the refusal is said). Kept under *cache* by topology and code (:func:`code_version`).

    *fallback* and *cache* are taken from the repository *topology* is in (the parent of its folder, links
    resolved): a copy of ``notebooks/`` with ``topologies/`` linked beside it, as the browser tests run it,
    shares the repository's comparison and fallback."""
    from labtwin.api import emulation_possible

    from .emulation.emulable import NotEmulated, check_emulable
    from .knobs import DvrDesign

    repo = Path(topology).resolve().parents[1]
    path, shown, why = Path(topology), str(topology), ""
    cloud = load_cloud(path)
    try:
        for control in ("labtwin", "neutron"):
            check_emulable(cloud, DvrDesign.of({"control": control}))
    except NotEmulated as exc:
        why = f"{shown} is not built by control={control}: {exc}"
        path, shown = repo / fallback, fallback
        if not path.is_file():
            return ControlComparison(shown, why, unavailable=f"the fallback topology {fallback} is not in {repo}")
        cloud = load_cloud(path)
    key = hashlib.sha256(path.read_bytes() + code_version().encode()).hexdigest()[:16]
    stored = repo / cache / f"dvr-controls-{key}.json"
    if stored.is_file():
        return ControlComparison(shown, why, raw=json.loads(stored.read_text()), cached=True)
    ok, reasons = emulation_possible()
    if not ok:
        return ControlComparison(shown, why, unavailable="this machine cannot emulate: " + "; ".join(reasons))
    LIVE_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(LIVE_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        mine, mine_s = bring_up(cloud, "labtwin")
        theirs, theirs_s = bring_up(cloud, "neutron")
    raw = {
        "labtwin": mine,
        "neutron": theirs,
        "seconds": {"labtwin": round(mine_s, 2), "neutron": round(theirs_s, 2)},
        "network_node": _network_node(cloud),
    }
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.with_suffix(".tmp").write_text(json.dumps(raw, indent=1, sort_keys=True))
    stored.with_suffix(".tmp").replace(stored)  # whole or absent: another notebook run may read it
    return ControlComparison(shown, why, raw=raw)


def _network_node(cloud) -> str:
    from .emulation import layout as L
    from .knobs import DvrDesign

    return L.layout(cloud, DvrDesign.of({})).network_node
