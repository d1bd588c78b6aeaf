"""The cloud description layer: YAML topology files -> typed, frozen objects.

Imports nothing from the model or the emulation (layers import one way).

It needs no Neutron: neutron-lib and Neutron are the ``neutron`` extra (about 900 MB with their
dependencies), and a topology must load without them. What Neutron's code decides is therefore
written out here, each copy checked against the original by a test that imports it
(``tests/oracle/test_neutron_oracle.py``), and each answer checked against Neutron's own server
(:mod:`labtwin.oracle`, every topology in the repository):

- neutron-lib's ``IP_PROTOCOL_MAP`` (:data:`~.security_groups.IP_PROTOCOLS`),
  ``ROUTER_INTERFACE_OWNERS_SNAT`` and ``ROUTER_PORT_OWNERS`` (:mod:`.checks`), and its
  ``DEVICE_OWNER_ROUTER_SNAT`` / ``DEVICE_OWNER_AGENT_GW`` / ``DEVICE_OWNER_DHCP`` (:mod:`.neutron_ports`);
- Neutron's subnet defaults and address rule: the default gateway (``_gateway_ip_str``), the default
  pools (``ipam.utils.generate_pools``, :func:`.schema.default_pools`) and which addresses a port may
  name (``ipam.utils.check_subnet_ip``, :func:`.checks._is_host_address`);
- neutron-lib's ``get_interface_name`` (:func:`.names.get_interface_name`) and oslo.utils'
  ``get_ipv6_addr_by_EUI64`` (:func:`.resolve.eui64`);
- Neutron's default security-group rule templates (migration c33da356b165,
  :data:`~.security_groups.NEUTRON_DEFAULT_RULES`);
- Neutron's IPAM and validators, as rules rather than code (lowest free address instead of a random
  pick, the refusals with Neutron's exception names): they need Neutron's database, so the oracle,
  not a copy, is what checks them.
"""

from .errors import CloudError, Problem
from .loader import load_cloud, parse_cloud
from .schema import (
    Cloud,
    FixedIP,
    FloatingIP,
    Host,
    Network,
    Physnet,
    Port,
    Router,
    SecurityGroup,
    SecurityGroupRule,
    Segment,
    Subnet,
)

__all__ = [
    "Cloud",
    "CloudError",
    "FixedIP",
    "FloatingIP",
    "Host",
    "Network",
    "Physnet",
    "Port",
    "Problem",
    "Router",
    "SecurityGroup",
    "SecurityGroupRule",
    "Segment",
    "Subnet",
    "load_cloud",
    "parse_cloud",
]
