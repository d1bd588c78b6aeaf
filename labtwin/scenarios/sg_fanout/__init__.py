"""The ``sg-fanout`` scenario: a port joins a security group that other ports' rules reference.

Asks, per firewall strategy, how many data-plane objects a join rewrites,
how many rules that writes, and how long until the new port is usable by
every member (Train PTG: 170 members -> 171 updates today, 2 with a
per-group subtable; 150+ ports -> up to 5 minutes to bring a port up).

Without ``--topology`` the cloud is generated from the knobs (members,
hosts, placement): Neutron's default group, which references itself. With a
topology file, the group is the ``group`` knob's (any group some group's rule
names as ``remote_group_id``: its own members, when it references itself, and
the ports of the groups that reference it are refreshed), by default the
self-referencing group with the most members, else the one group others
reference (:func:`~labtwin.scenarios.sg_fanout.spec.studied_group`); the hosts
are the file's hosts; the knobs ``members`` and ``hosts`` are then ignored (the
run's summary says so in ``note``). ``default_topology`` names a small realistic file for notebooks
and the emulation; the model does not need it.
"""

from typing import Optional

from labtwin.description import Cloud

from ..base import Scenario, Tolerance, lazy
from ..refusals import refusing_emulation
from .spec import GroupChoiceError, SgFanoutDesign, layout_for, studied_group


def twin_refuses(model_run) -> Optional[str]:
    """Why a model run cannot be compared with an emulation of the same knobs (None: it can).

    The emulation applies one membership change at a time: it waits until a join
    is in effect on every host before the next one (see
    :mod:`labtwin.scenarios.sg_fanout.emulation`), so it cannot overlap joins. A model whose
    changes overlap (joins closer together than they take, e.g. train-2019's 1 s
    apart with a 2 s agent loop) merges them into shared agent iterations and counts
    fewer updates and rules: a different mechanic, not a disagreement.
    """
    overlapped = model_run.summary.get("changes_overlapped", 0)
    if not overlapped:
        return None
    return (
        f"{overlapped} of the model's joins/leaves began while an earlier one was still in flight (profile "
        f"{model_run.summary.get('profile')}); the emulation applies one change at a time, so their counts "
        "are not comparable: use a profile whose changes do not overlap (the twin's default, measured)"
    )


def missing(cloud: Cloud, design: SgFanoutDesign) -> list[str]:
    """What a topology file lacks for this scenario: a group some group's rule names as remote_group_id (the one
    studied, :func:`~labtwin.scenarios.sg_fanout.spec.studied_group`, chosen by the knob ``group`` when several
    could be), and a host for the joins. Under ``firewall=ovn`` the studied group must reference itself alone:
    the ML2/OVN model counts the group's own ACLs (:mod:`.model.ovn`), not other groups' ACLs matching its
    address set."""
    lacks = []
    design = SgFanoutDesign.of(design)
    if not any(g.remote_groups for g in cloud.security_groups):
        lacks.append(
            "a security group with a rule whose remote_group_id names a group, as Neutron's default "
            f"group has (none of its {len(cloud.security_groups)} group(s) has one)"
        )
    else:
        try:
            studied_group(cloud, design.group)
        except GroupChoiceError as exc:
            lacks.append(f"one group to study: {exc}")
    if not cloud.hosts:
        lacks.append("a host for the joining ports (it has no hosts)")
    if not lacks and design.firewall == "ovn":
        layout = layout_for(cloud, design)
        if layout.cross_group:
            lacks.append(_ovn_refusal(layout))
    return lacks


def _ovn_refusal(layout) -> str:
    who = ", ".join(sorted({m.name for m in layout.referrers})) or "none"
    return (
        f"group {layout.group} referenced by itself alone under firewall=ovn (not modelled nor emulated yet: "
        f"ports of other groups referencing it: {who}; self-referencing: {layout.self_referencing}); the ML2/OVN "
        "model and emulation count the group's own ACLs only, not other groups' ACLs matching its address set"
    )


def emulation_needs(cloud: Cloud, design: SgFanoutDesign) -> list[str]:
    """What the sg-fanout emulation needs beyond the model: a readiness probe (ICMP or TCP through the rule of
    every port that references the group, one flow for all of them), and for a group that others reference,
    labtwin's own agent (the Neutron-agent and OVN emulations build the studied group and one outsider group
    only: NotEmulated)."""
    design = SgFanoutDesign.of(design)
    layout = layout_for(cloud, design)  # the group is known: Scenario.refuse_unfit ran first
    flows = {layout.probe_of(m.name) for m in layout.watchers} - {""} or {layout.probe}
    if not all(flow.startswith(("icmp", "tcp")) for flow in flows):
        return [
            f"an ingress rule for icmp, tcp or any protocol from group {layout.group!r} "
            f"to time readiness with (it admits {', '.join(sorted(flows))} only)"
        ]
    naming_others = sorted(m.name for m in layout.watchers if layout.rules_of(m.name).other_remote)
    if naming_others or layout.own_rules.other_remote:
        who = ", ".join(naming_others) or f"group {layout.group} itself"
        return [
            f"no rule naming a group other than {layout.group} as remote group on a port referencing it (NotEmulated: "
            f"the emulation renders the studied group's rules only; {who} "
            "has such a rule; the model expands it over that group's members)"
        ]
    if layout.cross_group and design.control != "labtwin":
        return [
            f"control=labtwin for group {layout.group} (NotEmulated: other groups reference it, or it does not "
            f"reference itself; the control={design.control} emulation builds a self-referencing group only)"
        ]
    if layout.cross_group and flows != {layout.probe}:
        return [
            f"one probe flow for every port referencing group {layout.group} (NotEmulated: the readiness poller "
            f"sends one kind of packet; their rules admit {', '.join(sorted(flows))})"
        ]
    return []


SCENARIO = Scenario(
    name="sg-fanout",
    title="Security-group remote-group fanout: updates, rules and time to ready per firewall strategy",
    default_topology="sg-fanout.yaml",
    simulate=lazy("labtwin.scenarios.sg_fanout.model:simulate"),
    emulate=refusing_emulation("sg-fanout", lazy("labtwin.scenarios.sg_fanout.emulation:emulate"), emulation_needs),
    tolerances=(
        Tolerance(
            "updates_total",
            absolute=0,
            why="model: from each strategy's semantics (under control=neutron, Neutron's diff: a refreshed "
            "filter is written only when it gains rules); emulation: port filters "
            "whose rules were re-created (new nft handles / restarted flows) plus group objects whose content "
            "changed, read from the kernel: must be equal",
        ),
        Tolerance(
            "refreshes_total",
            absolute=0,
            why="port filters recomputed: under control=neutron, the update_port_filter and "
            "prepare_port_filter calls Neutron's agent made; under labtwin's agent every recompute ends in a "
            "write, so the kernel's filter-write count is the recompute count: equal",
        ),
        Tolerance(
            "rules_written",
            absolute=0,
            why="rules/flows/entries in what was written, each once: the rules "
            "a rewritten filter holds (model: Neutron's per-port base + per-rule counts; emulation: rules "
            "with new nft handles / re-added flows), plus group-object entries added or removed: equal. "
            "Changes one at a time on both sides (twin_refuses)",
        ),
        Tolerance(
            "objects_changed",
            absolute=0,
            why="objects whose content differs (iptables-save / ipset / "
            "dump-flows text): equal; under ipset/ovs M of the M+1 rewritten filters come out identical",
        ),
        Tolerance(
            "nb_rows_written",
            absolute=0,
            why="firewall=ovn: NB rows Neutron's own OVN driver inserted, changed or deleted per change (model: the "
            "port's rows measured once on OVN 23.03 + Neutron 29, model.ovn); equal",
        ),
        Tolerance(
            "sb_rows_written",
            absolute=0,
            why="firewall=ovn: SB rows ovn-northd wrote (port group, address set, binding; a deleted port's logical "
            "flows and multicast groups): equal",
        ),
        Tolerance(
            "lflows_written",
            absolute=0,
            why="firewall=ovn: logical flows added or removed: a join writes none (the group's ACLs match the port "
            "group and its address set, whatever their members), a leave the port's own: equal",
        ),
        Tolerance(
            "openflows_written",
            absolute=0,
            why="firewall=ovn: OpenFlow flows added or removed on every chassis (dump-flows diffs). Model: each "
            "ACL's two logical flows expanded over the group's local ports and its address set, as a conjunction "
            "when both hold more than one value, else their product (model.ovn.expansion), plus the departed "
            "port's own flows: equal; a model without the conjunction, or counting every port as local, breaks it "
            "(tests/scenarios/sg_fanout/test_ovn_model.py)",
        ),
        Tolerance(
            "port_ready_s",
            ratio=1.25,
            ratio_slower=1.55,
            timing=True,
            why="wall clock, so compared only against this machine's calibration (labtwin.calibration; made "
            "automatically the first time, else 'not compared'), never one from another machine. The "
            "emulation, in twins and calibrations alike, times each join timing_repeats times (the port "
            "leaves and rejoins) and keeps the fastest, since other work on the machine only adds time. "
            "The run goes ahead of the machine's other work (nice -10), and the model's time is scaled by the "
            "machine's pace (two commits of the apply's own kind, iptables-restore or OpenFlow bundles, timed "
            "during the run and during the calibration), so a machine busy with other work is not taken for a "
            "wrong model; a timing miss alone is measured again up to twice. The band is lopsided because "
            "interference only adds time: the emulation may take up to 1.55x the model, the model at most "
            "1.25x the emulation; 1.25 x 1.55 < 2, so from any pair that agrees a model with every cost "
            "doubled or halved, or zero, disagrees (tests/scenarios/sg_fanout/test_twin_timing.py); make "
            "bench measures how often twins hold",
        ),
    ),
    needs_topology=False,
    notebook="sg-fanout.ipynb",
    calibrate=lazy("labtwin.scenarios.sg_fanout.calibrate:calibrate"),
    twin_refuses=twin_refuses,
    twin_timing=lazy("labtwin.scenarios.sg_fanout.timing_basis:twin_timing"),
    missing=missing,
    design_type=SgFanoutDesign,
)
