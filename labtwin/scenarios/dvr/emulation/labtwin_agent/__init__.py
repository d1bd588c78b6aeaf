"""``control=labtwin``: the dvr emulation's own stand-in for Neutron's L3 and DHCP agents.

What Neutron's agents would do on each host, written by labtwin: the qrouter-/snat-/fip- namespaces,
policy routing and NAT (:mod:`.routing`), the OVS flows for DVR MAC rewriting and learned ARP
(:mod:`.flows`), and a minimal DHCP responder (:mod:`.dhcpd`). A control plane that runs Neutron's own
agent code (``neutron``) or real OVN (``ovn``) goes beside this package, fed the same plan and observed
by the same captures and probes (``..plan``, ``..observe``, ``..probe_worker``).
"""
