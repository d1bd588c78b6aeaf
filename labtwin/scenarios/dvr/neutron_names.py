"""Neutron's names for the L3 pieces of a DVR (or legacy) router, and OVN's (shared by model and emulation).

Namespaces carry the full id (``qrouter-<router_id>``, ``snat-<router_id>``,
``fip-<ext_net_id>``, ``qdhcp-<net_id>``). Devices are the prefix plus the id,
cut to the interface driver's ``DEV_NAME_LEN`` = neutron-lib ``LINUX_DEV_LEN``
= 14 characters (``(prefix + id)[:DEV_NAME_LEN]``, neutron/agent/l3/
dvr_fip_ns.py, router_info.py): ``qr-``/``sg-``/``qg-``/``fg-``/``tap`` keep
11 characters of the port id, ``rfp-``/``fpr-`` keep 10 of the router id.

Router-owned ports are not listed in a topology (a router names its interfaces
by subnet), so their ids are derived here, stably, from the router, the kind
of port and the subnet, host or network it serves, with the description's own
:func:`~labtwin.description.schema.derived_id`. Anything else that needs the
same names (the emulation) derives them the same way:

>>> router_port_id("router1", "qr", "tenant-a-v4") == derived_id("port", "router1/qr/tenant-a-v4")
True
>>> qr_device("6d3b1a1e-0000-4000-8000-000000000000")
'qr-6d3b1a1e-00'
>>> rfp_device("0a594648-d96f-50ba-ad3f-e8ff0a7dc5a1")
'rfp-0a594648-d'
"""

from __future__ import annotations

import hashlib

from labtwin.description.schema import derived_id

#: neutron-lib ``LINUX_DEV_LEN``: what the Linux interface driver cuts device names to.
DEV_NAME_LEN = 14


def device(prefix: str, object_id) -> str:
    """A device name as Neutron makes it: ``(prefix + id)[:14]``."""
    return (prefix + str(object_id))[:DEV_NAME_LEN]


def tap_device(port_id) -> str:
    return device("tap", port_id)


def hybrid_devices(port_id) -> tuple[str, str, str]:
    """The iptables_hybrid firewall's per-port devices between the tap and br-int: the Linux bridge ``qbr``
    (where iptables filters), and the veth ``qvb`` (in qbr) / ``qvo`` (in br-int) (os-vif's ovs hybrid plug;
    neutron/agent/linux/iptables_firewall.py ``_get_br_device_name``)."""
    return device("qbr", port_id), device("qvb", port_id), device("qvo", port_id)


def brq_bridge(network_id) -> str:
    """The Linux bridge agent's bridge for a network: ``brq`` + 11 characters of its id."""
    return device("brq", network_id)


def vxlan_device(vni: int) -> str:
    """The Linux bridge agent's VXLAN interface for a VNI (``get_vxlan_device_name``)."""
    return f"vxlan-{int(vni)}"


def qr_device(port_id) -> str:
    """Router interface, in qrouter- (``INTERNAL_DEV_PREFIX``)."""
    return device("qr-", port_id)


def sg_device(port_id) -> str:
    """The SNAT node's per-subnet port, in snat- (``SNAT_INT_DEV_PREFIX``)."""
    return device("sg-", port_id)


def qg_device(port_id) -> str:
    """External gateway, in snat- (DVR) or qrouter- (legacy) (``EXTERNAL_DEV_PREFIX``)."""
    return device("qg-", port_id)


def fg_device(port_id) -> str:
    """FIP agent gateway port, in fip- (``FIP_EXT_DEV_PREFIX``)."""
    return device("fg-", port_id)


def rfp_device(router_id) -> str:
    """qrouter- end of the router<->fip veth (``ROUTER_2_FIP_DEV_PREFIX``)."""
    return device("rfp-", router_id)


def fpr_device(router_id) -> str:
    """fip- end of the router<->fip veth (``FIP_2_ROUTER_DEV_PREFIX``)."""
    return device("fpr-", router_id)


def qrouter_ns(router_id) -> str:
    return f"qrouter-{router_id}"


def snat_ns(router_id) -> str:
    return f"snat-{router_id}"


def fip_ns(ext_net_id) -> str:
    return f"fip-{ext_net_id}"


def qdhcp_ns(network_id) -> str:
    return f"qdhcp-{network_id}"


def router_port_id(router: str, kind: str, scope: str = "") -> str:
    """Stable id of a router-owned port: ``kind`` is qr (per subnet), sg (per subnet) or qg.

    Simplification: one qr-/sg- port per router subnet. Neutron gives each
    IPv4 subnet its own router port and puts further IPv6 subnets of one
    network on a shared port; with at most one IPv6 subnet per network the two agree.
    """
    return derived_id("port", f"{router}/{kind}/{scope}" if scope else f"{router}/{kind}")


def floatingip_port_id(port: str) -> str:
    """Id of the port Neutron makes for the floating IP of VM port *port* (``device_owner`` network:floatingip):
    under OVN with distributed floating IPs its MAC is the NAT row's ``external_mac``."""
    return derived_id("port", f"{port}/floatingip")


def fip_gateway_port_id(host: str, ext_net: str) -> str:
    """Id of the ``floatingip_agent_gateway`` port a host's fip- namespace owns (its fg-)."""
    return derived_id("port", f"{host}/fg/{ext_net}")


def dhcp_port_id(host: str, network: str) -> str:
    """Id of the DHCP agent's port on *network* on *host* (the tap in qdhcp-)."""
    return derived_id("port", f"{host}/dhcp/{network}")


def ovn_lrp(port_id) -> str:
    """OVN Logical_Router_Port name for a Neutron router port: ``lrp-<port_id>`` (not a Linux device, not cut)."""
    return f"lrp-{port_id}"


def ovn_cr_lrp(port_id) -> str:
    """OVN chassis-redirect port of a router's gateway port: ``cr-lrp-<port_id>``."""
    return f"cr-lrp-{port_id}"


# -- MACs: Neutron draws them at random; both sides derive the same stand-ins ------------
def mac_of(resource_id) -> str:
    """A MAC in Neutron's ``base_mac`` fa:16:3e for a port that has none in the topology."""
    digest = hashlib.sha1(str(resource_id).encode()).hexdigest()
    return "fa:16:3e:" + ":".join(digest[i : i + 2] for i in (0, 2, 4))


def dvr_mac(host: str) -> str:
    """The host's DVR MAC: ``dvr_base_mac`` fa:16:3f plus a non-zero 4th octet and two more (stable per host).

    >>> dvr_mac("compute-1").startswith("fa:16:3f:")
    True
    """
    digest = hashlib.sha1(f"dvr-mac/{host}".encode()).digest()
    return "fa:16:3f:" + ":".join(f"{b:02x}" for b in (digest[0] | 1, digest[1], digest[2]))
