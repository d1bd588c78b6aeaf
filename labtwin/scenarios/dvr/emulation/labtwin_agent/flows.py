"""OpenFlow flows of the DVR emulation: DVR MAC rewriting, learned ARP for VIPs, table 77 DHCP.

Every bridge keeps its ``priority=0 actions=NORMAL`` (standalone learning
switch, VLAN access/trunk ports); these flows sit above it. From Neutron's
ML2/OVS agent (neutron-facts.md 2.2, 2.6, 2.7), per DVR host *h* with DVR MAC D(h):

- br-tun, from br-int: ARP requests and neighbour solicitations for a gateway IP are
  dropped (they never leave the host); frames *to* a qr- MAC are dropped;
  frames *from* a qr- MAC get ``eth_src`` = D(h) (``DVR_PROCESS``);
- br-int, from br-tun: a frame from another host's DVR MAC to a local VM gets
  ``eth_src`` = the VM's subnet gateway MAC, loses its VLAN and goes straight
  to the VM (``DVR_TO_SRC_MAC``);
- ``vip_arp=learned`` needs no flow here: the qrouter learns the VIP from
  ARP (see :func:`~labtwin.scenarios.dvr.emulation.labtwin_agent.routing.qrouter`), and a VM's
  gratuitous ARP crosses the fabric like any broadcast. Simplification: the
  newer agent's flows that carry a qrouter's *own* ARP requests across hosts
  (br-int table 0 priority 99, tables 3/4) are not emulated; no probe needs them;
- ``distributed_dhcp``: br-int table 0 sends DHCPv4 requests from VM ports to
  table 77, whose per-port flow (in_port + MAC) hands them to the responder
  stand-in; replies go straight back to the VM's port.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ... import neutron_names as names

if TYPE_CHECKING:
    from ..plan import DvrPlan


def bridge_flows(dp: "DvrPlan") -> dict[str, list[str]]:
    """``ovs-ofctl add-flows`` lines per bridge name."""
    lay, flows = dp.layout, {}
    if lay.dvr:
        hosts = lay.qrouter_hosts()
        for host in hosts:
            flows.setdefault(dp.bridges[(host, "br-tun")], []).extend(_dvr_process(dp, host))
            flows.setdefault(dp.bridges[(host, "br-int")], []).extend(_dvr_to_src_mac(dp, host, hosts))
    if lay.design.distributed_dhcp:
        for key in dp.dhcp_servers:
            host = key.split(":", 1)[1]
            flows.setdefault(dp.bridges[(host, "br-int")], []).extend(_table77(dp, host))
    return flows


def _dvr_process(dp: "DvrPlan", host: str) -> list[str]:
    lay, mac, patch = dp.layout, names.dvr_mac(host), dp.ports[(host, "patch-int")]
    out = []
    for qr in lay.qr.values():
        gw = qr.addrs[0].ip
        if gw.version == 4:
            out.append(f"table=0,priority=6,in_port={patch},arp,arp_op=1,arp_tpa={gw},actions=drop")
        else:
            out.append(f"table=0,priority=6,in_port={patch},icmp6,icmp_type=135,nd_target={gw},actions=drop")
        out.append(f"table=0,priority=5,in_port={patch},dl_dst={qr.mac},actions=drop")
        out.append(f"table=0,priority=4,in_port={patch},dl_src={qr.mac},actions=mod_dl_src:{mac},NORMAL")
    return out


def _dvr_to_src_mac(dp: "DvrPlan", host: str, hosts: list[str]) -> list[str]:
    lay, patch = dp.layout, dp.ports[(host, "patch-tun")]
    out = []
    for vm in (v for v in lay.vms if v.host == host):
        subnet = lay.vm_subnet(vm)
        if subnet is None:
            continue
        gw_mac = lay.qr[subnet.name].mac
        for other in (h for h in hosts if h != host):
            out.append(
                f"table=0,priority=10,in_port={patch},dl_src={names.dvr_mac(other)},dl_dst={vm.mac_address},"
                f"actions=strip_vlan,mod_dl_src:{gw_mac},output:{dp.ports[(host, f'vm:{vm.name}')]}"
            )
    return out


def _table77(dp: "DvrPlan", host: str) -> list[str]:
    standin = dp.ports[(host, "dhcpd")]
    out = []
    for vm in (v for v in dp.layout.vms if v.host == host):
        port = dp.ports[(host, f"vm:{vm.name}")]
        out += [
            f"table=0,priority=101,in_port={port},udp,tp_src=68,tp_dst=67,actions=resubmit(,77)",
            f"table=77,priority=100,in_port={port},dl_src={vm.mac_address},udp,tp_dst=67,actions=output:{standin}",
            f"table=0,priority=101,in_port={standin},dl_dst={vm.mac_address},actions=output:{port}",
        ]
    return out
