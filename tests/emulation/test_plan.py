"""The plan, the runner, names and the ledger: all without root."""

import ipaddress
import subprocess
import sys

import pytest

from labtwin.description import load_cloud
from labtwin.description.flows import parse_flows
from labtwin.description.schema import Port
from labtwin.emulation import naming
from labtwin.emulation.clean import clean
from labtwin.emulation.ledger import Item, Ledger, read
from labtwin.emulation.plan import PlanError
from labtwin.emulation.realise import Realisation
from labtwin.emulation.runner import Runner, Step
from labtwin.scenarios.reachability.emulation.plan import plan


@pytest.fixture
def cloud(topologies):
    return load_cloud(topologies / "minimal.yaml")


def test_plan_has_a_namespace_per_host_port_and_router(cloud):
    p = plan(cloud, "ab12")
    roles = [n.role for n in p.namespaces]
    assert roles.count("host") == len(cloud.hosts)
    assert roles.count("port") == len([x for x in cloud.ports if x.host and x.ips])
    assert roles.count("router") == len(cloud.routers) + 1  # and the physical network's, with public's gateway
    assert set(p.endpoints) == {x.name for x in cloud.ports}
    assert p.endpoints["vm-d"].ips == (ipaddress.ip_address("10.0.0.50"),)
    assert p.endpoints["vm-a"].mac == cloud.port["vm-a"].mac_address


def test_every_name_fits_fifteen_characters(cloud):
    p = plan(cloud, "zzzz")
    names = [n.node for n in p.namespaces] + [v.a_dev for v in p.veths] + [v.b_dev for v in p.veths]
    names += [b.name for b in p.ovs_bridges] + [o.dev for o in p.ovs_ports]
    names += [name for cfg in p.config.values() for _, name in cfg.creates]
    assert names and all(0 < len(n) <= 15 for n in names)


def test_two_runs_share_no_root_visible_name(cloud):
    def root_names(p):
        return {n.node for n in p.namespaces} | {b.name for b in p.ovs_bridges} | {o.dev for o in p.ovs_ports}

    assert not root_names(plan(cloud, "aaaa")) & root_names(plan(cloud, "aaab"))


def test_vlan_segment_becomes_a_tagged_fabric_port(cloud):
    p = plan(cloud, "ab12")
    # the private VLAN, and the flat public network's own tag (the physical router holds its gateway)
    assert {o.tag for o in p.ovs_ports} == {cloud.segment["private-vlan"].segmentation_id, 4094}
    assert all(b.datapath_type == "netdev" for b in p.ovs_bridges)
    host_devs = {v.a_dev for v in p.veths if v.b == "root" and v.a.startswith("host:")}
    assert host_devs == {"eth1.101"}


def test_hybrid_rules_per_port_chains_and_ipset(cloud):
    p = plan(cloud, "ab12")
    rules = p.config["host:1"].rules  # compute-1: vm-a and vm-d
    tap = naming.tap_name(cloud.port["vm-a"].id)
    assert f"--physdev-out {tap} --physdev-is-bridged" in rules.iptables
    for d in "ios":
        assert f":{naming.chain_name(d, cloud.port['vm-d'].id)} - [0:0]" in rules.iptables
    assert "-A neutron-openvswi-sg-fallback -j DROP" in rules.iptables
    group = naming.ipset_name(cloud.security_group["default"].id, "IPv4")
    assert f"-m set --match-set {group} src -j RETURN" in rules.iptables
    members = {str(ip) for x in cloud.group_members["default"] for ip in x.ips}
    assert {line.split()[-1] for line in rules.ipset.splitlines() if line.startswith("add")} == members
    assert "--dport 22 -j RETURN" in rules.iptables


def test_vxlan_is_refused_with_a_reason(cloud):
    seg = cloud.segment["private-vlan"].model_copy(update={"network_type": "vxlan", "physical_network": None})
    bad = cloud.model_copy(update={"segments": (seg,) + cloud.segments[1:]})
    with pytest.raises(PlanError, match="vxlan"):
        plan(bad, "ab12")


def test_dry_run_records_argv_steps_without_running(cloud, ledger_dir):
    real = Realisation(plan(cloud, "dr01"), dry_run=True, ledger_dir=ledger_dir)
    real.up()
    steps = real.runner.steps
    assert steps and all(isinstance(s.argv, tuple) and all(isinstance(a, str) for a in s.argv) for s in steps)
    assert any(s.argv[-3:] == ("ip", "-batch", "-") for s in steps)
    assert any(s.argv[0] == "ovs-vsctl" and "datapath_type=netdev" in s.argv for s in steps)
    _, items, _ = read(real.ledger.path)
    assert [i.kind for i in items].count("netns") == len(real.plan.namespaces)
    real.down()
    assert not real.ledger.path.exists()


def test_hostile_names_never_reach_a_shell(cloud, ledger_dir, tmp_path):
    """Names are argv elements or absent; ids and MACs are re-parsed before they reach any text."""
    evil = "a;touch " + str(tmp_path / "pwned") + "`id`$(id)\n"
    ports = tuple(Port.model_construct(**{**dict(p), "name": evil + p.name}) for p in cloud.ports)
    hostile = cloud.model_copy(update={"ports": ports})
    real = Realisation(plan(hostile, "ev01"), dry_run=True, ledger_dir=ledger_dir)
    real.up()
    real.down()
    for step in real.runner.steps:
        assert "sh" not in step.argv[:1] and "-c" not in step.argv
        assert not any(evil in a for a in step.argv) and evil not in (step.stdin or "")
    bad_mac = Port.model_construct(**{**dict(cloud.ports[0]), "mac_address": "aa:bb\nlink del eth0"})
    with pytest.raises(PlanError):
        plan(cloud.model_copy(update={"ports": (bad_mac,)}), "ev02")
    bad_id = Port.model_construct(**{**dict(cloud.ports[0]), "id": "x; reboot"})
    with pytest.raises(ValueError):
        plan(cloud.model_copy(update={"ports": (bad_id,)}), "ev03")


def test_runner_passes_argv_without_a_shell(tmp_path):
    target = tmp_path / "pwned"
    result = Runner().run(Step(("ip", "link", "show", "dev", f"$(touch {target});touch {target}"), check=False))
    assert not target.exists()
    assert str(target) in result.stderr  # ip saw the text as one argument: no shell ran it


def test_runner_rejects_a_shell_string():
    with pytest.raises(TypeError):
        Step("ip link show")


def test_ledger_removes_exactly_what_it_lists(ledger_dir):
    marker = "labtwin-test-ledger-process"
    argv = (sys.executable, "-c", "import time; time.sleep(60)", marker)
    other = subprocess.Popen([*argv[:3], marker + "-not-ours"])
    ledger = Ledger("lg01", ledger_dir)
    item = Item("process:sleeper", "process", "sleeper", match=argv)
    ledger.append([item])
    mine = subprocess.Popen(argv)
    ledger.note_pid(item, mine.pid)
    try:
        assert mine.poll() is None
        report = clean(directory=ledger_dir)  # owner (this process) is alive: skipped
        assert "still running" in report[0] and mine.poll() is None
        report = ledger.teardown(Runner())
        # SIGKILLed: gone at once, but a loaded machine (make test asks Neutron in the background) may take seconds
        # to schedule the reaping; the report below says whether the ledger found it
        assert mine.wait(timeout=30) != 0 and other.poll() is None
        assert report == ["removed: process sleeper (root)"] and not ledger.path.exists()
    finally:
        for proc in (other, mine):
            proc.kill()
            proc.wait(timeout=5)


def test_names_are_checked():
    with pytest.raises(naming.NameError_):
        naming.node_name("TOO-LONG-ID", "h", 1)
    with pytest.raises(ValueError):
        naming.tap_name("not-a-uuid")
    assert len(naming.vlan_device("a-very-long-if", 4094)) <= 15
    assert len({naming.new_run_id() for _ in range(50)}) > 40


def test_flows_knob():
    assert [(f.protocol, f.port) for f in parse_flows("icmp,tcp:22,udp:53")] == [
        ("icmp", None),
        ("tcp", 22),
        ("udp", 53),
    ]
    for bad in ("tcp", "icmp:3", "sctp:1", "tcp:0"):
        with pytest.raises(ValueError):
            parse_flows(bad)


def test_doctor_gives_a_reason_for_each_missing_thing(monkeypatch):
    from labtwin.emulation import doctor, programs

    monkeypatch.setattr(programs.shutil, "which", lambda tool: None)
    monkeypatch.setattr(programs.os, "access", lambda path, mode: False)
    monkeypatch.setattr(doctor.os, "geteuid", lambda: 1000)
    ok, reasons = doctor.emulation_possible()
    assert not ok and any("root" in r for r in reasons) and any("apt-get install mininet" in r for r in reasons)
    assert any(r.startswith("nft: missing: apt-get install nftables") for r in reasons)


def test_for_neutrons_agent_ports_get_the_hybrid_plug_and_no_labtwin_filter(cloud):
    """control=neutron: no host carries labtwin's rules (Neutron's agent writes them after the realisation),
    and each VM tap sits on its own qbr, joined to the network's bridge by qvb/qvo, as ML2/OVS plugs it."""
    ours, neutrons = plan(cloud, "ab12"), plan(cloud, "ab12", filters=False)
    assert all(cfg.rules is not None for key, cfg in ours.config.items() if key.startswith("host:"))
    assert all(cfg.rules is None for cfg in neutrons.config.values())
    vm = cloud.port["vm-a"]
    host = next(n.key for n in neutrons.namespaces if n.subject == vm.host)
    batch = "\n".join(neutrons.config[host].ip_batch)
    tap, qbr, qvb, qvo = (naming.prefixed(prefix, vm.id) for prefix in ("tap", "qbr", "qvb", "qvo"))
    assert f"link add {qbr} type bridge" in batch and f"link set {tap} master {qbr}" in batch
    assert f"link set {qvb} master {qbr}" in batch and f"link set {qvo} master brq" in batch
    assert (host, qvb, host, qvo) in [(v.a, v.a_dev, v.b, v.b_dev) for v in neutrons.veths]
    assert f"link set {tap} master {qbr}" not in "\n".join(ours.config[host].ip_batch)
