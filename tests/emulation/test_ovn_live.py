"""Real OVN in the emulation (issue 13, first step): a run's own OVN central and two chassis, each a host
namespace with its private OVS and ovn-controller, pass a packet between two VMs over Geneve; the run leaves
the machine as it found it, after a normal end and after a SIGKILL followed by `labtwin clean`."""

import os
import select
import signal
import subprocess
import sys
import time

import pytest
from ovn_chassis import bring_up, chassis_cloud, chassis_ovs  # beside this file (pytest puts its folder on sys.path)

from labtwin.emulation.naming import new_run_id
from labtwin.emulation.ovn_install import OvnMissing, ovn_version
from labtwin.emulation.realise import Realisation
from labtwin.emulation.runner import Step

KILLED = """
import sys, time
sys.path.insert(0, sys.argv[1])
from ovn_chassis import bring_up, chassis_cloud
from labtwin.emulation.realise import Realisation
real = Realisation(chassis_cloud("k3ov"))
real._guard()
real.up()
bring_up(real)
print("up", flush=True)
time.sleep(120)
"""


def need_ovn():
    try:
        return ovn_version()
    except OvnMissing as exc:
        pytest.skip(str(exc))


def ping(pid: int, dst: str, tries: int = 20) -> bool:
    """An ICMP echo from the namespace of *pid* to *dst*, answered within *tries* half-seconds."""
    from labtwin.scenarios.sg_fanout.emulation.poll import echo_request, socket_in_netns

    sock = socket_in_netns(pid)
    try:
        for seq in range(tries):
            sock.sendto(echo_request(0x4F56, seq), (dst, 0))
            deadline = time.monotonic() + 0.5
            while (left := deadline - time.monotonic()) > 0:
                if select.select([sock], [], [], left)[0]:
                    data, (src, _) = sock.recvfrom(2048)
                    if src == dst and data[20] == 0:  # echo reply
                        return True
        return False
    finally:
        sock.close()


@pytest.mark.emulation
def test_two_ovn_chassis_pass_a_packet_over_geneve_and_leave_nothing(live, ledger_dir, snapshot):
    assert need_ovn().startswith("23.03")
    before = snapshot()
    with Realisation(chassis_cloud(new_run_id())) as real:
        central = bring_up(real)
        chassis = real.runner.run(Step(central.sbctl("--bare", "--columns=name", "list", "Chassis"), what="chassis"))
        chassis = chassis.stdout.split()
        assert len(chassis) == 2
        for i in range(2):  # each chassis has its Geneve tunnel port to the other, made by its ovn-controller
            ovs = chassis_ovs(real, i)
            tunnels = real.runner.run(
                Step(ovs.vsctl("--bare", "--columns=name", "find", "Interface", "type=geneve"), what="tunnels")
            ).stdout.split()
            assert len(tunnels) == 1, tunnels
        assert ping(real.pid("vm:0"), "10.9.0.2") and ping(real.pid("vm:1"), "10.9.0.1")
    assert snapshot() == before


@pytest.mark.emulation
def test_sigkill_with_ovn_running_then_clean_restores(live, ledger_dir, snapshot):
    need_ovn()
    from labtwin.emulation.clean import clean

    before = snapshot()
    env = {**os.environ, "LABTWIN_LEDGER_DIR": str(ledger_dir)}
    here = os.path.dirname(__file__)
    proc = subprocess.Popen([sys.executable, "-c", KILLED, here], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "up"
        during = snapshot()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    ours = [p for p in during["procs"] if "/run/labtwin/ov" in p]
    assert sum("ovn-northd" in p for p in ours) == 1 and sum("ovn-controller" in p for p in ours) == 2
    assert len(during["ovn_runs"]) == 1 and len(during["private_ovs"]) == 2
    clean(directory=ledger_dir)
    time.sleep(0.2)
    assert snapshot() == before
