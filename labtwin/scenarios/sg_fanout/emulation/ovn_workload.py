"""The sg-fanout workload under ``control=ovn``: joins and leaves through Neutron's API, counted in OVN.

The steps are the other controls' (:mod:`labtwin.scenarios.sg_fanout.emulation`): per join, read,
start the clock at the API call, poll the new port against a member on every host until both ways
answer, read again once every chassis has caught up, count, then probe with scapy; per leave the
same without the poller, then the departed address probed against the members. What differs is
who acts: one API call to Neutron's server, which writes the NB; ovn-northd and each chassis's
ovn-controller do the rest (:mod:`.ovn_control` says what is counted and how).
"""

from __future__ import annotations

import math
import statistics
import time
from importlib import metadata
from typing import Optional

from labtwin.emulation.ovn_install import ovn_version
from labtwin.emulation.realise import Realisation
from labtwin.records import Recorder, percentile

from ..spec import Layout, layout_summary
from . import ovn_control
from .ovn_control import OvnCloud
from .plan import Shape
from .poll import first_allowed, poll_pairs, sentinels
from .rules import EPort
from .verdicts import probe_join, probe_left
from .workload import Workload, keep_fastest, ready_after, record_ready

#: The summary's OVN counts (each the sum over the run's joins and leaves).
COUNTS = ("nb_rows_written", "sb_rows_written", "lflows_written", "openflows_written")


def emulate(
    real: Realisation,
    shape: Shape,
    layout: Layout,
    ports: dict[str, EPort],
    rec: Recorder,
    t0: float,
    ready_timeout: float,
    verdicts: bool,
    timing_repeats: int = 1,
) -> dict:
    """Bring the run's OVN up, run the joins and leaves; the summary (see :mod:`.ovn_control`). Each join is
    timed *timing_repeats* times (the port leaves the group and joins again) and its fastest kept, as under
    the agents; counts, records and probes come from the first."""
    cloud = ovn_control.bring_up(real, shape, layout, ports)
    rec.operation("bringup", "", 0.0, time.perf_counter() - t0, count=len(real.plan.namespaces))
    work = Workload(real, shape, layout, {}, ports, t0, ready_timeout)
    totals: dict = {}
    ready = []
    present = [ports[m.name] for m in layout.members]
    for join in layout.joins:
        new = ports[join.name]
        attempts = [_join(work, cloud, new, present, rec, totals, verdicts)]
        attempts += [_rejoin(work, cloud, new, present) for _ in range(timing_repeats - 1)]
        api_s = [round(took, 6) for _, took in attempts]
        ready.append(keep_fastest(rec, [r for r, _ in attempts], api_s=api_s))
        present.append(new)
    for name in layout.leaves:
        present = [p for p in present if p.name != name]
        _leave(work, cloud, ports[name], present, rec, totals, verdicts)
    cloud.neutron.stop()
    return _summary(layout, totals, ready, timing_repeats)


def _join(
    w: Workload, cloud: OvnCloud, new: EPort, members: list, rec: Recorder, totals: dict, verdicts: bool
) -> tuple[float, float]:
    """The port gains the group (``PUT /ports/<id>``), end to end; its time to ready (inf: never) and how
    long the API call took (as the server timed it)."""
    before = ovn_control.read_state(w.real, cloud)
    pairs = poll_pairs(w, new, members)
    t_api = time.perf_counter()
    rec.event(t_api - w.t0, "api_call", "neutron-server", new.name, op="update_port", security_groups="+group")
    body = {"port": {"security_groups": [cloud.group_id]}}
    cloud.neutron.put(f"/ports/{cloud.port_id[new.name]}", body)
    took = _api_span(rec, w, cloud, new.name)
    first, ready_at = first_allowed(pairs, t_api, timeout=w.ready_timeout, sentinels=sentinels(new, members))
    _count(w, cloud, before, new.name, rec, totals)
    ready = ready_after(ready_at)
    if verdicts:
        probe_join(w, new, members, first, rec, t_api - w.t0)
    record_ready(rec, w, new, t_api, ready)
    return ready, took


def _rejoin(w: Workload, cloud: OvnCloud, new: EPort, members: list) -> tuple[float, float]:
    """The port leaves the group (``PUT`` with no group; every chassis caught up) and joins again, timed as the
    join was; a measurement only (no counts, records or probes): see ``timing_repeats``. Returns the time to
    ready and how long the API call took (as the server timed it)."""
    port = f"/ports/{cloud.port_id[new.name]}"
    cloud.neutron.put(port, {"port": {"security_groups": []}})
    ovn_control.synced(w.real, cloud)
    pairs = poll_pairs(w, new, members)
    t_api = time.perf_counter()
    cloud.neutron.put(port, {"port": {"security_groups": [cloud.group_id]}})
    took = cloud.neutron.last["took"]
    _, ready_at = first_allowed(pairs, t_api, timeout=w.ready_timeout, sentinels=sentinels(new, members))
    ovn_control.synced(w.real, cloud)
    return ready_after(ready_at), took


def _leave(
    w: Workload, cloud: OvnCloud, gone: EPort, remaining: list, rec: Recorder, totals: dict, verdicts: bool
) -> None:
    """The port is deleted (``DELETE /ports/<id>``) and unplugged, as Nova does when its VM goes."""
    before = ovn_control.read_state(w.real, cloud)
    t_api = time.perf_counter()
    rec.event(t_api - w.t0, "api_call", "neutron-server", gone.name, op="delete_port", host_id=gone.host)
    cloud.neutron.delete(f"/ports/{cloud.port_id[gone.name]}")
    _api_span(rec, w, cloud, gone.name)
    ovn_control.unplug(w.real, cloud, gone)
    _count(w, cloud, before, gone.name, rec, totals)
    done = time.perf_counter() - t_api
    if verdicts:
        probe_left(w, gone, remaining, rec, t_api - w.t0 + done)
    rec.event(t_api - w.t0 + done, "leave_applied", gone.host, gone.name, latency_s=done)


def _api_span(rec: Recorder, w: Workload, cloud: OvnCloud, subject: str) -> float:
    """The API call just made, as Neutron's server timed it (its NB transaction included), recorded; its
    duration."""
    answer = cloud.neutron.last
    rec.operation("api_request", "neutron-server", answer["start"] - w.t0, answer["took"], subject=subject)
    return float(answer["took"])


def _count(w: Workload, cloud: OvnCloud, before, subject: str, rec: Recorder, totals: dict) -> None:
    """Once every chassis has caught up: what the change wrote, added to *totals* and recorded."""
    ovn_control.synced(w.real, cloud)
    changed = ovn_control.changes(before, ovn_control.read_state(w.real, cloud))
    for key in COUNTS:
        totals[key] = totals.get(key, 0) + changed[key]
    for host, n in changed["openflows_by_chassis"].items():
        by = totals.setdefault("openflows_by_chassis", {})
        by[host] = by.get(host, 0) + n
    at = time.perf_counter() - w.t0
    rec.operation(
        "ovn_diff",
        "central",
        at,
        0.0,
        changed["nb_rows_written"] + changed["sb_rows_written"],
        subject,
        **{k: changed[k] for k in COUNTS},
        nb_tables=changed["nb_tables"],
        sb_tables=changed["sb_tables"],
        openflows_by_chassis=changed["openflows_by_chassis"],
    )


def _summary(layout: Layout, totals: dict, ready: list, timing_repeats: int) -> dict:
    finite = sorted(r for r in ready if math.isfinite(r))
    return {
        "firewall": "ovn",
        "profile": "emulation",
        **layout_summary(layout),
        **{key: totals.get(key, 0) for key in COUNTS},
        "openflows_by_chassis": totals.get("openflows_by_chassis", {}),
        "port_ready_s": _r(statistics.median(finite)) if finite else None,
        "port_ready_p95_s": _r(percentile(finite, 95)) if finite else None,
        "port_ready_max_s": _r(finite[-1]) if finite else None,
        "timed_joins": timing_repeats,
        "note": layout.note,
        "ovn": ovn_version(),
        "neutron": metadata.version("neutron"),
    }


def _r(value: float) -> Optional[float]:
    return round(value, 6) if math.isfinite(value) else None
