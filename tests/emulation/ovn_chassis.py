"""N OVN chassis, two VMs on one logical switch (on the first and the last chassis): the cloud real OVN runs
in the live tests (test_ovn_live.py, also in a killed child process) and in the chassis bench."""

from labtwin.emulation.ledger import ROOT
from labtwin.emulation.naming import node_name
from labtwin.emulation.ovn_run import INTEGRATION_BRIDGE, start_central, start_chassis
from labtwin.emulation.plan import OvsBridge, OvsPort, Plan, Veth
from labtwin.emulation.private_ovs import PrivateOvs, start_private_ovs
from labtwin.emulation.runner import Step

VMS = (("fa:16:3e:00:00:01", "10.9.0.1"), ("fa:16:3e:00:00:02", "10.9.0.2"))


def chassis_cloud(run_id: str, chassis: int = 2) -> Plan:
    """*chassis* host namespaces on one underlay fabric; vm0 on the first, vm1 on the last."""
    plan = Plan(run_id)
    fabric = node_name(run_id, "b", 0)
    plan.ovs_bridges.append(OvsBridge(fabric, "fabric"))
    for c in range(chassis):
        host = plan.add_ns(f"host:{c}", "host", f"chassis-{c}")
        host.ip_batch.append("link set lo up")
        plan.veths.append(Veth(f"host:{c}", "eth1", ROOT, node_name(run_id, "u", c)))
        plan.ovs_ports.append(OvsPort(fabric, node_name(run_id, "u", c)))
    for i, (mac, ip) in enumerate(VMS):
        home = vm_host(i, chassis)
        plan.config[home].ip_batch.append(f"link set vm{i} up")
        vm = plan.add_ns(f"vm:{i}", "port", f"vm{i}")
        peer_mac, peer_ip = VMS[1 - i]
        vm.ip_batch += [
            "link set lo up",
            f"link set eth0 address {mac}",
            f"addr add {ip}/24 dev eth0",
            "link set eth0 up",
            f"neigh replace {peer_ip} lladdr {peer_mac} dev eth0 nud permanent",
        ]
        plan.veths.append(Veth(f"vm:{i}", "eth0", home, f"vm{i}"))
    return plan


def vm_host(i: int, chassis: int) -> str:
    return f"host:{0 if i == 0 else chassis - 1}"


def chassis_ovs(real, c: int) -> PrivateOvs:
    return PrivateOvs.for_node(f"chassis-{c}", real.plan.ns(f"host:{c}").node)


def bring_up(real, chassis: int = 2):
    """The run's OVN central, every host a chassis, the two VMs plugged and on switch sw0; every chassis synced."""
    central = start_central(real)
    for c in range(chassis):
        ovs = start_private_ovs(real, f"host:{c}", chassis_ovs(real, c))
        start_chassis(real, f"host:{c}", ovs, central, "eth1", f"192.168.77.{c + 1}/24")
    for i, (mac, ip) in enumerate(VMS):
        ovs = chassis_ovs(real, int(vm_host(i, chassis).split(":")[1]))
        plug = ("add-port", INTEGRATION_BRIDGE, f"vm{i}", "--", "set", "Interface", f"vm{i}")
        real.runner.run(Step(ovs.vsctl(*plug, f"external_ids:iface-id=vm{i}"), what=f"plug vm{i}"))
    real.runner.run(Step(central.nbctl("ls-add", "sw0"), what="switch"))
    for i, (mac, ip) in enumerate(VMS):
        port = ("lsp-add", "sw0", f"vm{i}", "--", "lsp-set-addresses", f"vm{i}", f"{mac} {ip}")
        real.runner.run(Step(central.nbctl(*port), what=f"port vm{i}"))
    real.runner.run(Step(central.nbctl("--wait=hv", "sync"), what="every chassis caught up"))
    return central
