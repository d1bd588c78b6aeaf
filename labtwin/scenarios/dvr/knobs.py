"""The dvr scenario's design knobs: defaults, bounds and help, one home for the Scenario, the model and the
emulations (:class:`DvrDesign`, one typed value per knob)."""

from __future__ import annotations

from labtwin.scenarios.base import ERAS, Design, Knob, boolean, bounded

#: The ``router`` knob's default: each router in the mode its own ``distributed`` field gives.
FROM_TOPOLOGY = "topology"
#: Who builds the emulation's routers (the ``control`` knob): labtwin's own agent, Neutron's own L3 agent, or
#: real OVN.
CONTROLS = ("labtwin", "neutron", "ovn")
#: The modes a router can be studied in (``ovn`` is ML2/OVN's logical router: cloud-wide, knob only).
ROUTER_MODES = ("legacy", "dvr", "ovn")

#: Packets per second each flow of the traffic matrix offers, on average.
FLOW_PPS = 500

KNOBS: tuple[Knob, ...] = (
    Knob(
        "router",
        FROM_TOPOLOGY,
        "topology: each router's own distributed field (Neutron's default: legacy); legacy: one qrouter on the "
        "network node; dvr: distributed; ovn: ML2/OVN's logical router (implies control=ovn). A mode overrides "
        "every router",
        choices=(FROM_TOPOLOGY, *ROUTER_MODES),
    ),
    Knob(
        "era",
        "neutron-29",
        "which Neutron: neutron-29 (today's) or train-2019 (the PTG's). Under train-2019 distributed_dhcp and "
        "ipv6_fast_exit are PTG proposals; Neutron 29's OVS agent has distributed DHCP (its dhcp extension, 2023.1: "
        "tables 77/78) and no Linux bridge agent (removed in 2025.1)",
        choices=ERAS,
    ),
    Knob(
        "agent",
        "ovs",
        "L2 agent (as in multisegment): ovs, or linuxbridge (brq bridges, vxlan-<VNI>; legacy routers only; "
        "removed from Neutron in 2025.1: implies era=train-2019)",
        choices=("ovs", "linuxbridge"),
    ),
    Knob(
        "firewall_driver",
        "openvswitch",
        "the OVS agent's firewall_driver: openvswitch (tap in br-int) or iptables_hybrid (tap-qbr-qvb-qvo-br-int)",
        choices=("openvswitch", "iptables_hybrid"),
    ),
    Knob(
        "ipv6_fast_exit",
        False,
        "DVR: the PTG's fast-exit: an IPv6 default route in the host's fip- (addresses past the external subnet) "
        "and the replies in by its fg-. Without it, as Neutron 29 does (dvr_fip_ns create_rtr_2_fip_link), IPv6 "
        "already leaves by the host's fip- but reaches only the external subnet, and the replies come by snat-",
        kind=boolean,
    ),
    Knob(
        "distributed_snat",
        False,
        "DVR: SNAT on the compute node (to its fg- address)",
        kind=boolean,
    ),
    Knob(
        "distributed_dhcp",
        False,
        "ML2/OVS: answer DHCP in br-int (table 77) on the compute node",
        kind=boolean,
    ),
    Knob(
        "vip_arp",
        "static",
        "DVR: static (permanent ARP from the server, bug 1774459) or learned ARP for VIPs",
        choices=("static", "learned"),
    ),
    Knob(
        "ovn_distributed_fip",
        False,
        "OVN: Neutron's enable_distributed_floating_ip (NAT on the VM's chassis)",
        kind=boolean,
    ),
    Knob(
        "ovn_gateway",
        "",
        "OVN: the active gateway chassis; empty: the first network node in the file. Neutron's scheduler picks "
        "among equally loaded gateway chassis by a hash of the gateway port's random id, so no topology says "
        "which: a twin gives the model the emulation's pick",
    ),
    Knob(
        "ha_vrrp_advert_int",
        2,
        "HA routers: the L3 agents' ha_vrrp_advert_int, keepalived's advert interval in seconds (Neutron's default "
        "2): the backup takes over 3 intervals and a skew after the last advert it heard",
        kind=bounded(int, 1),
    ),
    Knob(
        "control",
        "labtwin",
        "who builds the routers in the emulation: labtwin (its own agent: namespaces, policy routing, NAT, DVR MAC "
        "flows; legacy and dvr), neutron (Neutron 29's own L3 agents: legacy on the network node, or dvr_snat "
        "there and dvr on the compute nodes; a legacy HA router on every network node; no PTG proposals) or ovn "
        "(Neutron 29's ML2/OVN server writes a real OVN: router=ovn, implied by it)",
        choices=CONTROLS,
    ),
    Knob("flows", 1000, f"flows in the traffic matrix ({FLOW_PPS} pps each)", kind=bounded(int, 1)),
    Knob(
        "fip_fraction",
        0.3,
        "share of IPv4 north-south flows whose VM has a floating IP",
        kind=bounded(float, 0.0, 1.0),
    ),
    Knob(
        "ipv6_fraction",
        0.2,
        "share of north-south flows that are IPv6",
        kind=bounded(float, 0.0, 1.0),
    ),
    Knob(
        "ew_fraction",
        0.5,
        "share of flows that are east-west (routed between subnets)",
        kind=bounded(float, 0.0, 1.0),
    ),
    Knob(
        "nn_capacity_pps",
        1_000_000.0,
        "network node forwarding capacity, packets/s",
        kind=bounded(float, 1.0, unit="pps"),
    ),
)


class DvrDesign(Design):
    """The design of the dvr scenario: one typed, frozen value per knob
    (parsed and bounds-checked once, by :data:`KNOBS`)."""

    KNOBS = KNOBS

    router: str
    era: str
    agent: str
    firewall_driver: str
    ipv6_fast_exit: bool
    distributed_snat: bool
    distributed_dhcp: bool
    vip_arp: str
    ovn_distributed_fip: bool
    ovn_gateway: str
    ha_vrrp_advert_int: int
    control: str
    flows: int
    fip_fraction: float
    ipv6_fraction: float
    ew_fraction: float
    nn_capacity_pps: float

    @classmethod
    def implied(cls, values: dict, given: set) -> dict:
        """``router=ovn`` is ML2/OVN's logical router, built by real OVN (``control=ovn``), and under
        ``control=ovn`` every router is OVN's; a contradicting pair set together is refused. The Linux bridge
        agent is Train's (``era=train-2019``): Neutron removed it in 2025.1 (commit 25d0273588), and real OVN
        runs Neutron 29."""
        values = cls.imply_each_other(
            values,
            given,
            ("router", "ovn"),
            ("control", "ovn"),
            "router=ovn is ML2/OVN's logical router (control=ovn); control={value} builds legacy and dvr routers",
            "control=ovn builds OVN's logical routers only (router=ovn), not router={value}",
        )
        if values["agent"] == "linuxbridge":
            why = "agent=linuxbridge is a Train-era cloud (era=train-2019): Neutron removed it in 2025.1"
            values = cls.imply(values, given, "era", "train-2019", why)
        if values["control"] in ("ovn", "neutron"):
            why = f"control={values['control']} runs Neutron 29 (era=neutron-29)"
            values = cls.imply(values, given, "era", "neutron-29", why)
        return values
