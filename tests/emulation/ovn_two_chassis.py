"""Two OVN chassis and two VMs on one logical switch: the smallest cloud real OVN runs here (test helper,
also run by a killed child process in test_ovn_live.py)."""

from labtwin.emulation.ledger import ROOT
from labtwin.emulation.naming import node_name
from labtwin.emulation.ovn_run import INTEGRATION_BRIDGE, start_central, start_chassis
from labtwin.emulation.plan import OvsBridge, OvsPort, Plan, Veth
from labtwin.emulation.private_ovs import PrivateOvs, start_private_ovs
from labtwin.emulation.runner import Step

VMS = (("fa:16:3e:00:00:01", "10.9.0.1"), ("fa:16:3e:00:00:02", "10.9.0.2"))


def two_chassis(run_id):
    plan = Plan(run_id)
    fabric = node_name(run_id, "b", 0)
    plan.ovs_bridges.append(OvsBridge(fabric, "fabric"))
    for i, (mac, ip) in enumerate(VMS):
        host = plan.add_ns(f"host:{i}", "host", f"chassis-{i}")
        host.ip_batch += ["link set lo up", f"link set vm{i} up"]
        plan.veths.append(Veth(f"host:{i}", "eth1", ROOT, node_name(run_id, "u", i)))
        plan.ovs_ports.append(OvsPort(fabric, node_name(run_id, "u", i)))
        vm = plan.add_ns(f"vm:{i}", "port", f"vm{i}")
        peer_mac, peer_ip = VMS[1 - i]
        vm.ip_batch += [
            "link set lo up",
            f"link set eth0 address {mac}",
            f"addr add {ip}/24 dev eth0",
            "link set eth0 up",
            f"neigh replace {peer_ip} lladdr {peer_mac} dev eth0 nud permanent",
        ]
        plan.veths.append(Veth(f"vm:{i}", "eth0", f"host:{i}", f"vm{i}"))
    return plan


def bring_up(real):
    central = start_central(real)
    for i, (mac, ip) in enumerate(VMS):
        key = f"host:{i}"
        ovs = start_private_ovs(real, key, PrivateOvs.for_node(f"chassis-{i}", real.plan.ns(key).node))
        start_chassis(real, key, ovs, central, "eth1", f"192.168.77.{i + 1}/24")
        real.runner.run(
            Step(
                ovs.vsctl(
                    "add-port",
                    INTEGRATION_BRIDGE,
                    f"vm{i}",
                    "--",
                    "set",
                    "Interface",
                    f"vm{i}",
                    f"external_ids:iface-id=vm{i}",
                ),
                what=f"plug vm{i}",
            )
        )
    real.runner.run(Step(central.nbctl("ls-add", "sw0"), what="switch"))
    for i, (mac, ip) in enumerate(VMS):
        real.runner.run(
            Step(
                central.nbctl("lsp-add", "sw0", f"vm{i}", "--", "lsp-set-addresses", f"vm{i}", f"{mac} {ip}"),
                what=f"port vm{i}",
            )
        )
    real.runner.run(Step(central.nbctl("--wait=hv", "sync"), what="every chassis caught up"))
    return central
