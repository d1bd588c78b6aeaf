"""The OVN emulation starts Neutron with the topology's ovn_metadata_enabled (ovn_cloud.bring_up), and checks
that Neutron made the metadata ports the loader made: every VM's address was taken from the same pools.

Seen on a real run (reachability, control=ovn, this cloud): with the option not passed, Neutron made none and
the run stopped with "metadata ports: the loader gave addresses on {'small-v4': 1}, Neutron on no subnet"."""

import pytest

from labtwin.description.loader import parse_cloud
from labtwin.emulation.ovn_cloud import _check_metadata_ports

CLOUD = """
name: ovn-md
mechanism_driver: ovn
ovn_metadata_enabled: true
hosts:
  - {name: network-1, role: network}
  - {name: compute-1, role: compute}
networks:
  - name: small
subnets:
  - {name: small-v4, network_id: small, cidr: 10.0.0.0/29}
ports:
  - {name: vm-1, network_id: small, binding:host_id: compute-1}
"""


def made_by_neutron(cloud) -> dict:
    """Neutron's answer (``ovn_server._what_neutron_made``) holding the same ports the loader made."""
    ports = [
        {
            "device_owner": p.device_owner,
            "fixed_ips": [{"subnet": f.subnet_id, "ip": f.ip_address} for f in p.fixed_ips],
        }
        for p in cloud.network_ports
    ]
    return {"ports": ports}


def test_neutron_making_the_loaders_metadata_ports_passes():
    cloud = parse_cloud(CLOUD, "ovn-md.yaml")
    made = made_by_neutron(cloud)
    assert [p["device_owner"] for p in made["ports"]] == ["network:distributed"]
    _check_metadata_ports(cloud, made)


def test_a_neutron_without_them_stops_the_run():
    cloud = parse_cloud(CLOUD, "ovn-md.yaml")
    with pytest.raises(RuntimeError, match=r"loader gave addresses on \{'small-v4': 1\}, Neutron on no subnet"):
        _check_metadata_ports(cloud, {"ports": []})
