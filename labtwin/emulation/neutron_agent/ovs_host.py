"""The OVS agent's share of ``firewall=ovs`` in a worker: br-int's base flows and port binding.

Neutron's ``OVSFirewallDriver`` is run as it is; it expects an integration
bridge that the OVS agent (``ovs_neutron_agent.OVSNeutronAgent``) has set up
and ports the agent has bound. That agent is not run here (it needs the
plugin RPC, tunnels and an os-ken OpenFlow controller), so this module does
the three things of it the firewall depends on, each from Neutron 29's code,
through Neutron's own ``ovs_lib.OVSBridge`` (OVSDB and ``ovs-ofctl``):

- :func:`install_base_flows`: what ``br_int.OVSIntegrationBridge.setup_default_table``
  installs (native OpenFlow there; the same flows in ofctl form here):
  canary table 23 drop, 0 -> 58 -> 59 -> 60, table 60 NORMAL at priority 1,
  ARP spoof table 24 drop, drop of the dead VLAN 4095 in table 0, table 62
  NORMAL, tables 30/31 -> 58.
- :func:`bind_ports` before the firewall: ``OVSNeutronAgent.port_bound`` writes
  the local VLAN mapping into the Port's ``other_config`` (``net_uuid``,
  ``network_type``, ``physical_network``, ``segmentation_id``, ``tag``), which
  the firewall reads to build its per-port flows.
- :func:`tag_ports` after the firewall: ``OVSNeutronAgent._bind_devices`` sets
  the Port's ``tag`` to the local VLAN (from the dead VLAN a new port is plugged
  with) and clears ``vlan_mode``/``trunks``; only then does NORMAL switch the
  port's frames.

Simplification, stated: one network, local VLAN 1 on every host, and the
hosts' uplink (a trunk port of br-int) carries the local VLAN between hosts,
standing for br-tun and its VXLAN tunnels (which translate the local VLAN to
the VNI and back). The firewall's flows are the same either way: they match
the local VLAN, never the tunnel.
"""

from __future__ import annotations

#: The integration bridge's name (Neutron's default ``[OVS] integration_bridge``).
INTEGRATION_BRIDGE = "br-int"
#: The one network's local VLAN (LocalVlanManager's first id) and the VXLAN id it stands for.
LOCAL_VLAN = 1
NETWORK_TYPE, SEGMENTATION_ID = "vxlan", 1001
#: ``neutron_lib.plugins.ml2.ovs_constants``: the tables setup_default_table uses, and the dead VLAN.
LOCAL_SWITCHING, CANARY, ARP_SPOOF, LOCAL_EGRESS, LOCAL_IP = 0, 23, 24, 30, 31
PACKET_RATE_LIMIT, BANDWIDTH_RATE_LIMIT, TRANSIENT, TRANSIENT_EGRESS = 58, 59, 60, 62
DEAD_VLAN_TAG = 4095


def install_base_flows(br) -> None:
    """br-int's default tables, as ``OVSIntegrationBridge.setup_default_table`` sets them (no DHCP flows)."""
    br.add_flow(table=CANARY, priority=0, actions="drop")
    br.add_flow(table=LOCAL_SWITCHING, priority=0, actions=f"resubmit(,{PACKET_RATE_LIMIT})")
    br.add_flow(table=PACKET_RATE_LIMIT, priority=0, actions=f"resubmit(,{BANDWIDTH_RATE_LIMIT})")
    br.add_flow(table=BANDWIDTH_RATE_LIMIT, priority=0, actions=f"resubmit(,{TRANSIENT})")
    br.add_flow(table=TRANSIENT, priority=1, actions="normal")
    br.add_flow(table=ARP_SPOOF, priority=0, actions="drop")
    br.add_flow(table=LOCAL_SWITCHING, priority=65535, dl_vlan=DEAD_VLAN_TAG, actions="drop")
    br.add_flow(table=TRANSIENT_EGRESS, priority=3, actions="normal")
    for table in (LOCAL_EGRESS, LOCAL_IP):
        br.add_flow(table=table, priority=0, actions=f"resubmit(,{PACKET_RATE_LIMIT})")


def bind_ports(br, port_ids, network_id: str) -> list[str]:
    """``port_bound`` for each port: the local VLAN mapping into its Port's other_config; returns their names."""
    names = []
    for port_id in port_ids:
        vif = br.get_vif_port_by_id(port_id)
        if vif is None:
            raise RuntimeError(f"port {port_id} is not plugged into {br.br_name} (no Interface with its iface-id)")
        other_config = br.db_get_val("Port", vif.port_name, "other_config") or {}
        other_config.update(
            {
                "net_uuid": network_id,
                "network_type": NETWORK_TYPE,
                "physical_network": "None",  # str(None), as port_bound writes it for a tunnelled network
                "segmentation_id": str(SEGMENTATION_ID),
                "tag": str(LOCAL_VLAN),
            }
        )
        br.set_db_attribute("Port", vif.port_name, "other_config", other_config)
        names.append(vif.port_name)
    return names


def tag_ports(br, names) -> None:
    """``_bind_devices`` for each port: its Port leaves the dead VLAN for the local VLAN."""
    for name in names:
        br.set_db_attribute("Port", name, "tag", LOCAL_VLAN)
        br.clear_db_attribute("Port", name, "vlan_mode")
        br.clear_db_attribute("Port", name, "trunks")
