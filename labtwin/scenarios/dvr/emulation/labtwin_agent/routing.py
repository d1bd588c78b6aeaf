"""The L3 namespaces of a DVR or legacy router, as Neutron's L3 and DHCP agents set them up.

Each function adds one namespace to a :class:`~labtwin.scenarios.dvr.emulation.plan.DvrPlan`:
devices, addresses, policy rules, routes, permanent neighbours and the NAT
table (``iptables-restore`` text, Neutron's chain names). Facts from
neutron-facts.md section 2; where this differs from Neutron it says so.
"""

from __future__ import annotations

import ipaddress

from labtwin.emulation.firewall import RuleSet
from labtwin.emulation.ledger import ROOT
from labtwin.emulation.plan import NsConfig, OvsPort, Veth
from labtwin.emulation.wiring import default_route

from ...knobs import DvrDesign
from .. import layout as L
from ..plan import EXTERNAL, FABRIC, CapturePoint, DvrPlan, add_ns, address, new_plan, plug
from .flows import bridge_flows

#: As the L3 agent sets them in its namespaces (arp_ignore=1: answer ARP only on the device that holds the address,
#: so a network's IPv4 and IPv6 qr- ports never both answer for the gateway).
ROUTER_SYSCTLS = [
    "net.ipv4.conf.all.arp_ignore=1",
    "net.ipv4.conf.all.arp_announce=2",
    "net.ipv4.ip_forward=1",
    "net.ipv6.conf.all.forwarding=1",
    "net.ipv4.conf.all.send_redirects=0",
    "net.ipv4.conf.default.send_redirects=0",
    "net.ipv4.conf.all.rp_filter=0",
    "net.ipv4.conf.default.rp_filter=0",
    "net.ipv4.icmp_ratelimit=0",
    "net.ipv6.icmp.ratelimit=0",
]
_EMPTY6 = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"


def qrouter(dp: DvrPlan, host: str) -> None:
    """``qrouter-<router>`` on *host*: a qr- per router subnet; legacy adds qg-, dvr adds rfp- and rules."""
    lay = dp.layout
    key, ns = f"qrouter:{host}", L.qrouter_ns(lay)
    cfg = add_ns(dp, key, "r", ns, ROUTER_SYSCTLS)
    for subnet, port in lay.qr.items():
        plug(dp, key, port.dev, host, port.network, L.hop(host, ns, port.dev))
        address(cfg, port.dev, port.mac, port.addrs, dp)
    if not lay.dvr:
        _gateway(dp, key, host, ns, lay.qg)
        cfg.rules = _nat(lay, lay.qg.dev, lay.fips, snat_to=_v4(lay.qg))
        return
    _permanent_neighbours(dp, cfg)
    if lay.design.vip_arp == "learned":  # VIPs are learned: a gratuitous ARP creates or updates the entry
        cfg.sysctls += [f"net.ipv4.conf.{qr.dev}.arp_accept=1" for qr in lay.qr.values() if qr.addrs[0].version == 4]
    if host in lay.fip_hosts():
        _rfp(dp, key, host)
    prio = L.FIP_PR_START
    fips = {p: ip for p, ip in lay.fips.items() if lay.cloud.port[p].host == host}
    for port, fip in fips.items():  # ip rule from <fixed> lookup 16 (dvr_local_router floating IP rules)
        fixed = _v4_of(lay, lay.cloud.port[port])
        cfg.ip_batch += [
            f"rule add from {fixed} lookup {L.FIP_RT_TBL} priority {prio}",
            f"addr add {fip}/32 dev {L.rfp(lay)}",
        ]
        prio += 1
    for subnet, qr in lay.qr.items():
        _redirect(dp, cfg, host, subnet, qr)
    cfg.rules = _nat(lay, L.rfp(lay), fips) if fips else cfg.rules


def _redirect(dp: DvrPlan, cfg, host: str, subnet: str, qr: L.RouterPort) -> None:
    """Traffic from the subnet without a FIP: per-subnet rule -> table <idx> -> default via the sg- IP.

    With ``distributed_snat`` (IPv4) or ``ipv6_fast_exit`` (IPv6) the proposal sends it to
    table 16 instead, out rfp- to the host's fip- namespace.
    """
    lay = dp.layout
    idx, cidr = L.snat_idx(qr), lay.cloud.subnet[subnet].cidr
    local = (
        lay.design.distributed_snat if cidr.version == 4 else lay.design.ipv6_fast_exit
    ) and host in lay.fip_hosts()
    rules = cfg.ip_batch if cidr.version == 4 else dp.ip6_rules.setdefault(cfg.ns, [])
    if local:
        rules.append(f"rule add from {cidr} lookup {L.FIP_RT_TBL} priority {idx}")
        return
    rules.append(f"rule add from {cidr} lookup {idx} priority {idx}")
    cfg.ip_batch.append(f"route add default via {lay.sg[subnet].addrs[0].ip} dev {qr.dev} table {idx}")


def _permanent_neighbours(dp: DvrPlan, cfg) -> None:
    """The server's ``add_arp_entry``: every non-router port's IP on each qr-, ``nud permanent``.

    Each VIP in allowed_address_pairs gets the MAC of the last port listing it
    (the last writer wins) -- unless ``vip_arp=learned``, where the qrouter
    learns it by ARP like any router.
    """
    lay = dp.layout
    for subnet, qr in lay.qr.items():
        cidr = lay.cloud.subnet[subnet].cidr
        for vm in lay.vms:
            for a in L.fixed_interfaces(lay.cloud, vm):
                if a.ip in cidr:
                    cfg.ip_batch.append(f"neigh replace {a.ip} lladdr {vm.mac_address} dev {qr.dev} nud permanent")
            for pair in vm.allowed_address_pairs:
                ip = pair.ip_address
                if ip.num_addresses == 1 and ip.network_address in cidr and lay.design.vip_arp == "static":
                    cfg.ip_batch.append(
                        f"neigh replace {ip.network_address} lladdr {pair.mac_address or vm.mac_address}"
                        f" dev {qr.dev} nud permanent"
                    )
        for other in [*lay.sg.values(), *lay.dhcp.values()]:
            for a in other.addrs:
                if a.ip in cidr:
                    cfg.ip_batch.append(f"neigh replace {a.ip} lladdr {other.mac} dev {qr.dev} nud permanent")


def _rfp(dp: DvrPlan, key: str, host: str) -> None:
    """The rfp-/fpr- veth between qrouter- and fip- (a /31 from 169.254.64.0/18), table 16's IPv4 default route
    and the main table's IPv6 one, as Neutron 29's ``FipNamespace.create_rtr_2_fip_link`` ends: ``add_gateway(
    <fpr- /31 address>, table=FIP_RT_TBL)``, then ``add_gateway(<fpr-'s IPv6 link-local>)`` with no table, so a
    DVR host's IPv6 north-south goes into its own fip- before the SNAT redirect rule is looked up.
    Simplification: the link-local pair is fe80::40:0/1, not fpr-'s EUI-64 address."""
    lay = dp.layout
    rfp, fpr, fip_key = L.rfp(lay), L.fpr(lay), f"fip:{host}"
    dp.plan.veths.append(Veth(key, rfp, fip_key, fpr))
    cfg = dp.plan.config[key]
    cfg.ip_batch += [
        f"addr add {L.RFP_LL}/31 dev {rfp}",
        f"addr add {L.RFP_LL6}/64 dev {rfp} nodad",
        f"link set {rfp} up",
        f"route add default via {L.FPR_LL} dev {rfp} table {L.FIP_RT_TBL}",
        f"route add default via {L.FPR_LL6} dev {rfp}",
    ]
    if lay.design.ipv6_fast_exit:  # the proposal's own rule (from <v6 cidr> lookup 16) needs it in table 16
        cfg.ip_batch.append(f"route add default via {L.FPR_LL6} dev {rfp} table {L.FIP_RT_TBL}")
    cfg.sysctls.append(f"net.ipv6.conf.{rfp}.accept_dad=0")
    dp.captures.append(CapturePoint(key, rfp, L.hop(host, L.qrouter_ns(lay), rfp)))


def fip(dp: DvrPlan, host: str) -> None:
    """``fip-<ext-net>``: fpr- to the qrouter, fg- on the external network with proxy ARP for the FIPs."""
    lay = dp.layout
    key, ns, fg, fpr = f"fip:{host}", L.fip_ns(lay), lay.fg[host], L.fpr(lay)
    cfg = add_ns(
        dp, key, "r", ns, [*ROUTER_SYSCTLS, f"net.ipv4.conf.{fg.dev}.proxy_arp=1", f"net.ipv6.conf.{fpr}.accept_dad=0"]
    )
    cfg.ip_batch += [
        f"addr add {L.FPR_LL}/31 dev {fpr}",
        f"addr add {L.FPR_LL6}/64 dev {fpr} nodad",
        f"link set {fpr} up",
    ]
    dp.captures.append(CapturePoint(key, fpr, L.hop(host, ns, fpr)))
    plug(dp, key, fg.dev, host, fg.network, L.hop(host, ns, fg.dev))
    address(cfg, fg.dev, fg.mac, fg.addrs, dp)
    _fip_gateway_routes(dp, cfg, fg.dev, fpr)
    for port, ip in lay.fips.items():
        if lay.cloud.port[port].host == host:
            cfg.ip_batch.append(f"route add {ip}/32 via {L.RFP_LL} dev {fpr}")
    snat = []
    for subnet in lay.subnets():
        if subnet.ip_version == 6 and lay.design.ipv6_fast_exit:
            cfg.ip_batch.append(f"route add {subnet.cidr} via {L.RFP_LL6} dev {fpr}")
        if subnet.ip_version == 4 and lay.design.distributed_snat:
            cfg.ip_batch.append(f"route add {subnet.cidr} via {L.RFP_LL} dev {fpr}")
            snat.append(f"-A neutron-l3-agent-snat -s {subnet.cidr} -o {fg.dev} -j SNAT --to-source {_v4(fg)}")
    if snat:  # the proposal: SNAT to the host's fg- address; needs conntrack, so no NOTRACK here
        text = (
            "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
            ":neutron-l3-agent-snat - [0:0]\n-A POSTROUTING -j neutron-l3-agent-snat\n" + "\n".join(snat) + "\nCOMMIT\n"
        )
    else:  # Neutron: the fip namespace keeps no conntrack state
        text = "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A PREROUTING -j CT --notrack\nCOMMIT\n"
    cfg.rules = RuleSet("", text, _EMPTY6, len(snat) or 1, 0, 0)


def _fip_gateway_routes(dp: DvrPlan, cfg: NsConfig, fg: str, fpr: str) -> None:
    """fip-'s ways out, as Neutron 29's ``FipNamespace._add_rtr_ext_route_rule_to_route_table`` makes them: the
    default routes via the external subnets' gateways on fg- (IPv4 and IPv6, ``_update_gateway_route``) in table
    ``<idx>`` (``_get_snat_idx`` of fpr-'s address), and ``from all iif fpr- lookup <idx>``, an IPv4 rule only
    (``add_ip_rule`` takes the family of fpr-'s 169.254 address); a gateway outside its subnet gets an on-link
    route in the main table. So IPv6 from the router reaches the external subnets only (on-link through fg-):
    anything beyond dies here. The ``ipv6_fast_exit`` proposal adds an IPv6 default route to the main table."""
    lay = dp.layout
    idx = int(ipaddress.ip_address(L.FPR_LL))
    cfg.ip_batch.append(f"rule add iif {fpr} lookup {idx} priority {idx}")
    for subnet in lay.external_subnets:
        if subnet.gateway_off_subnet:
            cfg.ip_batch.append(f"route add {subnet.gateway_ip} dev {fg} scope link")
        cfg.ip_batch.append(f"route add default via {subnet.gateway_ip} dev {fg} table {idx}")
        if subnet.ip_version == 6 and lay.design.ipv6_fast_exit:
            cfg.ip_batch.append(f"route add default via {subnet.gateway_ip} dev {fg}")


def snat(dp: DvrPlan) -> None:
    """``snat-<router>`` on the network node: an sg- per router subnet and the qg- gateway, SNAT to the qg- IP."""
    lay = dp.layout
    host, key, ns = lay.network_node, "snat", L.snat_ns(lay)
    cfg = add_ns(dp, key, "r", ns, ROUTER_SYSCTLS)
    for port in lay.sg.values():
        plug(dp, key, port.dev, host, port.network, L.hop(host, ns, port.dev))
        address(cfg, port.dev, port.mac, port.addrs, dp)
    _gateway(dp, key, host, ns, lay.qg)
    cfg.rules = _nat(lay, lay.qg.dev, {}, snat_to=_v4(lay.qg))


def _gateway(dp: DvrPlan, key: str, host: str, ns: str, qg: L.RouterPort) -> None:
    """The qg- port on the external network and default routes to the external subnets' gateways."""
    cfg = dp.plan.config[key]
    plug(dp, key, qg.dev, host, qg.network, L.hop(host, ns, qg.dev))
    address(cfg, qg.dev, qg.mac, qg.addrs, dp)
    if not dp.layout.dvr:  # legacy: floating IPs live on qg- as /32s
        cfg.ip_batch += [f"addr add {ip}/32 dev {qg.dev}" for ip in dp.layout.fips.values()]
    _default_routes(cfg, dp.layout, qg.dev)


def _default_routes(cfg: NsConfig, lay: L.Layout, dev: str) -> None:
    """Default routes via the external subnets' gateways on *dev* (qg- or fg-), each outside its subnet first
    reached on-link (``RouterInfo._add_route_to_gw``)."""
    for subnet in lay.external_subnets:
        default_route(cfg, subnet, dev)


def _nat(lay: L.Layout, out_dev: str, fips: dict, snat_to=None) -> RuleSet:
    """Neutron's l3-agent NAT: DNAT per FIP, float-snat per fixed IP, then SNAT of the rest to *snat_to*.

    Traffic that does not leave by *out_dev* (east-west) and was not DNATed is accepted first, untouched.
    """
    chains = (
        "neutron-l3-agent-PREROUTING",
        "neutron-l3-agent-POSTROUTING",
        "neutron-l3-agent-float-snat",
        "neutron-l3-agent-snat",
    )
    rules = [
        "-A PREROUTING -j neutron-l3-agent-PREROUTING",
        "-A POSTROUTING -j neutron-l3-agent-POSTROUTING",
        f"-A neutron-l3-agent-POSTROUTING ! -o {out_dev} -m conntrack ! --ctstate DNAT -j ACCEPT",
        "-A neutron-l3-agent-POSTROUTING -j neutron-l3-agent-float-snat",
        "-A neutron-l3-agent-POSTROUTING -j neutron-l3-agent-snat",
    ]
    for port, fip in fips.items():
        fixed = _v4_of(lay, lay.cloud.port[port])
        rules += [
            f"-A neutron-l3-agent-PREROUTING -d {fip}/32 -j DNAT --to-destination {fixed}",
            f"-A neutron-l3-agent-float-snat -s {fixed}/32 -j SNAT --to-source {fip}",
        ]
    if snat_to is not None and lay.router.external_gateway_info.enable_snat:
        rules.append(f"-A neutron-l3-agent-snat -o {out_dev} -j SNAT --to-source {snat_to}")
    text = (
        "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
        + "".join(f":{c} - [0:0]\n" for c in chains)
        + "\n".join(rules)
        + "\nCOMMIT\n"
    )
    return RuleSet("", text, _EMPTY6, len(rules), 0, 0)


def qdhcp(dp: DvrPlan, network: str) -> None:
    """``qdhcp-<net>`` on the host of the network's DHCP agent: the DHCP port's tap; a DHCP server answers there.

    Simplification: the server is a small scapy responder standing in for dnsmasq
    (it offers each VM its fixed IP), not dnsmasq itself.
    """
    lay = dp.layout
    port, host, ns = lay.dhcp[network], lay.dhcp_host[network], L.qdhcp_ns(lay, network)
    key = f"qdhcp:{network}"
    cfg = add_ns(dp, key, "r", ns)
    plug(dp, key, port.dev, host, network, L.hop(host, ns, port.dev))
    address(cfg, port.dev, port.mac, port.addrs, dp)
    leases = {vm.mac_address: str(_v4_of(lay, vm)) for vm in lay.vms if vm.network_id == network and _v4_of(lay, vm)}
    dp.dhcp_servers[key] = (port.dev, str(_v4(port)), leases)


def dhcp_standin(dp: DvrPlan, host: str) -> None:
    """The OVS agent's dhcp extension on *host*: br-int table 77 sends DHCP to a local responder.

    Neutron's flow sends the packet to the CONTROLLER and the os-ken app packs
    the reply out ``in_port``. Simplification: with no controller here, table 77
    outputs to a namespace running the same responder as :func:`qdhcp`; the
    stand-in is not a hop (no capture); the stage is seen by the flow's packet counter.
    """
    lay = dp.layout
    key = f"dhcpd:{host}"
    add_ns(dp, key, "d", f"dhcp-standin-{host}")
    end = dp.root_end()
    dp.plan.veths.append(Veth(key, "eth0", ROOT, end))
    dp.plan.ovs_ports.append(OvsPort(dp.bridges[(host, "br-int")], end))
    dp.plan.config[key].ip_batch.append("link set eth0 up")
    dp.ports[(host, "dhcpd")] = end
    leases = {vm.mac_address: str(_v4_of(lay, vm)) for vm in lay.vms if vm.host == host and _v4_of(lay, vm)}
    dp.dhcp_servers[key] = (
        "eth0",
        str(lay.dhcp[next(iter(lay.dhcp))].addrs[0].ip) if lay.dhcp else "169.254.169.254",
        leases,
    )
    dp.stages[f"{host}:br-int:table77"] = (dp.bridges[(host, "br-int")], "77", "")


def external(dp: DvrPlan) -> None:
    """The outside world: the external subnets' gateway addresses on one namespace on the external fabric.

    Return routes for the tenants' IPv6 subnets: via the router's qg- (IPv6 is
    routed, not NATed), or with fast-exit per VM via its host's fg- (the
    proposal's distributed ingress; how the outside would learn it is not modelled).
    """
    lay = dp.layout
    cfg = add_ns(dp, "external", "x", EXTERNAL)
    end = dp.root_end()
    dp.plan.veths.append(Veth("external", "eth0", ROOT, end))
    dp.plan.ovs_ports.append(OvsPort(dp.bridges[("", EXTERNAL)], end))
    dp.captures += [CapturePoint("external", "eth0", EXTERNAL), CapturePoint(ROOT, end, FABRIC)]
    address(dp.plan.config["external"], "eth0", L.mac_of("external"), lay.external, dp)
    off_subnet = (subnet for subnet in lay.external_subnets if subnet.gateway_off_subnet)
    cfg.ip_batch += [f"route add {subnet.cidr} dev eth0 scope link" for subnet in off_subnet]
    qg6 = next((a.ip for a in lay.qg.addrs if a.version == 6), None)
    for subnet in lay.subnets(6):
        if lay.dvr and lay.design.ipv6_fast_exit:
            for vm in lay.vms:
                fg6 = next((a.ip for a in lay.fg[vm.host].addrs if a.version == 6), None) if vm.host in lay.fg else None
                for a in L.fixed_interfaces(lay.cloud, vm):
                    if a.ip in subnet.cidr and fg6 is not None:
                        cfg.ip_batch.append(f"route add {a.ip}/128 via {fg6}")
        elif qg6 is not None:
            cfg.ip_batch.append(f"route add {subnet.cidr} via {qg6}")


def _v4(port: L.RouterPort):
    return next((a.ip for a in port.addrs if a.version == 4), None)


def _v4_of(lay: L.Layout, vm):
    return next((a.ip for a in L.fixed_interfaces(lay.cloud, vm) if a.version == 4), None)


def plan_dvr(cloud, design: DvrDesign, run_id: str) -> DvrPlan:
    """The whole DVR (or legacy) realisation of *cloud* under *design* for run *run_id*."""
    dp = new_plan(cloud, design, run_id)
    lay = dp.layout
    for host in lay.qrouter_hosts():
        qrouter(dp, host)
    for host in lay.fip_hosts():
        fip(dp, host)
    if lay.dvr:
        snat(dp)
    dhcp_outside_and_flows(dp)
    return dp


def dhcp_outside_and_flows(dp: DvrPlan) -> None:
    """What every dvr plan has, whoever builds its routers: DHCP (a qdhcp- per network, or the OVS agent's dhcp
    extension on each host with VMs), the outside world, and the bridges' flows."""
    lay = dp.layout
    if not lay.design.distributed_dhcp:
        for network in lay.dhcp:
            qdhcp(dp, network)
    else:
        for host in [h.name for h in lay.cloud.hosts if any(v.host == h.name for v in lay.vms)]:
            dhcp_standin(dp, host)
    external(dp)
    dp.flows = bridge_flows(dp)
