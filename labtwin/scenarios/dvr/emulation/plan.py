"""Cloud + DVR design -> realisation plan, OpenFlow flows and capture points (plain data, no root).

Per host three small userspace OVS bridges stand for Neutron's ``br-int``,
``br-tun`` and ``br-ex`` (root-namespace names ``lt<rid>b<n>``), joined by
veths where Neutron has patch ports; one fabric bridge carries the overlay
between hosts' br-tun (as a VLAN trunk, see :mod:`.layout`), another the
flat external network between hosts' br-ex and the outside world.

Namespaces (one Mininet host each), named inside as Neutron names them:

- per VM a namespace with the port's MAC and addresses on ``eth0``; the
  host end of its veth stands for the ``tap`` (its own name is ``lt...``
  because it lives in the machine's root namespace);
- ``qrouter-<router>`` (legacy: on the network node with ``qg-``; dvr: on
  every host whose agent hosts the router, with ``rfp-`` to the host's ``fip-<ext-net>``),
  ``snat-<router>`` with ``sg-``/``qg-`` (dvr), ``qdhcp-<net>`` with the DHCP
  port's ``tap`` (unless ``distributed_dhcp``), and one namespace for the
  outside world on the external network (the external subnets' gateways).

Capture points: every device in our namespaces and every veth end on a
bridge, each with the hop label it stands for (:class:`CapturePoint`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from labtwin.emulation.firewall import RuleSet
from labtwin.emulation.ledger import ROOT
from labtwin.emulation.naming import check_run_id, node_name
from labtwin.emulation.plan import Namespace, NsConfig, OvsBridge, OvsPort, Plan, Veth

from ..knobs import DvrDesign
from . import layout as L

BRIDGES = ("br-int", "br-tun", "br-ex")
FABRIC, EXTERNAL = "fabric", "external"


@dataclass(frozen=True)
class CapturePoint:
    """A device to capture on (``ns`` is a plan namespace key or ROOT) and the hop it stands for."""

    ns: str
    dev: str
    label: str
    vlan: bool = False  # frames there carry 802.1Q tags (trunks)
    bpf: str = ""  # the capture's filter: default, probe packets only (probe_worker.capture_filter)


@dataclass
class DvrPlan:
    """The plan for Realisation, plus what only the dvr emulation needs."""

    plan: Plan
    layout: L.Layout
    bridges: dict[tuple[str, str], str] = field(default_factory=dict)  # (host, br-int|br-tun|br-ex) -> name
    ports: dict[tuple[str, str], str] = field(default_factory=dict)  # (host, what) -> OVS port name on br-int/tun
    flows: dict[str, list[str]] = field(default_factory=dict)  # bridge -> ovs-ofctl flow lines
    captures: list[CapturePoint] = field(default_factory=list)
    vm_ns: dict[str, str] = field(default_factory=dict)  # VM port name -> namespace key
    dhcp_servers: dict[str, tuple[str, str, dict]] = field(default_factory=dict)  # ns key -> (dev, server ip, mac->ip)
    stages: dict[str, tuple[str, str, str]] = field(
        default_factory=dict
    )  # hop -> (bridge, table, match) seen by counters
    speakers: list[tuple[str, str, str, str]] = field(
        default_factory=list
    )  # (ns, dev, mac, ip): announce before probes
    ip6_rules: dict[str, list[str]] = field(default_factory=dict)  # ns key -> `ip -6 -batch` lines (ip rule needs -6)
    _ends: int = 0

    def root_end(self) -> str:
        """A fresh root-namespace veth end name (``lt<rid>u<n>``)."""
        self._ends += 1
        return node_name(self.plan.run_id, "u", self._ends - 1)


def new_plan(cloud, design: DvrDesign, run_id: str) -> DvrPlan:
    """The bridges, fabrics and VMs of *cloud*; the L3 namespaces come from :mod:`.labtwin_agent.routing`."""
    dp = DvrPlan(Plan(check_run_id(run_id)), L.layout(cloud, design))
    _bridges(dp)
    for vm in dp.layout.vms:
        _vm(dp, vm)
    return dp


# -- namespaces and wiring ---------------------------------------------------------
def add_ns(dp: DvrPlan, key: str, letter: str, subject: str, sysctls=()) -> NsConfig:
    """A namespace held by one Mininet host, named ``lt<rid><letter><n>`` in the root namespace."""
    index = sum(n.node[6] == letter for n in dp.plan.namespaces)
    dp.plan.namespaces.append(
        Namespace(key, "port" if letter == "p" else "router", subject, node_name(dp.plan.run_id, letter, index))
    )
    cfg = dp.plan.config[key] = NsConfig(key)
    cfg.sysctls += ["net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0", *sysctls]
    cfg.ip_batch.append("link set lo up")
    cfg.rules = RuleSet("", "", "", 0, 0, 0)
    return cfg


def plug(dp: DvrPlan, key: str, dev: str, host: str, network: str, label: str, what: str = "") -> str:
    """A veth from *dev* in namespace *key* to an access port of *host*'s br-int on *network*'s VLAN."""
    end = dp.root_end()
    dp.plan.veths.append(Veth(key, dev, ROOT, end))
    dp.plan.ovs_ports.append(OvsPort(dp.bridges[(host, "br-int")], end, L.vlan_of(dp.layout.cloud, network)))
    cfg = dp.plan.config[key]
    cfg.sysctls.append(f"net.ipv6.conf.{dev}.accept_dad=0")
    dp.captures += [CapturePoint(key, dev, label), CapturePoint(ROOT, end, f"{host}:br-int")]
    if what:
        dp.ports[(host, what)] = end
    return end


def address(cfg: NsConfig, dev: str, mac: str, addrs, dp: Optional[DvrPlan] = None) -> None:
    """MAC, addresses and link up; with *dp*, the device also announces itself before the probes.

    The announcement (a gratuitous ARP, as Neutron's agents send with
    ``send_arp_for_ha``/``arping`` when a port comes up) teaches every learning
    bridge where the MAC is, so no probe is flooded to the wrong capture points.
    """
    if dp is not None:
        v4 = next((a.ip for a in addrs if a.version == 4), "0.0.0.0")
        dp.speakers.append((cfg.ns, dev, mac, str(v4)))
    cfg.ip_batch.append(f"link set {dev} address {mac}")
    for a in addrs:
        cfg.ip_batch.append(f"addr add {a.with_prefixlen} dev {dev}" + (" nodad" if a.version == 6 else ""))
    cfg.ip_batch.append(f"link set {dev} up")


def _bridges(dp: DvrPlan) -> None:
    """br-int/br-tun/br-ex per host, the overlay fabric and the external fabric, joined by veths."""
    run, hosts = dp.plan.run_id, [h.name for h in dp.layout.cloud.hosts]
    fabric, external = node_name(run, "b", 3 * len(hosts)), node_name(run, "b", 3 * len(hosts) + 1)
    dp.plan.ovs_bridges += [OvsBridge(fabric, FABRIC), OvsBridge(external, EXTERNAL)]
    dp.bridges[("", FABRIC)], dp.bridges[("", EXTERNAL)] = fabric, external
    ext_tag = L.vlan_of(dp.layout.cloud, dp.layout.ext.name)
    for i, host in enumerate(hosts):
        for k, role in enumerate(BRIDGES):
            dp.bridges[(host, role)] = node_name(run, "b", 3 * i + k)
            dp.plan.ovs_bridges.append(OvsBridge(dp.bridges[(host, role)], host))
        _link(dp, host, ("br-int", "br-tun", None), "patch-tun", "patch-int")
        _link(dp, host, ("br-tun", fabric, None), "tun-uplink", "", far_label=FABRIC)
        _link(dp, host, ("br-int", "br-ex", ext_tag), "int-br-ex", "phy-br-ex")
        _link(dp, host, ("br-ex", external, None), "ex-uplink", "", far_label=FABRIC)


def _link(dp: DvrPlan, host: str, spec: tuple, near_name: str, far_name: str, far_label: str = "") -> None:
    """A veth between two bridges (Neutron's patch ports, or a host's uplink to a fabric)."""
    near_role, far, tag = spec
    near_end, far_end = dp.root_end(), dp.root_end()
    dp.plan.veths.append(Veth(ROOT, near_end, ROOT, far_end))
    far_bridge = dp.bridges.get((host, far), far)
    # br-tun carries only the overlay's networks (a flat network on it too would close a loop through br-ex)
    trunks = _overlay_vlans(dp) if near_role == "br-int" and far == "br-tun" else ()
    dp.plan.ovs_ports += [OvsPort(dp.bridges[(host, near_role)], near_end, tag, trunks), OvsPort(far_bridge, far_end)]
    dp.ports[(host, near_name)] = near_end
    if far_name:
        dp.ports[(host, far_name)] = far_end
    label = dp.layout.bridge_label
    dp.captures += [
        CapturePoint(ROOT, near_end, f"{host}:{label(host, near_role)}", vlan=tag is None),
        CapturePoint(ROOT, far_end, far_label or f"{host}:{label(host, far)}", vlan=tag is None and far != "br-ex"),
    ]


def _overlay_vlans(dp: DvrPlan) -> tuple[int, ...]:
    cloud = dp.layout.cloud
    return tuple(
        sorted(
            {
                L.vlan_of(cloud, s.network_id)
                for s in cloud.segments
                if s.network_type in ("vxlan", "gre", "geneve", "vlan")
            }
        )
    )


def _vm(dp: DvrPlan, vm) -> None:
    """A VM: its namespace, MAC and fixed IPs on eth0, default routes via its router subnets' gateways."""
    lay = dp.layout
    key = f"vm:{vm.name}"
    dp.vm_ns[vm.name] = key
    cfg = add_ns(dp, key, "p", vm.name, ["net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0"])
    plug(dp, key, "eth0", vm.host, vm.network_id, f"{vm.host}:{L.tap(vm)}", what=f"vm:{vm.name}")
    address(cfg, "eth0", vm.mac_address or L.mac_of(vm.id), L.fixed_interfaces(lay.cloud, vm), dp)
    for version in (4, 6):
        subnet = lay.vm_subnet(vm, version)
        if subnet is not None and subnet.gateway_ip is not None:
            cfg.ip_batch.append(f"route add default via {subnet.gateway_ip}")
