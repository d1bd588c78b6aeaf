"""The machine-wide OVS lock (no root): no run changes OVS while another measures; waits end, naming holders."""

import os
import threading
import time

import pytest

from labtwin.emulation.ovs_lock import OvsLock, OvsLockTimeout, holders


def test_a_change_waits_until_the_measuring_run_is_done(tmp_path):
    path = tmp_path / "ovs.lock"
    measuring, other = OvsLock(path), OvsLock(path)
    measuring.change()
    measuring.measure()
    events = []

    def bring_up():
        other.change()
        events.append(("changed", time.monotonic()))
        other.release()

    thread = threading.Thread(target=bring_up)
    thread.start()
    time.sleep(0.2)
    assert events == []  # still measuring: the other run waits
    released = time.monotonic()
    measuring.release()
    thread.join(timeout=5)
    assert events and events[0][1] >= released


def test_measurements_overlap_but_not_with_a_change(tmp_path):
    path = tmp_path / "ovs.lock"
    a, b, c = OvsLock(path), OvsLock(path), OvsLock(path)
    a.change()
    a.measure()
    b.measure(wait_s=1.0)  # a second measuring run gets in at once
    with pytest.raises(OvsLockTimeout) as err:
        c.change(wait_s=0.1)
    assert str(os.getpid()) in str(err.value) and str(path) in str(err.value)
    for lock in (a, b, c):
        lock.release()
    c.change(wait_s=0.1)
    c.release()


def test_holders_names_the_holding_process(tmp_path):
    path = tmp_path / "ovs.lock"
    lock = OvsLock(path)
    lock.change()
    assert holders(path) == [os.getpid()]
    lock.release()
    assert holders(path) == []
