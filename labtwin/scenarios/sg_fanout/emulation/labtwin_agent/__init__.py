"""``control=labtwin``: the sg-fanout emulation's own stand-in for Neutron's L2 agent firewall.

:mod:`.agent` applies each strategy's changes on a host as Neutron's agent would (iptables-restore,
ipset, OpenFlow), from the rule text in ``..rules``. A control plane that runs Neutron's own firewall
code (``neutron``) or real OVN (``ovn``) goes beside this package; the harness (plan, readiness poller,
kernel-state reads in ``..state``) stays the same.
"""
