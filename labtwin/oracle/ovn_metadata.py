"""ML2/OVN's metadata ports, made by Neutron's own ``OVNClient`` in the oracle's ML2/OVS server.

The ``ovn`` mechanism driver cannot run in this process without an OVN northbound database (every postcommit
writes to it; the OVN emulation runs it against a real one). What it does to the ports the server answers for is
what matters here, and that part is the OVN client's metadata-port code, which touches Neutron's database only
(Neutron 29, ``neutron/plugins/ml2/drivers/ovn/mech_driver/ovsdb/ovn_client.py``): ``create_network`` ends with
``create_metadata_port`` (a ``network:distributed`` port, device ``ovnmeta-<network id>``, no address yet), and
``create_subnet`` calls ``update_metadata_port`` for an IPv4 subnet with DHCP (the port gets an address on it).
:class:`MetadataPorts` calls those two methods of Neutron's own ``OVNClient`` at the same points; with no NB, its
``_nb_idl`` is None, and neither method reaches it for a network with its own logical switch (Neutron 29's
default ``[ovn] logical_switch_per_vlan_segment = False``: ``utils.network_needs_lswitch``). The EUI-64 address
on an auto-address subnet comes from Neutron's IPAM itself (``add_auto_addrs_on_network_ports``).

Not compared, because the rest of ML2/OVN is not running: Geneve instead of VXLAN for project networks (no address
depends on it), the ``ovn-router`` plugin's routers (the oracle creates routers without ``distributed``/``ha``,
so no DVR port is made), OVN's native DHCP (no DHCP agent is registered, so no DHCP port).
"""

from __future__ import annotations

from .server import NeutronServer


class MetadataPorts:
    """The OVN driver's metadata-port steps for one cloud, with ``[ovn] ovn_metadata_enabled`` set as given."""

    def __init__(self, server: NeutronServer, enabled: bool):
        from neutron.conf.plugins.ml2.drivers.ovn import ovn_conf
        from neutron.plugins.ml2.drivers.ovn.mech_driver.ovsdb.ovn_client import OVNClient
        from oslo_config import cfg

        ovn_conf.register_opts()
        cfg.CONF.set_override("ovn_metadata_enabled", enabled, group="ovn")
        self.client = OVNClient(None, None)  # no NB or SB: the metadata-port steps do not reach them
        self.context = server.context

    def network_created(self, network: dict) -> None:
        """``OVNClient.create_network``'s last step."""
        self.client.create_metadata_port(self.context, network)

    def subnet_created(self, subnet: dict, network: dict) -> None:
        """``OVNClient.create_subnet``'s first step, for an IPv4 subnet with DHCP."""
        if subnet["enable_dhcp"] and subnet["ip_version"] == 4:
            self.client.update_metadata_port(self.context, network, subnet=subnet)
