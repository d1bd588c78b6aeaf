"""control=ovn: Neutron 29's own ML2/OVN driver writes the NB of a run's real OVN, and the twin holds.

What must hold: the issue's command agrees (counts per change and verdicts; time to ready is not
modelled yet); the NB rows are Neutron's (``neutron-<id>`` switch, ``pg_<id>`` port groups with
``neutron:security_group_id``, the drop port group, allow-related ACLs on the group's address set),
written by Neutron and not by labtwin; and nothing outlives the run, after a normal end or a SIGKILL
followed by ``labtwin clean``.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from labtwin import api
from labtwin.emulation.clean import clean
from labtwin.records import Probe

# one allowed address pair per port: ML2/OVN's address set leaves it out (the VIP probes), and the departed
# port's own flows on its chassis grow by its pair's port-security flows (the leave's count)
KNOBS = {"firewall": "ovn", "members": 3, "hosts": 2, "joins": 1, "leaves": 1, "address_pairs": 1}


@pytest.mark.emulation
def test_real_ovn_written_by_neutron_agrees_with_the_model(live, ledger_dir, snapshot, ovn, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # no calibration of OVN here: timing says so
    before = snapshot()
    report, model, run = api.twin("sg-fanout", auto_calibrate=False, **KNOBS)
    assert snapshot() == before
    assert report.agree, report.disagreements.to_string()
    s = run.summary
    assert (s["control"], s["ovn"], s["neutron"]) == ("ovn", ovn, "29.0.0")
    # spread: m-0001, m-0003 on compute-1; m-0002, the outsider and j-0001 on compute-2
    assert s["openflows_written"] == model.summary["openflows_written"] > 0
    seen = {(r.src, r.dst): r.verdict for r in run.records if isinstance(r, Probe)}
    for m in ("m-0001", "m-0002", "m-0003"):
        assert seen[("j-0001", m)] == "allowed" == seen[(m, "j-0001")]
    assert seen[("j-0001", "outsider")] == "blocked" == seen[("outsider", "j-0001")]
    assert seen[("m-0003", "m-0001")] == "blocked" == seen[("m-0003", "m-0002")]  # the departed address
    # from the new port's VIP: its port security lets it out, the members' ACLs on $pg_<id>_ip4 do not let it in
    assert all(seen[("j-0001@10.66.0.4", m)] == "blocked" for m in ("m-0001", "m-0002", "m-0003"))
    timing = report.rows[report.rows.key == "port_ready_s"].iloc[0]
    assert timing.agree is None and "labtwin calibrate sg-fanout --set control=ovn" in timing.tolerance
    assert timing.emulation > 0 and s["timed_joins"] == 7  # the fastest of 7 attempts (leave the group, rejoin)


KILLED = """
import json, sys, time
from labtwin.scenarios.sg_fanout.spec import generated_layout
from labtwin.scenarios.sg_fanout.emulation import rules, ovn_control
from labtwin.scenarios.sg_fanout.emulation.plan import build
from labtwin.emulation.realise import Realisation
layout = generated_layout(2, 2, "spread", 1, 0)
ports = rules.eports(layout)
the_plan, shape = build(layout, ports, "ovn", "k2on", "ovn")
real = Realisation(the_plan)
real._guard()
real.up()
cloud = ovn_control.bring_up(real, shape, layout, ports)
nb = cloud.central.nb_rows(real.runner, ("Logical_Switch", "Port_Group", "ACL"))
print(json.dumps({"nb": nb, "group": cloud.group_id, "network": cloud.network_id}), flush=True)
time.sleep(120)
"""


@pytest.mark.emulation
def test_neutron_writes_the_nb_and_a_sigkill_then_clean_restores(live, ledger_dir, snapshot, ovn):
    before = snapshot()
    managers = subprocess.run(["ovs-vsctl", "get-manager"], capture_output=True, text=True, check=True).stdout
    env = {**os.environ, "LABTWIN_LEDGER_DIR": str(ledger_dir)}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = proc.stdout.readline()
        during = snapshot()
    finally:  # killed and cleaned whatever happens: a failed check must not leave the run behind
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        report = clean(directory=ledger_dir)
    assert line, f"the run did not come up: {proc.stderr.read()[-3000:]}"
    up = json.loads(line)
    assert sum("labtwin.emulation.ovn_server" in p for p in during["procs"]) == 1  # Neutron's server
    assert sum("ovn-controller" in p for p in during["procs"]) == 2 and len(during["ovn_runs"]) == 1
    assert any("Neutron's server" in line for line in report), report  # ledgered (gone with its stdin)
    time.sleep(0.2)
    assert snapshot() == before
    assert subprocess.run(["ovs-vsctl", "get-manager"], capture_output=True, text=True).stdout == managers
    _assert_neutrons_nb(up)


def _assert_neutrons_nb(up: dict) -> None:
    """The rows Neutron's OVN driver writes (ovn_client.py, common/ovn/acl.py): names and external_ids."""
    nb, group = up["nb"], up["group"]
    switches = list(nb["Logical_Switch"].values())
    assert [s["name"] for s in switches] == [f"neutron-{up['network']}"]
    assert "neutron:network_name" in dict(switches[0]["external_ids"][1])
    groups = {g["name"]: g for g in nb["Port_Group"].values()}
    pg = f"pg_{group.replace('-', '_')}"
    assert {"neutron_pg_drop", pg} <= set(groups)
    assert dict(groups[pg]["external_ids"][1])["neutron:security_group_id"] == group
    acls = list(nb["ACL"].values())
    remote = [a for a in acls if f"${pg}_ip4" in a["match"]]
    assert remote and all(a["action"] == "allow-related" and a["direction"] == "to-lport" for a in remote)
    assert any(a["action"] == "drop" and "@neutron_pg_drop" in a["match"] for a in acls)
