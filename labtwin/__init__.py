"""labtwin: a digital-twin test lab for OpenStack Neutron designs.

One cloud description, two independent backends (a SimPy model and a
Mininet/Open vSwitch emulation), one run-record schema, and a twin check that
compares them.
"""

__version__ = "0.1.0"
