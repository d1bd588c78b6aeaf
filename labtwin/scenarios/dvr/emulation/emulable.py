"""What the dvr emulation can build, and whose code builds it: the refusals (:class:`NotEmulated`, each naming
why: the model covers what the emulation does not) and the run summary's ``built_by``.

:func:`check_emulable` is asked before anything is made: the labtwin agent builds one router, legacy or dvr;
real OVN one OVN router (:mod:`.ovn`); Neutron's own L3 agents (``control=neutron``, :mod:`.neutron_l3`) legacy
and DVR routers, several side by side (at most one distributed), IPv4 and IPv6, and a legacy HA router alone
(:mod:`.neutron_l3_ha`). The PTG's proposals stay labtwin's own extensions (``control=labtwin``).
"""

from __future__ import annotations

from labtwin.description import Cloud
from labtwin.description.notes import anycast_gateways
from labtwin.emulation.plan import PlanError

from .. import groups
from .. import spec as classes
from ..knobs import DvrDesign
from .plan import DvrPlan


class NotEmulated(PlanError):
    """The design asks for something only the model has (``router=ovn``)."""


def built_by(design: DvrDesign, dp: DvrPlan) -> dict[str, str]:
    """Whose code built each part of the run (``control=labtwin`` or ``neutron``; OVN's run says its own): under
    ``control=neutron`` the routers are Neutron 29's, and what its agents do not build stays labtwin's own, said
    here so that no part passes for Neutron's. (Neutron's OVS agent is not run for dvr: the br-int/br-tun/br-ex
    flows, DVR MAC rewriting included, are labtwin's; the issue asks for the L3 agent.)"""
    neutron = design.control == "neutron"
    parts = {
        "routers": (
            "Neutron 29's own L3 agents (L3NATAgentWithStateReport per host and agent mode): namespaces, "
            "addresses, routes, policy rules, iptables, radvd, keepalived"
            if neutron
            else "labtwin's own agent (emulation/labtwin_agent)"
        ),
        "l2_flows": "labtwin's own OpenFlow flows on br-int, br-tun and br-ex (DVR MAC rewriting included)",
        "security_groups": "none written (the runs refuse a cloud whose groups drop a studied probe)",
    }
    if dp.dhcp_servers:
        parts["dhcp"] = "labtwin's own DHCP responder (emulation/labtwin_agent/dhcpd.py) in the DHCP namespace"
    if design.distributed_dhcp:
        parts["dhcp"] = (
            "labtwin's own br-int table 77 flows to a responder stand-in (distributed_dhcp: Neutron's OVS agent's "
            "dhcp extension is not run)"
        )
    return parts


def check_emulable(cloud: Cloud, design: DvrDesign) -> None:
    """The labtwin agent builds one router, legacy or dvr, and real OVN one OVN router; Neutron's own L3 agents
    (``control=neutron``) build several, legacy and distributed side by side; anything else is the model's
    alone (NotEmulated). A cloud with more routers than its control plane builds is refused rather than
    half-built, since the twin would miss the others' probes.
    """
    routers = classes.studied_routers(cloud)
    if len(routers) > 1 and design.control != "neutron":
        raise NotEmulated(
            f"the {'OVN' if design.control == 'ovn' else 'labtwin'} emulation builds one router; this cloud has "
            f"{len(routers)} with interfaces ({', '.join(r.name for r in routers)}): control=neutron builds "
            "several (Neutron's own L3 agents), and the model covers them all"
        )
    for router in routers:
        if router.external_gateway_info is None:
            raise NotEmulated(f"the dvr emulation builds routers with a gateway; {router.name} has none")
    mode = classes.router_mode(classes.the_router(cloud), design)
    if mode == "ovn" and len(routers) == 1:
        from .ovn import check_emulable_ovn

        check_emulable_ovn(cloud)
        return
    for router in routers or [classes.the_router(cloud)]:
        mode = classes.router_mode(router, design)
        if mode not in ("legacy", "dvr"):
            raise NotEmulated(f"router={mode} is model-only; the emulation builds legacy and dvr")
    if design.control == "neutron":
        _check_neutron_builds(cloud, design)
    for router in routers or [classes.the_router(cloud)]:
        _check_outside_answers(cloud, router)
        _check_one_overlay_bridge(cloud, router)
        _check_no_group_drops(cloud, router)
    if design.agent != "ovs" or design.firewall_driver != "openvswitch":
        raise NotEmulated(
            f"agent={design.agent} firewall_driver={design.firewall_driver} is model-only: the labtwin emulation "
            "plugs VMs into br-int directly (the openvswitch firewall's wiring)"
        )


def _check_neutron_builds(cloud: Cloud, design: DvrDesign) -> None:
    """What Neutron's own L3 agents build here so far (:mod:`.neutron_l3`): legacy and DVR routers, several side by
    side (at most one distributed), IPv4 and IPv6 (Neutron's agent runs radvd for an IPv6 qr- port), a legacy
    HA router alone (:mod:`.neutron_l3_ha`); the PTG's proposals are labtwin's own extensions, which Neutron's
    agent does not have."""
    routers = classes.studied_routers(cloud) or [classes.the_router(cloud)]
    proposals = [
        knob
        for knob, on in (
            ("distributed_snat=true", design.distributed_snat),
            ("ipv6_fast_exit=true", design.ipv6_fast_exit),
            ("vip_arp=learned", design.vip_arp == "learned"),
        )
        if on
    ]
    if proposals:
        raise NotEmulated(
            f"{', '.join(proposals)} is a PTG proposal, labtwin's own extension of DVR: Neutron's L3 agent has no "
            "such mode, so it stays on control=labtwin"
        )
    for router in routers:
        if router.ha and classes.router_mode(router, design) == "dvr":
            raise NotEmulated(
                f"control=neutron builds legacy HA routers (.neutron_l3_ha); {router.name} is HA and distributed "
                "(DVR+HA: not yet)"
            )
        v6 = [name for name in router.interfaces if cloud.subnet[name].ip_version == 6]
        if router.ha and v6:
            raise NotEmulated(
                f"control=neutron builds IPv4 HA routers; {router.name} is HA with IPv6 interfaces ({', '.join(v6)}): "
                "Neutron's agent starts radvd on the keepalived master only, at its state change, which the run "
                "does not ledger yet"
            )
    if len(routers) > 1:
        ha = [r.name for r in routers if r.ha]
        distributed = [r.name for r in routers if classes.router_mode(r, design) == "dvr"]
        if ha:
            raise NotEmulated(f"control=neutron builds an HA router alone; this cloud has {len(routers)} routers")
        if len(distributed) > 1:
            raise NotEmulated(
                f"control=neutron builds one distributed router beside legacy ones; {', '.join(distributed)} are "
                "distributed (they would share each host's fip- namespace and fg- port: not planned yet)"
            )
        if design.distributed_dhcp:
            raise NotEmulated("distributed_dhcp=true with several routers is the model's alone")


def _check_no_group_drops(cloud: Cloud, router) -> None:
    """The labtwin agent writes no security-group filter (VMs plug into br-int as the OVS firewall's wiring,
    without its flows): refused when the groups drop a studied probe, which real OVN's ACLs (``control=ovn``)
    and the model apply."""
    ends = classes.pick_endpoints(cloud, router)
    ext = classes.external_network(cloud, router)
    for cls in classes.CLASSES:
        found = groups.verdict(cloud, ext, cls, ends)
        if found is not None and not found.allowed and found.dropped_by:
            raise NotEmulated(
                f"the security groups drop {cls} ({found.reason}); the labtwin emulation writes no security-group "
                "filter: control=ovn checks them through real OVN's ACLs"
            )


def _check_one_overlay_bridge(cloud: Cloud, router) -> None:
    """Each emulated host has one bridge for the router's networks (a VLAN trunk between hosts): refused when
    they leave a host by different bridges (a tunnel and a VLAN physnet), which the model keeps apart."""
    for host in cloud.hosts:
        bridges = classes.router_bridges(cloud, router, host.name)
        if len(bridges) > 1:
            raise NotEmulated(
                f"router {router.name}'s networks leave {host.name} by {' and '.join(bridges)}; the labtwin "
                "emulation has one bridge per host for them (the model covers it)"
            )


def _check_outside_answers(cloud: Cloud, router) -> None:
    """The emulated outside world answers the probes at the external subnets' gateway addresses, which an IPv6
    gateway left to Neutron's default cannot do: the router's own namespace takes it as its own
    (:func:`~labtwin.description.notes.anycast_gateways`). Refused, naming the fix."""
    gateway = router.external_gateway_info if router is not None else None
    for subnet in anycast_gateways(cloud):
        if gateway is not None and subnet.network_id == gateway.network_id:
            raise NotEmulated(
                f"external subnet {subnet.name}'s gateway {subnet.gateway_ip} is its subnet-router anycast "
                "address (Neutron's IPv6 default), which the router's own namespace takes as its own: the "
                "emulated outside world cannot answer there; give the subnet the upstream router's address "
                f"as gateway_ip (e.g. {subnet.cidr.network_address + 1})"
            )
