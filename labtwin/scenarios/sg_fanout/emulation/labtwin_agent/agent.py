"""The emulated L2 agent: applies each strategy's changes for real, as Neutron's agent does.

One :class:`HostAgent` per host. :meth:`HostAgent.converge` puts the
existing members' state in place before the run (not counted);
:meth:`HostAgent.join` is one ``rpc_loop`` iteration after a join's
``security_groups_member_updated`` (the new port's ``prepare_port_filter``
plus ``update_port_filter`` of every local port that references the group;
:meth:`HostAgent.leave` is the iteration after a member's delete):

- ``iptables``: rebuild the chains of every affected port (remote group
  expanded per member IP) in one ``iptables-restore --noflush``;
- ``ipset``: the set first (``ipset add`` for fewer than 5 changes, else
  ``restore`` of ``<set>-n`` + ``swap`` + ``destroy``: IPSET_ADD_BULK_THRESHOLD),
  then the same chain rebuild (each chain now one ``--match-set`` rule);
- ``ovs``: the conjunction dimension-1 flows by diff (ConjIPFlowManager),
  then every affected port's flows reinstalled with the update-cookie dance
  (install under a temporary cookie, delete the port's default-cookie flows,
  reinstall under the default cookie), the new port's installed once; all
  of an iteration's flow mods go in one OpenFlow bundle (``ovs-ofctl bundle``);
- ``subtable``: one flow per new member IP into the host's group table; the
  new port's flows (one bundle). Existing ports' flows are not touched.

Simplification: Neutron's IptablesManager since Liberty applies a *diff* of
the table; here the affected chains are flushed and rewritten (what the
model's "full chain rebuild" costs, and what makes rewrites visible as new
rule handles). Commands run through the substrate's runner (argv, stdin).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional

from labtwin.emulation.runner import Runner, Step, in_netns
from labtwin.scenarios.sg_fanout.spec import Layout

from .. import kernel, rules

#: neutron/agent/linux/ipset_manager.py: fewer changes than this use ipset add/del.
IPSET_ADD_BULK_THRESHOLD = 5
UPDATE_COOKIE = 0x1AB


@dataclass
class HostAgent:
    host: str
    firewall: str
    layout: Layout
    runner: Runner
    pid: Optional[int] = None  # host namespace (hybrid)
    bridge: Optional[str] = None  # integration bridge (ovs)
    uplink: Optional[int] = None
    local: list = field(default_factory=list)  # EPorts filtered here (members, referrers, the outsider)
    group_ips: Optional[frozenset] = None  # what the host's group object holds (None: none exists)
    busy_s: float = 0.0

    # --- running commands -------------------------------------------------------
    def _run(self, argv, what: str, stdin: Optional[str] = None) -> None:
        if self.pid is not None:
            argv = in_netns(self.pid, argv)
        self.runner.run(Step(tuple(argv), what=f"{self.host}: {what}", stdin=stdin, timeout=60))

    def _ofctl(self, *args, stdin: Optional[str] = None) -> None:
        self._run(("ovs-ofctl", *args), next(a for a in args if not a.startswith("-") and "OpenFlow" not in a), stdin)

    # --- state before the run -----------------------------------------------------
    def converge(self, ports: list, ips: frozenset) -> None:
        """Existing ports' filters and the group object, written once before the workload."""
        self.local = list(ports)
        has_refs = any(p.watches for p in ports)
        if self.firewall in ("iptables", "ipset"):
            if self.firewall == "ipset" and has_refs:
                self._run(("ipset", "restore"), "create ipset", rules.ipset_restore(rules.group_set(self.layout), ips))
            lines = rules.host_frame()
            for p in ports:
                lines += rules.port_chains(p, self.layout, self.firewall, sorted(ips)) + rules.port_jumps(p)
            self._run(("iptables-restore", "-w", "10"), "initial filter", rules.restore_text(lines))
        else:
            flows = rules.ovs_infra_flows(self.uplink)
            for p in ports:
                flows += rules.ovs_port_flows(p, self.layout, self.firewall)
            if has_refs:
                flows += rules.ovs_group_flows(self.layout, self.firewall, ips)
            self._ofctl("del-flows", self.bridge)
            self._ofctl("add-flows", self.bridge, "-", stdin="\n".join(flows) + "\n")
        self.group_ips = ips if has_refs else None

    # --- one iteration after a join ---------------------------------------------------
    def join(self, port, ips: frozenset) -> tuple[float, float]:
        """Apply the strategy's changes for *port* joining (its filter only on its own host): (start, duration)."""
        start = time.perf_counter()
        new = port if port.host == self.host else None
        refresh = [p for p in self.local if p.watches] if self.firewall != "subtable" else []
        prepare = [new] if new is not None else []
        has_refs = any(p.watches for p in refresh + prepare) or self.group_ips is not None
        if self.firewall == "ipset" and has_refs:
            self._sync_ipset(ips)
        if self.firewall in ("iptables", "ipset") and (refresh or prepare):
            lines = [
                line
                for p in refresh + prepare
                for line in rules.port_chains(p, self.layout, self.firewall, sorted(ips))
            ]
            lines += [line for p in prepare for line in rules.port_jumps(p)]
            self._run(("iptables-restore", "-n", "-w", "10"), "rebuild chains", rules.restore_text(lines))
        if self.firewall in ("iptables", "ipset") and prepare:
            # port_bound after setup_port_filters: until now the tap was down, as Neutron keeps a new
            # port on the dead VLAN until its filter is in place (an unfiltered tap would be open).
            self._run(("ip", "link", "set", new.tap, "up"), "wire port")
        if self.firewall in ("ovs", "subtable"):
            mods = self._group_flow_mods(ips) if has_refs else []
            mods += self._reinstall_mods(refresh)
            mods += [f"flow add {f}" for p in prepare for f in rules.ovs_port_flows(p, self.layout, self.firewall)]
            if mods:  # one bundle per iteration, as the agent's deferred bridge applies its flow mods
                self._ofctl("-O", "OpenFlow14", "bundle", self.bridge, "-", stdin="\n".join(mods) + "\n")
        self.local += prepare
        took = time.perf_counter() - start
        self.busy_s += took
        return start, took

    # --- one iteration after a port delete ------------------------------------------------
    def leave(self, port, ips: frozenset) -> tuple[float, float]:
        """Apply a member's delete (*port*: the departed EPort): (start, duration).

        *ips*: the group after the delete. What the agent does on
        ``security_groups_member_updated`` plus, on the port's own host, the
        removed device: ``remove_port_filter`` (the port's jumps and chains,
        or its flows, go), ``update_port_filter`` for every remaining local
        member (not under the subtable: nothing of a port names the members),
        and the address leaves the host's group object (``ipset del`` for
        fewer than 5 changes, the dimension-1 flow deleted, the subtable entry
        deleted), destroyed when no local member references the group any more.

        Simplifications: conntrack entries of the departed address are not
        flushed (Neutron's ``_clean_deleted_remote_sg_members_conntrack_entries``);
        every probe opens a new flow (fresh ICMP id / TCP source port), which no
        stale entry matches. The departed port's namespace and vif stay (Nova
        would unplug it): its packets stand for a later port that gets the
        address back outside the group, and must be stopped by the members' filters.
        """
        start = time.perf_counter()
        gone = port if port.host == self.host else None
        if gone is not None:
            self.local = [p for p in self.local if p.name != gone.name]
        refresh = [p for p in self.local if p.watches] if self.firewall != "subtable" else []
        target = ips if any(p.watches for p in self.local) else None
        if self.firewall in ("iptables", "ipset"):
            self._leave_hybrid(gone, refresh, target)
        else:
            mods = self._group_flow_mods(target or frozenset()) if self.group_ips is not None else []
            mods += [f"flow delete {m}" for m in rules.ovs_port_matches(gone)] if gone is not None else []
            mods += self._reinstall_mods(refresh)
            if mods:
                self._ofctl("-O", "OpenFlow14", "bundle", self.bridge, "-", stdin="\n".join(mods) + "\n")
        self.group_ips = target if self.group_ips is not None else None
        took = time.perf_counter() - start
        self.busy_s += took
        return start, took

    def _leave_hybrid(self, gone, refresh: list, target) -> None:
        """ipset del first (``_update_ipset_members``), then one restore; an unreferenced set goes last."""
        if self.firewall == "ipset" and target is not None and self.group_ips is not None:
            self._sync_ipset(target)
        lines = rules.port_removal(gone) if gone is not None else []
        lines += [
            line for p in refresh for line in rules.port_chains(p, self.layout, self.firewall, sorted(target or ()))
        ]
        if lines:
            self._run(("iptables-restore", "-n", "-w", "10"), "remove and rebuild chains", rules.restore_text(lines))
        if self.firewall == "ipset" and target is None and self.group_ips is not None:
            self._run(("ipset", "destroy", rules.group_set(self.layout)), "ipset destroy")

    def _sync_ipset(self, ips: frozenset) -> None:
        name = rules.group_set(self.layout)
        old = self.group_ips
        if old is not None and len(ips ^ old) < IPSET_ADD_BULK_THRESHOLD:
            for ip in sorted(ips - old):
                self._run(("ipset", "add", "-exist", name, ip), "ipset add")
            for ip in sorted(old - ips):
                self._run(("ipset", "del", "-exist", name, ip), "ipset del")
        elif old is None:
            self._run(("ipset", "restore"), "ipset create", rules.ipset_restore(name, ips))
        else:
            temp = name + "-n"
            self._run(("ipset", "restore"), "ipset restore -n", rules.ipset_restore(temp, ips))
            self._run(("ipset", "swap", temp, name), "ipset swap")
            self._run(("ipset", "destroy", temp), "ipset destroy")
        self.group_ips = ips

    def _group_flow_mods(self, ips: frozenset) -> list[str]:
        """ConjIPFlowManager / the subtable: add and delete only the member IPs that changed."""
        old = self.group_ips or frozenset()
        mods = [f"flow add {f}" for f in rules.ovs_group_flows(self.layout, self.firewall, ips - old)]
        mods += [
            f"flow delete_strict {match}"
            for ip in sorted(old - ips)
            for match in rules.ovs_group_matches(self.layout, self.firewall, ip)
        ]
        self.group_ips = ips
        return mods

    def _reinstall_mods(self, ports: list) -> list[str]:
        """update_port_filter under the OVS firewall: the update-cookie dance.

        Install the port's flows under a temporary cookie (replacing the
        identical default-cookie ones), delete what is left under the default
        cookie, reinstall under the default cookie (firewall.py
        ``_update_flows_for_port``).
        """
        mods = [
            f"flow add {f}" for p in ports for f in rules.ovs_port_flows(p, self.layout, self.firewall, UPDATE_COOKIE)
        ]
        mods += [f"flow delete cookie=0x0/-1,reg5={p.ofport}" for p in ports]
        mods += [f"flow add {f}" for p in ports for f in rules.ovs_port_flows(p, self.layout, self.firewall)]
        return mods

    # --- reading the kernel -----------------------------------------------------------
    def read_state(self) -> dict:
        """Raw dumps of this host's firewall state (parsed by :mod:`..state`)."""
        if self.firewall in ("iptables", "ipset"):
            return kernel.read_hybrid(self.host, self.runner, self.pid)
        return kernel.read_flows(self.host, self.runner, self.bridge)
