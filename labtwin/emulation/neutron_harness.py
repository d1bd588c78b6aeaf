"""Neutron's own agent code in a labtwin worker process: every setting that makes it run here, and why.

Neutron's agents expect a deployed host: a service account that reaches root
through ``sudo``/rootwrap, privsep daemons, a configuration file, a lock
directory, one agent per machine. A labtwin worker is one emulated host's
agent: a separate process (Neutron's configuration, callback registry and
iptables chain prefix are process-wide, and every real host runs its own agent
process), started by the run and listed in its ledger. :func:`prepare` must run
before any Neutron module is imported; :func:`configure` after.

What each setting is for (facts from ``../shared/reference/real-parts.md`` part B):

- ``sys.argv[0] = "neutron-openvswitch-agent"``: IptablesManager prefixes its
  wrapped chains with ``basename(sys.argv[0])[:16]``, read once when
  ``iptables_manager`` is imported; this gives the ``neutron-openvswi-*``
  chains a deployed ML2/OVS agent writes (and that labtwin's kernel reader knows).
- ``[AGENT] root_helper = env PATH=<venv>/bin:$PATH``: commands Neutron runs
  "as root" go through it. An empty helper is ignored by oslo.privsep, which
  then tries ``sudo`` (absent here); the worker already runs as root, so the
  helper only makes the venv's programs findable.
- Privileged functions run in this process (``set_client_mode(False)`` on every
  Neutron privsep context): the worker is root, so nothing needs a
  ``privsep-helper`` daemon, and no such daemon can outlive the run or escape
  its ledger.
- ``[oslo_concurrency] lock_path``: a directory of the run's own (Neutron takes
  external file locks, ``iptables`` among them); removed with the run.
- ``[SECURITYGROUP] enable_ipset`` and ``firewall_driver``: the design under test.
- ``firewall=ovs``: ``[OVS] ovsdb_connection`` is the host's private OVS
  (:mod:`labtwin.emulation.private_ovs`; the default ``tcp:127.0.0.1:6640``
  would make ovsdbapp add a Manager to the machine's own OVS), and
  ``$OVS_RUNDIR`` its run directory, where ``ovs-ofctl`` finds ``br-int.mgmt``.
  The OVS firewall loads the hybrid iptables driver (root namespace) when it
  finds ``qvo`` ports to clean up; there are none, and asking for it raises.
- Logging at WARNING on the worker's stderr (which the run keeps): Neutron logs
  every rule at DEBUG.
- Exit with ``os._exit``: Neutron's conntrack cleanup thread
  (``IpConntrackManager._process_queue_worker``) is not a daemon thread and never
  ends; it stays running, as in the agent, so deleted members' conntrack entries
  are really flushed, and the worker exits without waiting for it.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Optional

#: The agent binary Neutron's chain prefix is taken from (``neutron-openvswi-``).
AGENT_BINARY = "neutron-openvswitch-agent"


def prepare(binary: str = AGENT_BINARY) -> None:
    """Before any Neutron import: the chain prefix (*binary*'s: ``neutron-l3-agent`` for an L3 worker), and
    quiet deprecation warnings (eventlet's among them)."""
    if any(name.startswith("neutron.agent") for name in sys.modules):
        raise RuntimeError("neutron_harness.prepare() must run before Neutron's agent modules are imported")
    sys.argv[0] = binary
    warnings.simplefilter("ignore")


#: labtwin's firewall knob -> Neutron's ``[SECURITYGROUP] firewall_driver`` and ``enable_ipset``.
DRIVERS = {"iptables": ("iptables_hybrid", False), "ipset": ("iptables_hybrid", True), "ovs": ("openvswitch", False)}


def configure(lock_dir: str, firewall: str, ovs_rundir: Optional[str] = None) -> None:
    """Register and set Neutron's agent options (see the module docstring for why each one)."""
    import logging

    from neutron.conf.agent import common as agent_config
    from neutron.conf.agent import securitygroups_rpc as sg_config
    from oslo_config import cfg

    driver, enable_ipset = DRIVERS[firewall]
    agent_config.register_root_helper(cfg.CONF)
    sg_config.register_securitygroups_opts(cfg.CONF)
    if firewall == "ovs":
        _register_ovs_options(cfg.CONF)
    cfg.CONF([], project="neutron")
    venv_bin = os.path.dirname(sys.executable)
    cfg.CONF.set_override("root_helper", f"env PATH={venv_bin}:{os.environ.get('PATH', '')}", "AGENT")
    cfg.CONF.set_override("lock_path", lock_dir, "oslo_concurrency")
    cfg.CONF.set_override("enable_ipset", enable_ipset, "SECURITYGROUP")
    cfg.CONF.set_override("firewall_driver", driver, "SECURITYGROUP")
    if firewall == "ovs":
        _private_ovs(cfg.CONF, ovs_rundir)
    _privileged_in_process()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)


def configure_agent(lock_dir: str, overrides: dict[tuple[str, Optional[str]], object]) -> None:
    """For an agent whose options are already registered (the L3 agent's, by Neutron's own
    ``l3_agent.register_opts``): the root helper, the lock path, privileged functions in process and
    WARNING logging, as :func:`configure` sets them, then *overrides* (``(option, group or None) -> value``)."""
    import logging

    from neutron.conf.agent import common as agent_config
    from oslo_config import cfg

    if "root_helper" not in cfg.CONF.AGENT:
        agent_config.register_root_helper(cfg.CONF)
    cfg.CONF([], project="neutron")
    venv_bin = os.path.dirname(sys.executable)
    cfg.CONF.set_override("root_helper", f"env PATH={venv_bin}:{os.environ.get('PATH', '')}", "AGENT")
    cfg.CONF.set_override("lock_path", lock_dir, "oslo_concurrency")
    for (name, group), value in overrides.items():
        cfg.CONF.set_override(name, value, group)
    _privileged_in_process()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)


def _register_ovs_options(conf) -> None:
    from neutron.conf.agent import ovs_conf, ovsdb_api
    from neutron.conf.plugins.ml2.drivers import ovs_conf as ml2_ovs_conf

    ovs_conf.register_ovs_agent_opts(conf)
    ovsdb_api.register_ovsdb_api_opts(conf)
    ml2_ovs_conf.register_ovs_agent_opts(conf)


def _private_ovs(conf, rundir: Optional[str]) -> None:
    """Every OVSDB connection and ``ovs-ofctl`` call of Neutron's goes to the host's private OVS."""
    if not rundir or not os.path.isabs(rundir):
        raise ValueError(f"firewall=ovs needs the absolute run directory of the host's private OVS, not {rundir!r}")
    conf.set_override("ovsdb_connection", f"unix:{rundir}/db.sock", "OVS")
    os.environ["OVS_RUNDIR"] = rundir  # ovs-ofctl finds <bridge>.mgmt there (Neutron names bridges, not sockets)
    from neutron.agent.linux.openvswitch_firewall import iptables as ovs_fw_iptables

    def refuse(*args, **kwargs):
        raise RuntimeError(
            "OVSFirewallDriver asked for the hybrid iptables driver, which would write the root "
            "namespace's iptables: no qvo port may be on the private br-int"
        )

    ovs_fw_iptables.get_iptables_driver_instance = refuse


def _privileged_in_process() -> None:
    """Every Neutron privsep context runs its functions here, as root, without a daemon."""
    import neutron.privileged as privileged

    for name in dir(privileged):
        context = getattr(privileged, name)
        if hasattr(context, "set_client_mode"):
            context.set_client_mode(False)


def leave(code: int = 0) -> None:
    """End the worker now (Neutron's conntrack thread never ends by itself)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_worker(serve, doc: Optional[str], binary: str = AGENT_BINARY, argv: Optional[list] = None) -> None:
    """A worker's ``main``: :func:`prepare` for *binary* before Neutron is imported, the ``--run``/``--host``
    arguments (they make the argv unique, so the run's ledger finds the process), then *serve* on stdin/stdout
    until told to stop, and :func:`leave`."""
    import argparse

    prepare(binary)
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--host", required=True)
    parser.parse_args(argv)
    leave(serve(sys.stdin, sys.stdout))
