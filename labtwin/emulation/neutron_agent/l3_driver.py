"""The interface driver Neutron's L3 agent plugs its qr-/qg- devices with in the emulation (runs in an L3 worker).

Neutron 29 ships two interface drivers (``openvswitch``, ``null``; the Linux bridge
one went with the Linux bridge agent). ``OVSInterfaceDriver`` would plug into
``[OVS] integration_bridge`` through ovsdbapp, which reaches the machine's own OVS
and names its root ends ``tap<port>`` (the same in every run of one topology),
and it leaves the port untagged for the OVS agent to bind. Here the emulated
host's br-int is one of the run's OVS bridges, and no OVS agent runs; so this
driver does what the labtwin emulation's own ``plug`` does
(:func:`labtwin.scenarios.dvr.emulation.plan.plug`): a veth whose end named
*device_name* goes into the router's namespace with the port's MAC, and whose
other end, named by the run (``lt<rid>u<n>``, ledgered before the agent starts),
becomes an access port of the host's br-int on the network's tag. The tag stands
for the OVS agent's local VLAN binding (``OVSNeutronAgent.port_bound``), as in the
labtwin emulation.

What each port gets is :data:`PLUGS` (port id -> ``{"dev", "root", "bridge", "tag"}``),
set by the worker before the agent starts: a port the plan did not foresee is a
``KeyError`` naming it (fail loud), never a device outside the ledger.
Everything else about the device (addresses, routes, MTU on the namespace side)
is Neutron's: ``LinuxInterfaceDriver.init_router_port`` and the router code.
"""

from __future__ import annotations

import subprocess

from neutron.agent.linux import interface, ip_lib

from labtwin.emulation.realise import mute_in_root

#: port id -> {"dev": device name, "root": root-namespace end, "bridge": OVS bridge, "tag": VLAN}
PLUGS: dict[str, dict] = {}


def _ovs(*argv: str) -> None:
    subprocess.run(("ovs-vsctl", "--timeout=30", *argv), check=True, capture_output=True, text=True, timeout=60)


class EmulatedBridgeDriver(interface.LinuxInterfaceDriver):
    """Plugs a router port into the emulated host's br-int (see the module docstring)."""

    def plug_new(
        self, network_id, port_id, device_name, mac_address, bridge=None, namespace=None, prefix=None, mtu=None
    ):
        plug = PLUGS.get(port_id)
        if plug is None or plug["dev"] != device_name:
            raise KeyError(
                f"Neutron's agent plugs port {port_id} ({device_name}), which labtwin's plan has not ledgered"
            )
        root, dev = ip_lib.IPWrapper().add_veth(plug["root"], device_name, namespace2=namespace)
        subprocess.run(("sysctl", "-q", "-w", *mute_in_root([plug["root"]])), check=True, capture_output=True)
        dev.link.set_address(mac_address)
        _ovs("add-port", plug["bridge"], plug["root"], "--", "set", "Port", plug["root"], f"tag={int(plug['tag'])}")
        if mtu:
            self.set_mtu(device_name, mtu, namespace=namespace, prefix=prefix)
        root.link.set_up()
        dev.link.set_up()

    def unplug(self, device_name, bridge=None, namespace=None, prefix=None):
        plug = next((p for p in PLUGS.values() if p["dev"] == device_name), None)
        ip_lib.IPDevice(device_name, namespace=namespace).link.delete()  # its root end goes with it
        if plug is not None:
            _ovs("--if-exists", "del-port", plug["bridge"], plug["root"])

    def set_mtu(self, device_name, mtu, namespace=None, prefix=None):
        plug = next((p for p in PLUGS.values() if p["dev"] == device_name), None)
        ip_lib.IPDevice(device_name, namespace=namespace).link.set_mtu(mtu)
        if plug is not None:
            ip_lib.IPDevice(plug["root"]).link.set_mtu(mtu)
