"""labtwin's loader against Neutron 29's own server (labtwin.oracle): where they differ, Neutron is right.

Each cloud starts Neutron's ML2 + segments + router plugins in a child process (~3-5 s; children of one
zygote, two at a time), so these are marked slow: `make test` runs them, the quick loop does not.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from labtwin.cli import main
from labtwin.description import CloudError
from labtwin.description.loader import load_cloud, load_declared
from labtwin.oracle import OracleFailed, ask_neutron, ask_neutron_many

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
#: Every topology in the repository: the defaults, the example scenario's, the inputs (some refused on purpose:
#: then Neutron must refuse the same objects, with the exception labtwin names), and this folder's cases.
TOPOLOGIES = sorted(
    [
        *ROOT.glob("topologies/*.yaml"),
        *ROOT.glob("tests/example_scenario/topologies/*.yaml"),
        *ROOT.glob("tests/inputs/*.yaml"),
        *HERE.glob("*.yaml"),
        *ROOT.glob("tests/conformance/*/topology.yaml"),  # the conformance suite's clouds
    ]
)


def _askable(path: Path) -> bool:
    """A file labtwin refuses for its shape never reaches Neutron (the conformance suite has two)."""
    try:
        load_declared(path)
    except CloudError:
        return False
    return True


ASKED = [p for p in TOPOLOGIES if _askable(p)]


@pytest.fixture(scope="module")
def reports():
    return dict(zip(ASKED, ask_neutron_many(ASKED)))


@pytest.mark.slow
@pytest.mark.parametrize("path", ASKED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_neutron_answers_every_topology_as_labtwin_does(reports, path):
    report = reports[path]
    assert report.path == str(path) and report.objects > 0 and report.neutron_version == "29.0.0"
    assert report.agree, "\n".join(str(d) for d in report.differences)


@pytest.mark.slow
def test_the_oracle_finds_a_wrong_loader(monkeypatch):
    """The check can fail: a loader that forgets the router gateway's address (labtwin's before this
    oracle) disagrees with Neutron on that gateway, located there; a loader that gives every port of a
    host on two segments a 409 (the Train era) disagrees on each port."""
    from labtwin.description import loader

    real = loader.resolve_cloud

    def no_gateway_addresses(cloud):
        resolved, problems = real(cloud)
        routers = tuple(
            r.model_copy(
                update={"external_gateway_info": r.external_gateway_info.model_copy(update={"external_fixed_ips": ()})}
            )
            if r.external_gateway_info
            else r
            for r in resolved.routers
        )
        return resolved.model_copy(update={"routers": routers}), problems

    monkeypatch.setattr(loader, "resolve_cloud", no_gateway_addresses)
    report = ask_neutron(ROOT / "topologies" / "minimal.yaml")
    (difference,) = report.differences
    assert difference.loc == ("routers", 0, "external_gateway_info") and difference.name == "router1"
    assert difference.labtwin == "gives it no address" and difference.neutron.startswith("gives it 203.0.113.")

    def train_era(cloud):
        resolved, problems = real(cloud)
        refused = [
            (("ports", i, "fixed_ips"), "(HostConnectedToMultipleSegments, 409)") for i in range(len(cloud.ports))
        ]
        return resolved, problems + refused

    monkeypatch.setattr(loader, "resolve_cloud", train_era)
    report = ask_neutron(HERE / "host-on-two-segments.yaml")
    assert {d.loc for d in report.differences} == {("ports", i) for i in range(7)}  # vm-7: Neutron defers it
    assert all("HostConnectedToMultipleSegments" in d.labtwin and "gives" in d.neutron for d in report.differences)


def test_every_port_that_names_its_addresses_is_created_before_neutron_picks_any(monkeypatch):
    """Neutron's IPAM picks a free address at random (``random.sample`` over a window of the first 1000 free),
    so a router's gateway port, a DVR router's SNAT port or a port that lets Neutron choose could take an address
    the file gives a later port: one CI run in about a hundred saw dvr.yaml's SNAT port take vrrp-a's 10.10.0.11.
    The oracle therefore creates every port that names its addresses before any router, other port or floating
    IP, and the DHCP agents' ports come next, before routers (as a real agent makes them when the subnet is
    created). Checked here on a recording server, without Neutron; when the order was fixed, all 60 topologies
    then asked agreed with Neutron under an adversarial pick (``random.sample`` preferring every named address)."""
    from labtwin.oracle import load
    from labtwin.oracle.server import Answer

    monkeypatch.setattr(load, "make_dhcp_ports", lambda server, host: server.posts.append(("/dhcp", host)) or [])
    monkeypatch.setattr(
        load,
        "ask_agent_gateway_ports",
        lambda server, host, mode: server.posts.append(("/l3", host)) or Answer(200, {}),
    )
    monkeypatch.setattr(load, "pin_snat", lambda server, router, host: server.posts.append(("/pin", router)))

    class Recording:
        def __init__(self):
            self.posts: list[tuple[str, str]] = []

        def post(self, path, body):
            kind = next(iter(body))
            self.posts.append((path, body[kind].get("name", "")))
            return Answer(201, {kind: {"id": f"{kind}-{len(self.posts)}", **body[kind]}})

        def put(self, path, body):
            return Answer(200, {"value": body})

        def get(self, path):  # the project's default group, as Neutron makes it; no other listing matters here
            group = {"id": "default-group", "name": "default", "security_group_rules": []}
            return Answer(200, {"security_groups": [group], "ports": []})

        def register_agent(self, agent):
            pass

        def override(self, option, value, group=None):
            pass

    for path in (ROOT / "topologies" / "dvr.yaml", HERE / "dvr-snat-port-no-room.yaml"):
        cloud = load_declared(path).cloud
        server = Recording()
        load.load_into_neutron(cloud, server)
        named = {p.name for p in cloud.ports if p.fixed_ips and all(f.ip_address for f in p.fixed_ips)}
        order = [
            (where, name) for where, name in server.posts if where in ("/ports", "/dhcp", "/routers", "/floatingips")
        ]
        first_other = next(i for i, (_, name) in enumerate(order) if name not in named)
        assert named and {name for _, name in order[:first_other]} == named, (path.name, order)
        dhcp_hosts = [("/dhcp", h.name) for h in cloud.hosts if h.role == "network"]
        after = len(dhcp_hosts) + first_other
        assert dhcp_hosts and order[first_other:after] == dhcp_hosts and order[after][0] == "/routers", order
        # the L3 agents ask for their fg- ports last, every host in file order (labtwin's loader assumes the same)
        assert [p for p in server.posts if p[0] == "/l3"] == [("/l3", h.name) for h in cloud.hosts]
        assert server.posts[-len(cloud.hosts) :] == [("/l3", h.name) for h in cloud.hosts]


@pytest.mark.slow
def test_the_oracle_finds_a_loader_that_forgets_neutrons_own_ports(monkeypatch):
    """The check can fail: a loader whose DVR routers make no SNAT port and whose floating IPs bring no agent
    gateway port accepts vm-5 and vm-4's floating IP, which Neutron refuses, and is told which ports it
    forgot, per router and per host."""
    from labtwin.description import neutron_ports

    monkeypatch.setattr(neutron_ports, "snat_ports", lambda cloud, routers, allocator: ((), []))
    monkeypatch.setattr(neutron_ports, "_agent_gateway_host", lambda *args: None)
    monkeypatch.setattr(neutron_ports, "agent_gateway_ports", lambda *args: ((), []))
    report = ask_neutron(HERE / "dvr-own-ports.yaml")
    by_loc = {d.loc: d for d in report.differences}
    # hosts[0] and hosts[2]: Neutron refuses network-1's and compute-2's agents their fg- port, labtwin does not
    assert set(by_loc) == {("ports", 4), ("floatingips", 3), ("routers", 0), ("hosts", 0), ("hosts", 1), ("hosts", 2)}
    assert by_loc[("routers", 0)].labtwin == "makes none"
    assert by_loc[("routers", 0)].neutron == "makes SNAT port on private (private-v4)"
    assert by_loc[("hosts", 1)].neutron == "makes agent gateway port on public (public-v4)"


@pytest.mark.slow
def test_the_oracle_finds_a_loader_giving_fg_ports_to_floating_ip_hosts_only(monkeypatch):
    """The check can fail: fg-ports-exhaust-pool.yaml's pool is full only because the L3 agents of network-1 and
    compute-2, hosts without a floating IP, ask for their fg- port (Neutron's own ``sync_routers`` and
    ``get_agent_gateway_port`` answer the played agents, :mod:`labtwin.oracle.l3_agent`). Both refuse compute-3's
    (each_topology above); a loader making fg- ports only with floating IPs (labtwin's before) accepts the cloud and
    is told both the refusal and the ports it forgot."""
    from labtwin.description import neutron_ports

    path = HERE / "fg-ports-exhaust-pool.yaml"
    with pytest.raises(CloudError, match=r":15: hosts\[3\]: host 'compute-3'.*IpAddressGenerationFailure"):
        load_cloud(path)
    monkeypatch.setattr(neutron_ports, "agent_gateway_ports", lambda *args: ((), []))
    report = ask_neutron(path)
    by_loc = {d.loc: d for d in report.differences}
    assert set(by_loc) == {("hosts", 0), ("hosts", 2), ("hosts", 3)}
    assert by_loc[("hosts", 3)].neutron.startswith("refuses it: 409 IpAddressGenerationFailure")
    assert by_loc[("hosts", 0)].neutron == "makes agent gateway port on public (public-v4)"
    assert by_loc[("hosts", 2)].labtwin == "makes none"


@pytest.mark.slow
def test_the_oracle_finds_a_loader_that_forgets_the_dhcp_agents_ports(monkeypatch):
    """The check can fail: a loader with no DHCP ports accepts vm-5 on the small /29, which Neutron refuses
    once its DHCP agent's port has taken an address, and is told which network's DHCP ports it forgot."""
    from labtwin.description import neutron_ports

    monkeypatch.setattr(neutron_ports, "dhcp_ports", lambda cloud, allocator: ())
    report = ask_neutron(HERE / "dhcp-ports.yaml")
    by_loc = {d.loc: d for d in report.differences}
    assert set(by_loc) == {("ports", 4), ("networks", 0), ("networks", 1), ("networks", 2), ("networks", 5)}
    assert by_loc[("ports", 4)].neutron.startswith("refuses it (IpAddressGenerationFailure)")
    assert by_loc[("networks", 1)].neutron == "makes DHCP port of network-1 on dual (dual-v4, dual-v6)"
    assert by_loc[("networks", 2)].neutron == "makes DHCP port of network-1 on routed (routed-a)"
    # the one network Neutron's DHCP agent could not serve: full, whose named port took its /30's one address
    from labtwin.oracle import run

    load, _ = run._ANSWERED[run._request_key(load_declared(HERE / "dhcp-ports.yaml"))]
    (failure,) = load.dhcp_failures
    assert "IpAddressGenerationFailure" in failure and load.ids[("network", "full")] in failure


@pytest.mark.slow
def test_the_oracle_finds_a_dhcp_scheduler_that_always_takes_the_first_agent(monkeypatch):
    """Which agent hosts each network is compared: a scheduler that ignores the agents' load and always takes the
    first (labtwin's before: the first network node) puts every network dhcp-scheduling.yaml spreads on net-a, and
    disagrees on each network Neutron's WeightScheduler gave net-b, naming both hosts."""
    from labtwin.description import dhcp_scheduling

    monkeypatch.setattr(dhcp_scheduling, "least_loaded", lambda agents, load, wanted: agents[:wanted])
    report = ask_neutron(HERE / "dhcp-scheduling.yaml")
    by_loc = {d.loc: d for d in report.differences}
    assert set(by_loc) == {("networks", 1), ("networks", 3), ("networks", 5), ("networks", 6)}, report.differences
    assert by_loc[("networks", 1)].labtwin == "makes DHCP port of net-a on n2 (n2-v4)"
    assert by_loc[("networks", 1)].neutron == "makes DHCP port of net-b on n2 (n2-v4)"
    assert "DHCP port of net-b on routed (routed-1)" in by_loc[("networks", 5)].neutron


@pytest.mark.slow
def test_the_oracle_finds_a_loader_without_ovn_metadata_ports(monkeypatch):
    """Under ML2/OVN with ovn_metadata_enabled, Neutron's own OVNClient makes a metadata port per network: a loader
    that makes none accepts vm-5 on the /29 (Neutron refuses it) and is told of each network's metadata port."""
    from labtwin.description import neutron_ports

    monkeypatch.setattr(neutron_ports, "metadata_ports", lambda cloud, allocator: ())
    report = ask_neutron(HERE / "ovn-metadata.yaml")
    by_loc = {d.loc: d for d in report.differences}
    assert set(by_loc) == {("ports", 4), *(("networks", i) for i in range(5))}, report.differences
    assert by_loc[("ports", 4)].neutron.startswith("refuses it (IpAddressGenerationFailure)")
    assert by_loc[("networks", 1)].neutron == "makes metadata port on dual (dual-v4, dual-v6)"
    assert by_loc[("networks", 2)].neutron == "makes metadata port on quiet ()"  # DHCP off: a port, no address
    assert by_loc[("networks", 4)].neutron == "makes metadata port on routed (routed-a, routed-b)"  # both segments


def test_labtwins_least_loaded_is_neutrons_weight_select():
    """The one step of Neutron's DHCP scheduling without a database in it, written out in the loader
    (:func:`labtwin.description.dhcp_scheduling.least_loaded`), against ``BaseWeightScheduler.select``: the same
    agents, in the same order, over loads with ties."""
    import itertools
    from types import SimpleNamespace

    from neutron.scheduler.base_scheduler import BaseWeightScheduler

    from labtwin.description.dhcp_scheduling import least_loaded

    hosts = ["a", "b", "c", "d"]
    for loads in itertools.product(range(3), repeat=len(hosts)):
        load = dict(zip(hosts, loads))
        agents = [SimpleNamespace(host=h, load=load[h]) for h in hosts]
        for wanted in range(len(hosts) + 1):
            theirs = BaseWeightScheduler(None).select(None, None, agents, [], wanted)
            assert least_loaded(hosts, load, wanted) == [a.host for a in theirs], (load, wanted)


@pytest.mark.slow
def test_the_oracle_compares_each_subnets_gateway_and_pools(monkeypatch):
    """The check can fail: labtwin's old IPv6 default (gateway ``::1``, pools from ``::2``), which Neutron left in
    Train (commit 1916bc5c06: the gateway is the subnet-router anycast ``::``, pools from ``::1``), disagrees on
    both IPv6 subnets and nowhere else. The file does not name them, so Neutron is asked for its own defaults."""
    import dataclasses
    import ipaddress

    from labtwin.description.schema import default_pools
    from labtwin.oracle import run

    declared = load_declared(HERE / "dual-stack-slaac.yaml")

    def old_default(subnet):
        gateway = subnet.cidr.network_address + 1
        wrong = subnet.model_copy(
            update={"gateway_ip": gateway, "allocation_pools": default_pools(subnet.cidr, gateway)}
        )
        object.__setattr__(wrong, "__pydantic_fields_set__", set(subnet.model_fields_set))  # still unwritten
        return wrong if subnet.ip_version == 6 else subnet

    cloud = declared.cloud
    fields = {name: getattr(cloud, name) for name in type(cloud).model_fields}
    fields["subnets"] = tuple(old_default(s) for s in cloud.subnets)
    wrong = type(cloud).model_construct(_fields_set=set(cloud.model_fields_set), **fields)
    monkeypatch.setattr(run, "load_declared", lambda path: dataclasses.replace(declared, cloud=wrong))
    report = ask_neutron(HERE / "dual-stack-slaac.yaml")
    by_loc = {d.loc: d for d in report.differences}
    assert set(by_loc) == {("subnets", 1), ("subnets", 2)}
    assert (
        by_loc[("subnets", 2)].labtwin == "gateway 2001:db8:2::1, pools 2001:db8:2::2-2001:db8:2:0:ffff:ffff:ffff:ffff"
    )
    assert (
        by_loc[("subnets", 2)].neutron == "gateway 2001:db8:2::, pools 2001:db8:2::1-2001:db8:2:0:ffff:ffff:ffff:ffff"
    )
    assert cloud.subnet["private-v6"].gateway_ip == ipaddress.ip_address("2001:db8:2::")  # labtwin's default now


@pytest.mark.slow
def test_the_oracle_compares_slaac_addresses_exactly(monkeypatch):
    """EUI-64 addresses are compared one by one (the oracle gives Neutron labtwin's MACs): a loader that
    forgets to flip the universal/local bit disagrees on every SLAAC address."""
    import ipaddress

    from labtwin.description import resolve

    def unflipped(cidr, mac):
        octets = [int(part, 16) for part in mac.split(":")]
        interface_id = int.from_bytes(bytes(octets[:3] + [0xFF, 0xFE] + octets[3:]), "big")
        return ipaddress.IPv6Address(int(cidr.network_address) | interface_id)

    monkeypatch.setattr(resolve, "eui64", unflipped)
    report = ask_neutron(HERE / "dual-stack-slaac.yaml")
    assert {d.loc for d in report.differences} == {("ports", 0), ("ports", 1), ("ports", 2)}
    assert "2001:db8:1:0:fa16:3eff:fe12:3456 on private-slaac" in report.differences[0].labtwin
    assert "2001:db8:1:0:f816:3eff:fe12:3456 on private-slaac" in report.differences[0].neutron


@pytest.mark.slow
def test_validate_neutron_prints_each_difference_and_exits_1(monkeypatch):
    from labtwin.description import loader

    real = loader.resolve_cloud
    monkeypatch.setattr(loader, "resolve_cloud", lambda cloud: (real(cloud)[0], [(("ports", 1), "(Conflict)")]))
    files = [str(ROOT / "topologies" / "minimal.yaml"), str(HERE / "dvr-own-ports.yaml")]
    result = CliRunner().invoke(main, ["validate", "--neutron", *files])
    assert result.exit_code == 2, result.output + result.stderr  # labtwin (wrongly, here) refuses a port
    verdicts = [line for line in result.stdout.splitlines() if ": Neutron 29.0.0 " in line]
    assert [line.split(":")[0] for line in verdicts] == files  # one server zygote for all, answers in file order
    lines = result.stdout.strip().splitlines()
    at = lines.index(verdicts[0])
    assert "Neutron 29.0.0 answers 1 object(s) differently" in lines[at], lines
    assert "ports[1] (vm-b): port: labtwin refuses it (Conflict); Neutron gives 10.0.0." in lines[at + 1], lines


@pytest.mark.slow
def test_the_oracle_checks_the_exception_of_each_refusal(monkeypatch):
    """refusals.yaml agrees object by object (each_topology above); a loader naming the wrong exception for
    one refusal, or refusing what Neutron accepts, disagrees there."""
    from labtwin.description import checks, loader

    real = checks.check_cloud

    def wrong(cloud):
        for loc, message in real(cloud):
            yield loc, message.replace("VlanIdInUse", "TunnelIdInUse")
        yield ("ports", 0, "mac_address"), "a made-up refusal (MacAddressInUse, 409)"

    monkeypatch.setattr(loader, "check_cloud", wrong)
    report = ask_neutron(HERE / "refusals.yaml")
    wrong_ones = {d.loc: d for d in report.differences}
    assert set(wrong_ones) == {("segments", 1), ("ports", 0)}, report.differences
    assert (
        "TunnelIdInUse" in wrong_ones[("segments", 1)].labtwin and "VlanIdInUse" in wrong_ones[("segments", 1)].neutron
    )
    assert wrong_ones[("ports", 0)].neutron == "accepts it"


def test_labtwins_protocol_table_is_neutron_libs():
    """The loader's written-out protocol names and numbers are neutron-lib's ``IP_PROTOCOL_MAP``."""
    from neutron_lib import constants

    from labtwin.description.schema import IP_PROTOCOLS

    assert IP_PROTOCOLS == dict(constants.IP_PROTOCOL_MAP)


def test_labtwins_router_interface_owners_are_neutron_libs():
    """Router interfaces take no SLAAC address and may name one on a SLAAC subnet: the loader's list of
    them is neutron-lib's ``ROUTER_INTERFACE_OWNERS_SNAT``."""
    from neutron_lib import constants

    from labtwin.description.checks import ROUTER_INTERFACE_OWNERS_SNAT

    assert ROUTER_INTERFACE_OWNERS_SNAT == tuple(constants.ROUTER_INTERFACE_OWNERS_SNAT)


def test_labtwins_other_written_out_copies_are_neutron_libs():
    """The rest of the list in :mod:`labtwin.description`: the device owners of the ports Neutron's server makes,
    the EUI-64 rule (oslo.utils' ``get_ipv6_addr_by_EUI64``, what Neutron's ``AutomaticAddressRequest`` calls)
    and the interface-name rule (neutron-lib's ``get_interface_name``), each against its original."""
    import ipaddress

    from neutron_lib import constants
    from neutron_lib.plugins import utils as plugin_utils
    from oslo_utils import netutils

    from labtwin.description import names, neutron_ports, resolve

    assert (neutron_ports.SNAT_OWNER, neutron_ports.AGENT_GATEWAY_OWNER, neutron_ports.DHCP_OWNER) == (
        constants.DEVICE_OWNER_ROUTER_SNAT,
        constants.DEVICE_OWNER_AGENT_GW,
        constants.DEVICE_OWNER_DHCP,
    )
    from neutron.common import utils as neutron_utils

    assert neutron_ports.DVR_SERVICED_OTHER_OWNERS == tuple(neutron_utils.get_other_dvr_serviced_device_owners())
    for owner in ("compute:nova", "compute:az1", "network:dhcp", "trunk:subport", "network:router_interface", ""):
        assert neutron_ports.is_dvr_serviced(owner) == neutron_utils.is_dvr_serviced(owner), owner
    cidr = ipaddress.ip_network("2001:db8:1::/64")
    for mac in ("fa:16:3e:12:34:56", "00:00:00:00:00:00", "02:ff:ff:ff:ff:ff", "fe:16:3e:00:00:01"):
        assert str(resolve.eui64(cidr, mac)) == str(netutils.get_ipv6_addr_by_EUI64(str(cidr), mac))
    for name, prefix in (("br-provider", "int-"), ("a-very-long-bridge-name", "phy-"), ("tap", ""), ("x" * 20, "")):
        assert names.get_interface_name(name, prefix) == plugin_utils.get_interface_name(name, prefix)


def test_labtwins_subnet_defaults_and_address_rule_are_neutrons():
    """Neutron's default gateway (``IpamBackendMixin._gateway_ip_str``), default pools (``ipam.utils.generate_pools``)
    and which addresses a port may name (``ipam.utils.check_subnet_ip``, by owner), written out in the loader, each
    against Neutron's own function over IPv4 and IPv6 subnets of several sizes and every kind of owner."""
    import ipaddress

    import netaddr
    from neutron.db.ipam_backend_mixin import IpamBackendMixin
    from neutron.ipam import utils as ipam_utils
    from neutron_lib import constants

    from labtwin.description.checks import ROUTER_PORT_OWNERS, _is_host_address
    from labtwin.description.schema import Subnet, default_pools

    assert ROUTER_PORT_OWNERS == tuple(constants.ROUTER_PORT_OWNERS)
    owners = ("", "compute:nova", "network:dhcp", "network:floatingip", *constants.ROUTER_PORT_OWNERS)
    for version, cidr in (
        (4, "10.0.0.0/24"),
        (4, "10.0.0.0/30"),
        (4, "10.0.0.0/31"),
        (6, "2001:db8::/64"),
        (6, "2001:db8::/126"),
    ):
        subnet = Subnet(name="s", network_id="n", cidr=cidr, ip_version=version)
        gateway = IpamBackendMixin._gateway_ip_str(
            {"gateway_ip": constants.ATTR_NOT_SPECIFIED, "ip_version": version}, cidr
        )
        assert str(subnet.gateway_ip) == str(netaddr.IPAddress(gateway)), cidr
        theirs = [(int(r.first), int(r.last)) for r in ipam_utils.generate_pools(cidr, gateway)]
        assert [(int(p.start), int(p.end)) for p in default_pools(subnet.cidr, subnet.gateway_ip)] == theirs, cidr
        network = ipaddress.ip_network(cidr)
        edges = [network.network_address, network.network_address + 1, network[-1], network[-1] + 1]
        for ip in edges:
            for owner in owners:
                assert _is_host_address(subnet, ip, owner) == ipam_utils.check_subnet_ip(cidr, str(ip), owner), (
                    ip,
                    owner,
                )


def test_labtwins_default_rules_are_neutrons_own():
    """The loader writes Neutron's default rule templates out (it runs without Neutron); they must be the
    list Neutron's own migration c33da356b165 inserts."""
    from labtwin.description.schema import NEUTRON_DEFAULT_RULES
    from labtwin.oracle.run import _template
    from labtwin.oracle.server import _migration_default_rules

    keys = ("direction", "ethertype", "protocol", "remote_group_id", "used_in_default_sg", "used_in_non_default_sg")
    neutron = sorted(tuple(rule.get(k) for k in keys) for rule in _migration_default_rules())
    ours = sorted(tuple(_template(rule).get(k) for k in keys) for rule in NEUTRON_DEFAULT_RULES)
    assert ours == neutron and len(ours) == 4


@pytest.mark.slow
def test_the_oracle_compares_each_groups_rules(monkeypatch):
    """A loader that forgets Neutron's default rules disagrees on every group's rules, located at them."""
    from labtwin.description import resolve

    monkeypatch.setattr(resolve, "_with_default_rules", lambda cloud: cloud.security_groups)
    report = ask_neutron(ROOT / "topologies" / "minimal.yaml")
    assert {d.loc for d in report.differences} == {("security_groups", 0, "rules"), ("security_groups", 1, "rules")}
    ssh = next(d for d in report.differences if d.name == "ssh")
    assert ssh.labtwin == "has no other rule" and "egress IPv4 any" in ssh.neutron and "egress IPv6 any" in ssh.neutron


def test_without_neutron_installed_the_error_says_how_to_get_it(monkeypatch):
    """The child imports Neutron; when it cannot, the answer is an error naming the fix, never 'agrees'."""
    from labtwin.oracle import run

    monkeypatch.setitem(sys.modules, "neutron", None)  # import neutron -> ImportError, in the forked child too
    monkeypatch.setattr(run, "_ANSWERED", {})  # nothing asked before in this process
    with pytest.raises(OracleFailed, match=r"make setup.*neutron==29\.0\.0"):
        ask_neutron(ROOT / "topologies" / "minimal.yaml")
    result = CliRunner().invoke(main, ["validate", "--neutron", str(ROOT / "topologies" / "minimal.yaml")])
    assert result.exit_code == 1 and "Neutron could not be asked" in result.stderr


@pytest.mark.slow
def test_a_prefetch_answers_the_next_ask_and_a_failed_one_costs_nothing(monkeypatch, tmp_path):
    """``make test`` asks Neutron about every topology in the background while other tests run
    (tests/conftest.py): the ask that follows finds every answer already there (0 s of its own), and a
    prefetch that fails leaves no answer and no file behind, so the ask asks Neutron itself."""
    from labtwin.oracle import run

    monkeypatch.setattr(run, "_ANSWERED", {})
    path = HERE / "dual-stack-slaac.yaml"
    run.prefetch([path])
    (report,) = ask_neutron_many([path])
    assert report.agree and report.seconds == 0.0 and len(run._ANSWERED) == 1

    monkeypatch.setattr(run, "_ANSWERED", {})
    run.prefetch([tmp_path / "no-such-file.yaml"])
    pending = run._PREFETCHING
    run._collect_prefetched()
    assert pending is not None and pending.process.exitcode == 1 and not pending.answers.exists()
    assert run._ANSWERED == {} and run._PREFETCHING is None
