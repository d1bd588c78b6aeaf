"""The cloud description layer: YAML topology files -> typed, frozen objects.

Imports nothing from the model or the emulation (layers import one way).
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
