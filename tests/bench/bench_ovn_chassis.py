"""Real OVN's cost here: chassis bring-up time, memory per chassis and time to first packet, at 2, 6, 12 chassis.

Each size builds the same cloud twice (tests/emulation/ovn_chassis.py: N host namespaces on one underlay
fabric, two VMs on one logical switch on the first and the last chassis). The baseline, in the same run: the
plain namespaces and veths alone (``Realisation.up``). Then OVN on them: the run's central (NB, SB,
northd) and a chassis per host (private OVS, br-phy, br-int, ovn-controller), the VMs' logical ports, and
``ovn-nbctl --wait=hv sync``. Reported: the baseline's bring-up, OVN's bring-up on top, resident memory per
chassis (its ovsdb-server, ovs-vswitchd and ovn-controller, from /proc) and of the central, and the time from
the NB write of the logical switch to the first ICMP reply between the VMs. The feasibility study reached
2.0 s to first packet at 2 chassis and 8.4 s at 12, ~35 MB per chassis (``../shared/reference/real-parts.md``).

Needs root, Open vSwitch and OVN unpacked by ``make setup``; ``SIZES`` env var to change (default 2,6,12).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "emulation"))  # the cloud, shared with the tests

from ovn_chassis import bring_up, chassis_cloud  # noqa: E402

from labtwin import api  # noqa: E402
from labtwin.emulation.ledger import process_table  # noqa: E402
from labtwin.emulation.naming import new_run_id  # noqa: E402
from labtwin.emulation.ovn_install import OvnMissing, ovn_version  # noqa: E402
from labtwin.emulation.realise import Realisation  # noqa: E402

SIZES = tuple(int(s) for s in os.environ.get("SIZES", "2,6,12").split(","))


def skip_reason():
    ok, reasons = api.emulation_possible()
    if not ok:
        return "; ".join(reasons)
    try:
        ovn_version()
    except OvnMissing as exc:
        return str(exc)
    return None


def memory_mb(marker: str) -> tuple[float, float]:
    """(RSS, PSS) of the processes whose argv names *marker* (a chassis's or the central's directory), in MB.

    RSS counts the shared libraries' pages in every process that maps them; PSS divides each shared page
    among the processes sharing it, so it is what one more chassis costs the machine
    (``/proc/<pid>/smaps_rollup``).
    """
    rss_kb = pss_kb = 0
    for pid, argv in process_table().items():
        if any(marker in part for part in argv):
            try:
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            except OSError:
                continue
            fields = {line.split(":")[0]: int(line.split()[1]) for line in rollup.splitlines()[1:] if "kB" in line}
            rss_kb += fields.get("Rss", 0)
            pss_kb += fields.get("Pss", 0)
    return rss_kb / 1024, pss_kb / 1024


def first_reply_s(real, started: float, timeout: float = 60.0) -> float:
    """Seconds from *started* to the first ICMP reply vm0 -> vm1 (echoes every 50 ms)."""
    from labtwin.scenarios.sg_fanout.emulation.poll import echo_request, socket_in_netns

    sock = socket_in_netns(real.pid("vm:0"))
    seq = 0
    try:
        while time.perf_counter() - started < timeout:
            sock.sendto(echo_request(0x4F57, seq), ("10.9.0.2", 0))
            seq += 1
            deadline = time.perf_counter() + 0.05
            while time.perf_counter() < deadline:
                try:
                    data, (src, _) = sock.recvfrom(2048)
                except BlockingIOError:
                    time.sleep(0.002)
                    continue
                if src == "10.9.0.2" and data[20] == 0:
                    return time.perf_counter() - started
        raise RuntimeError(f"no reply from vm1 within {timeout:.0f} s")
    finally:
        sock.close()


def one_size(chassis: int) -> str:
    t0 = time.perf_counter()
    with Realisation(chassis_cloud(new_run_id(), chassis)):
        plain = time.perf_counter() - t0
    t0 = time.perf_counter()
    with Realisation(chassis_cloud(new_run_id(), chassis)) as real:
        netns = time.perf_counter() - t0
        started = time.perf_counter()
        central = bring_up(real, chassis)
        ovn = time.perf_counter() - started
        first = first_reply_s(real, started)
        per_chassis = [memory_mb(f"/run/labtwin/ovs/{real.plan.ns(f'host:{c}').node}") for c in range(chassis)]
        central_rss, central_pss = memory_mb(central.rundir)
    rss = sum(r for r, _ in per_chassis) / len(per_chassis)
    pss = sum(p for _, p in per_chassis) / len(per_chassis)
    return (
        f"{chassis:>8} | {plain:>10.2f} | {netns:>10.2f} {ovn:>10.2f} {first:>14.2f} | "
        f"{rss:>9.1f} {pss:>9.1f} | {central_rss:>8.1f} {central_pss:>8.1f}"
    )


def main() -> None:
    print(f"OVN {ovn_version()}")
    print(
        f"{'chassis':>8} | {'plain s':>10} | {'netns s':>10} {'+ OVN s':>10} {'first pkt s':>14} | "
        f"{'chassis MB':>9} {'(PSS)':>9} | {'central':>8} {'(PSS)':>8}"
    )
    for chassis in SIZES:
        print(one_size(chassis), flush=True)
    print(
        "plain: the namespaces and veths alone (baseline); + OVN: central, chassis, ports, --wait=hv sync; "
        "first pkt: from the start of OVN's bring-up to vm0's first echo reply from vm1; MB: resident memory "
        "(RSS), and PSS, shared library pages divided among the processes sharing them (what one more chassis costs)"
    )


if __name__ == "__main__":
    main()
