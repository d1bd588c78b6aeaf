"""Named cost profiles: what each step of a security-group update costs, in seconds.

A profile is plain data. The model's *structure* (who is notified, which
filters are recomputed, how many rules each writes) comes from Neutron's
semantics; a profile only says how long a unit of that work takes. Two kinds:

- ``train-2019``: a 2019-era ML2/OVS deployment (Python 2.7 agents, the
  hybrid iptables driver or the OVS native firewall). Each parameter says
  where it comes from. Where no source gives a number, the comment says so
  and gives the reasoning instead.
- ``neutron-29``: the same deployment with the firewall's apply measured
  from Neutron 29's own agent code on this kind of machine (:func:`neutron_29`).
- ``measured``: fitted later from the emulation (``labtwin calibrate``) and
  saved as JSON; :func:`load_profile` reads such a file.

>>> p = load_profile("train-2019")
>>> p.polling_interval_s, p.sg_info_chunk
(2.0, 100)
>>> p.with_overrides(polling_interval_s=1.0).polling_interval_s
1.0
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Optional, Union


@dataclass(frozen=True)
class CostProfile:
    """Costs of the steps of a remote-group membership update (seconds unless noted)."""

    name: str
    # --- agent loop and RPC structure -------------------------------------
    polling_interval_s: float
    sg_info_chunk: int
    rpc_cast_s: float
    rpc_handle_s: float
    # --- server and Nova ----------------------------------------------------
    api_create_port_s: float
    api_delete_port_s: float
    nova_bind_s: float
    nova_spawn_s: float
    vif_plug_s: float
    join_interval_s: float
    # --- security_group_info_for_devices (per chunk) ------------------------
    sg_info_call_s: float
    sg_info_per_device_s: float
    sg_info_per_member_ip_s: float
    # --- per-port filter computation (all drivers) --------------------------
    port_filter_s: float
    # --- iptables (hybrid driver), with or without ipset ---------------------
    iptables_rule_s: float
    iptables_restore_rule_s: float
    iptables_apply_fixed_s: float
    ipset_cmd_s: float
    ipset_entry_s: float
    # --- OVS flows (native firewall, and the subtable) -----------------------
    ovs_flow_s: float
    ovs_apply_fixed_s: float
    # --- the chain rebuild with ipset, when it costs otherwise than without ----------
    # None: as iptables_* (train-2019 does not tell them apart). A calibration fits them apart: on the
    # emulation the ipset variant's apply stayed flat in the group size while plain iptables grew.
    ipset_apply_fixed_s: Optional[float] = None
    ipset_rule_s: Optional[float] = None
    # --- ML2/OVN (firewall=ovn): only a calibration of this machine gives them (None: not modelled) -------
    #: Neutron's ``PUT /ports/<id>`` adding the group: its database work and the NB transaction it waits for.
    ovn_update_port_s: Optional[float] = None
    #: From the API call's return to the first allowed packet: northd and ovn-controller's fixed part...
    ovn_propagate_s: Optional[float] = None
    #: ... and per OpenFlow flow written on the busiest chassis.
    ovn_flow_s: Optional[float] = None

    def rebuild_costs(self, firewall: str) -> tuple[float, float]:
        """(fixed, per rule) of one chain rebuild and save/restore for the hybrid *firewall*."""
        if firewall == "ipset" and self.ipset_apply_fixed_s is not None:
            return self.ipset_apply_fixed_s, (self.ipset_rule_s or 0.0) + self.iptables_restore_rule_s
        return self.iptables_apply_fixed_s, self.iptables_rule_s + self.iptables_restore_rule_s

    def with_overrides(self, **changes) -> "CostProfile":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)


TRAIN_2019 = CostProfile(
    name="train-2019",
    # OVS agent option `polling_interval`, default 2 s (neutron-facts 3.2, 4.1).
    polling_interval_s=2.0,
    # AGENT_RES_PROCESSING_STEP = 100 devices per security_group_info_for_devices
    # call (neutron/common/constants.py; neutron-facts 3.2).
    sg_info_chunk=100,
    # A fanout cast through an idle RabbitMQ: milliseconds. Assumption (no
    # source); it is three orders below the loop interval, so it barely matters.
    rpc_cast_s=0.005,
    # security_groups_member_updated on an agent only intersects the group ids
    # with its local devices' source groups and adds them to devices_to_refilter
    # (deferred refresh): a dictionary walk. Assumption: 1 ms.
    rpc_handle_s=0.001,
    # Mirantis performance-docs Rally create_and_delete_ports: median 8.5 s per
    # iteration of 10 creates + 10 deletes, i.e. ~0.43 s per port API call on an
    # unloaded server (neutron-facts 4.2). The PTG's "~9 s per port create" was
    # measured under gate concurrency; we do not model server contention.
    api_create_port_s=0.43,
    api_delete_port_s=0.43,
    # Nova's port update with binding:host_id is one more port API call (same source).
    nova_bind_s=0.43,
    # Between the binding and the vif plug, Nova's libvirt driver prepares the
    # instance disk (a qcow2 overlay on a cached image) and builds the domain
    # XML; the vif is plugged right before the domain is defined. Assumption:
    # 2.5 s (a cached-image boot; image downloads make it much longer).
    nova_spawn_s=2.5,
    # os-vif plugging the hybrid qbr/veth (or a tap on br-int): a handful of
    # privsep'd ip/ovs-vsctl commands. Assumption: 0.5 s in total.
    vif_plug_s=0.5,
    # Several joins (--set joins=N): Nova boots them one after another; one
    # API call per second is a typical "openstack server create --min N" pace.
    # Assumption; it only matters for joins > 1.
    join_interval_s=1.0,
    # One RPC round trip plus the DB queries behind security_group_info_for_devices.
    # Assumption: 50 ms fixed, 2 ms per device (port, its groups and rules),
    # 20 us per member IP returned in sg_member_ips (one row each).
    sg_info_call_s=0.05,
    sg_info_per_device_s=0.002,
    sg_info_per_member_ip_s=20e-6,
    # update_port_filter / prepare_port_filter bookkeeping per port (port dict,
    # rule sorting, conntrack zone lookup), outside rule generation. Assumption: 5 ms.
    port_filter_s=0.005,
    # Agent-side Python work per iptables rule in a *full chain rebuild*. The
    # mechanics, from stable/train's source (neutron 15.3.4, the Train release
    # on PyPI): iptables_firewall.py IptablesFirewallDriver.filter_defer_apply_off
    # (l. 927-938) calls _remove_chains_apply and _setup_chains_apply over
    # *every* filtered port of the host, regenerating all their chains in
    # Python; then iptables_manager.py IptablesManager._apply_synchronized
    # (l. 555-614) runs iptables-save, rebuilds each table's text in Python
    # (_modify_rules, l. 654), diffs old and new (_generate_path_between_rules,
    # l. 792) and sends only the changes through iptables-restore -n. So the
    # work grows with all the host's rules while the kernel gets a diff (the
    # model's writes="diff"; labtwin's own agent rewrites, writes="rebuild").
    # Deferred refresh: securitygroups_rpc.py _security_group_updated (l. 194)
    # adds every local port of a changed remote group to devices_to_refilter,
    # and setup_port_filters (l. 236) refreshes them in one iteration. No stored
    # source gives a per-rule time for the 2019 agent; bug 1302272 and bug
    # 1253993 (2014) only say apply time grew with the default group until it
    # dominated agent CPU. So this one constant is *derived*, and the derivation
    # is stated: a join into a 150-member group on one host costs two full
    # rebuilds of ~150 x 150 rules (the refresh iteration, then the new device's
    # iteration), i.e. ~45,000 rule passes; the PTG's "up to 5 minutes" bounds
    # the per-rule cost at 300 s / 45,000 ~= 6.7 ms. We take 2 ms, a third of that
    # bound, because "up to" describes the worst case. It is the value the
    # `measured` profile is meant to replace.
    iptables_rule_s=2.0e-3,
    # iptables-restore itself: kubernetes/kubernetes#96018 reports a 695,992-line
    # restore in 12.8 s, ~18 us per line. We take 20 us per rule.
    iptables_restore_rule_s=20e-6,
    # iptables-save + iptables-restore for IPv4 and IPv6 through the rootwrap
    # daemon: four command round trips. Assumption: 0.3 s per apply.
    iptables_apply_fixed_s=0.3,
    # One `ipset add/del` through the rootwrap daemon: one command round trip.
    # Assumption: 10 ms. `ipset restore` per entry: kernel hash insert, 5 us.
    ipset_cmd_s=0.01,
    ipset_entry_s=5e-6,
    # One OpenFlow flow mod built by the agent's Python (native os-ken/ryu
    # interface) and sent in a bundle. Assumption: 0.3 ms per flow.
    ovs_flow_s=0.3e-3,
    # int_br.apply_flows(): one bundle commit plus a barrier. Assumption: 50 ms.
    ovs_apply_fixed_s=0.05,
)

#: A calibration of Neutron 29's own agent code (``labtwin calibrate sg-fanout --set control=neutron``, on a
#: machine of this project's kind; its fingerprint and points are in the file).
NEUTRON_29_CALIBRATION = Path(__file__).with_name("neutron29.json")
#: The costs that calibration measured: the hybrid driver's apply, with and without ipset, and the OVS
#: firewall's flow mods (through ``ovs-ofctl``, as Neutron's ``ovs_lib`` sends them). iptables-restore's own
#: per-rule time is inside the fitted per-rule cost, so its separate term is zero.
NEUTRON_29_MEASURED = (
    "iptables_apply_fixed_s",
    "iptables_rule_s",
    "iptables_restore_rule_s",
    "ipset_apply_fixed_s",
    "ipset_rule_s",
    "ipset_cmd_s",
    "ovs_apply_fixed_s",
    "ovs_flow_s",
)


def neutron_29() -> CostProfile:
    """Today's agent: train-2019's deployment (the 2 s ``polling_interval``, the RPC chunk of 100 and
    AGENT_RES_PROCESSING_STEP are still Neutron 29's defaults; API, Nova and RPC costs keep their stated
    assumptions) with the firewall's apply *measured* from Neutron 29's own code (:data:`NEUTRON_29_CALIBRATION`:
    the hybrid driver with and without ipset, and the OVS firewall on a private OVS)."""
    data = json.loads(NEUTRON_29_CALIBRATION.read_text())
    if data.get("method", {}).get("control") != "neutron":
        raise ValueError(f"{NEUTRON_29_CALIBRATION} is not a calibration of Neutron's agent (control=neutron)")
    measured = {key: float(data["profile"][key]) for key in NEUTRON_29_MEASURED}
    return replace(TRAIN_2019, name="neutron-29", **measured)


PROFILES: dict[str, CostProfile] = {TRAIN_2019.name: TRAIN_2019}
#: Built-in profiles made from a file when first asked for (a broken file fails the run that asks, loudly).
DERIVED = {"neutron-29": neutron_29}


def builtin(name: str) -> CostProfile:
    """A built-in profile by name (KeyError when there is none)."""
    if name in PROFILES:
        return PROFILES[name]
    return DERIVED[name]()


def load_profile(name_or_path: Union[str, Path, CostProfile]) -> CostProfile:
    """A built-in profile by name, a profile JSON file, or a machine's calibration file (its ``profile`` part).

    A JSON file may give only some parameters and name a ``base`` profile for
    the rest (default ``train-2019``); unknown keys are an error.
    """
    if isinstance(name_or_path, CostProfile):
        return name_or_path
    key = str(name_or_path)
    if key in PROFILES or key in DERIVED:
        return builtin(key)
    path = Path(key)
    if not path.is_file():
        names = ", ".join([*PROFILES, *DERIVED])
        raise ValueError(f"unknown cost profile {key!r}: give one of {names} or a profile JSON file")
    data = json.loads(path.read_text())
    if "fingerprint" in data and "profile" in data:  # a calibration of a machine (labtwin.calibration)
        data = data["profile"]
    return profile_from_dict(data, default_name=path.stem)


def profile_from_dict(data: dict, default_name: str = "measured") -> CostProfile:
    """Build a profile from a dict: ``base`` (a profile name) plus overrides."""
    data = dict(data)
    base = builtin(data.pop("base", TRAIN_2019.name))
    known = {f.name for f in fields(CostProfile)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown cost profile parameters: {', '.join(unknown)}")
    data.setdefault("name", default_name)
    return replace(base, **data)


def save_profile(profile: CostProfile, path: Union[str, Path]) -> Path:
    """Write *profile* as JSON that :func:`load_profile` reads back."""
    out = Path(path)
    out.write_text(json.dumps(profile.to_dict(), indent=2, sort_keys=True) + "\n")
    return out
